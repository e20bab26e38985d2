"""Security headers on every response, the API's, the docs' and the errors' alike.

No response of Krypton's is meant to be framed by another site, sniffed into another type or
leak its URL (which may hold an invoice id) to the next site a browser goes to. HSTS is sent
only on a request that came over HTTPS (directly, or through a proxy uvicorn trusts with
X-Forwarded-Proto): over plain HTTP it would mean nothing, and on a local demo it would pin
the browser to an HTTPS that is not there.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# frame-ancestors is the CSP form of X-Frame-Options; both, for browsers that know only one.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": API_POLICY,
}
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """ASGI middleware adding `HEADERS` (and HSTS over https) to every response; a header a
    route set itself (the docs page's own Content-Security-Policy) is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # A page that names who may frame it (the Telegram Mini App) sends its own
                # frame-ancestors; X-Frame-Options DENY would forbid what that allows.
                framed = "frame-ancestors 'none'" not in headers.get("Content-Security-Policy",
                                                                    "frame-ancestors 'none'")
                for name, value in HEADERS.items():
                    if name not in headers and not (framed and name == "X-Frame-Options"):
                        headers[name] = value
                if https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)
        await self.app(scope, receive, with_headers)
