"""Every error leaves as JSON {"error": {"code", "message", "field"}} with a sentence for people."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from krypton.domain.errors import Conflict, DomainError, IllegalTransition, NotFound

log = structlog.get_logger()


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": field}},
                        status_code=status, headers=headers)


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
        friendly = _FRIENDLY.get(kind)
        try:
            text = friendly.format(**ctx) if friendly else err.get("msg", "is invalid")
        except (KeyError, IndexError):
            text = err.get("msg", "is invalid")
        message = f"{field or 'The request body'} {text}."
    return message, field


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
    app.add_middleware(RejectNulInUrl)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
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

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return error_response(500, "internal_error",
                              "Something went wrong on our side; nothing was changed. Retry later.")
