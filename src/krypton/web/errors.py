"""Every error leaves as JSON {"error": {"code", "message", "field"}} with a sentence for people."""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from krypton.adapters.db import faults
from krypton.domain.errors import Conflict, DomainError, IllegalTransition, NotFound, RateUnavailable

log = structlog.get_logger()


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers


# A value an error message quotes back ('inv_…') is cut to this many characters: a client may
# send an 8 KB id, and the answer need not carry it back.
MAX_QUOTED_CHARS = 64
_QUOTED = re.compile(rf"'([^']{{{MAX_QUOTED_CHARS}}})[^']+'")


def _safe(text: str | None) -> str | None:
    """Text an error may carry back to the client: long quoted values shortened, and lone
    surrogates (valid in a JSON escape, not in UTF-8) written as escapes rather than
    failing the response."""
    if text is None:
        return None
    text = _QUOTED.sub(r"'\1…'", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": _safe(message), "field": _safe(field)}},
                        status_code=status, headers=headers)


INTERNAL_ERROR = "Something went wrong on our side; nothing was changed. Retry later."


def _status_of(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict | IllegalTransition):
        return 409
    return 422


_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": "is not a known field; remove it",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "dict_type": "must be a JSON object",
    "list_type": "must be a list",
    "model_attributes_type": "must be a JSON object",
    # These read their bound from the error's context.
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must be at least {min_length} character(s) long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_long": "must have at most {max_length} items",
    "string_unicode": "must be valid Unicode text (no lone UTF-16 surrogate such as \\udfff)",
}


def _validation_message(err: dict[str, Any]) -> tuple[str, str | None]:
    kind = err.get("type", "")
    ctx = err.get("ctx", {})
    if kind == "json_invalid":
        # loc is ("body", <character offset>): the offset is not a field.
        position = err.get("loc", ("body", 0))[-1]
        return (f"The request body is not valid JSON ({ctx.get('error', 'decode error')} at "
                f"character {position}); send a JSON object.", None)
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    if kind == "value_error":
        message = str(ctx.get("error", err.get("msg")))
    else:
        if kind == "too_long" and isinstance(err.get("input"), str):
            kind = "string_too_long"  # an optional text field reports its length as items
        friendly = _FRIENDLY.get(kind)
        try:
            text = friendly.format(**ctx) if friendly else err.get("msg", "is invalid")
        except (KeyError, IndexError):
            text = err.get("msg", "is invalid")
        message = f"{field or 'The request body'} {text}."
    return message, field


class CatchCrashes:
    """ASGI middleware, the outermost of Krypton's: an unexpected exception is logged (one
    line with its stack trace; `web/logs.py`) and answered with a 500 in the house shape.

    Starlette's own last-resort handler answers too, but then raises the exception again to
    the server, and uvicorn closes the connection after the response without having said
    `Connection: close`: a client reusing the kept-alive connection got a reset. Handled here,
    the exception goes no further and the connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            down = faults.unavailable(exc)
            if down is not None:
                # Not a bug: the database is down, full or read-only. One line, no stack.
                log.warning("database_unavailable", method=scope.get("method"),
                            path=scope.get("path"), reason=down)
            else:
                log.error("unhandled_error", method=scope.get("method"), path=scope.get("path"),
                          exc_info=exc)
                sentry_sdk.capture_exception(exc)  # nothing without KRYPTON_SENTRY_DSN
            if started:
                raise  # half a response is out: only closing the connection can end it
            response = database_unavailable() if down is not None else \
                error_response(500, "internal_error", INTERNAL_ERROR)
            await response(scope, receive, send)


DATABASE_RETRY_SECONDS = 5


def database_unavailable() -> JSONResponse:
    return error_response(
        503, "database_unavailable", "The database is unavailable right now; nothing was "
        f"changed. Retry in {DATABASE_RETRY_SECONDS} seconds.",
        headers={"Retry-After": str(DATABASE_RETRY_SECONDS)})


class RejectNulInUrl:
    """ASGI middleware: a NUL (%00) in the path or query is bad input, answered before it can
    reach PostgreSQL, which cannot store or even compare text containing NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            response = error_response(422, "invalid_request",
                                      "The URL contains a NUL character (%00); remove it.")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """The error handlers and the NUL check. `create_app` adds `CatchCrashes` last, so that it
    wraps every other middleware."""
    app.add_middleware(RejectNulInUrl)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        if isinstance(exc, RateUnavailable):  # temporary: say when to come back
            return error_response(503, exc.code, exc.message, exc.field,
                                  {"Retry-After": str(exc.retry_after)})
        return error_response(_status_of(exc), exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = _validation_message(exc.errors()[0])
        return error_response(422, "invalid_request", message, field)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if exc.status_code == 404:
            message = "No such endpoint; see /docs."
        elif exc.status_code == 405:
            message = f"This endpoint does not accept {request.method}; see /docs."
        else:
            message = f"{str(exc.detail).rstrip('.')}."
        # Keep the exception's headers (a 405 carries `Allow`).
        return error_response(exc.status_code, code, message,
                              headers=dict(exc.headers) if exc.headers else None)
