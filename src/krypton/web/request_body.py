"""Request bodies: the API key is checked before a body is read, and a body is at most
`KRYPTON_MAX_BODY_BYTES` (64 KiB by default), refused with 413 before anything parses it.

FastAPI reads and parses a route's body before it runs the route's dependencies, so the
key check of `auth.require` came after the server had taken in whatever a stranger sent.
This middleware runs first: on the merchant API it authenticates (the route's dependency
then reuses the result), then takes the body in chunks, counting them, and hands the app
the whole body only when it is within the limit. A declared `Content-Length` past the
limit is refused without reading a byte.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from krypton.web import auth
from krypton.web.errors import ApiError, error_response

# The body is not read, or not to its end: the connection cannot carry another request.
_CLOSE = {"Connection": "close"}


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_body(scope: Scope) -> bool:
    declared = _declared_length(scope)
    if declared is not None:
        return declared > 0
    return any(name == b"transfer-encoding" for name, _ in scope["headers"])


class GuardedBody:
    def __init__(self, app: ASGIApp, *, max_bytes: int, keyed_prefix: str,
                 keyless_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.keyed_prefix = keyed_prefix
        self.keyless_prefixes = keyless_prefixes

    def _needs_key(self, path: str) -> bool:
        keyless = any(path.startswith(p) or path == p.rstrip("/") for p in self.keyless_prefixes)
        return path.startswith(self.keyed_prefix) and not keyless

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        if self._needs_key(scope["path"]):
            try:
                await auth.authenticate(Request(scope))
            except ApiError as exc:
                await error_response(exc.status, exc.code, exc.message, exc.field,
                                     {**(exc.headers or {}), **_CLOSE})(scope, receive, send)
                return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:  # a chunked body, or one longer than it said
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            # The body once, then whatever the server says next (a disconnect).
            return body.pop() if body else await receive()
        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large",
            f"The request body is larger than {self.max_bytes:,} bytes; send a smaller one "
            "(metadata holds at most 4 KB).", headers=_CLOSE)
        await response(scope, receive, send)
