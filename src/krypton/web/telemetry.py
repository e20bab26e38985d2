"""What each HTTP request leaves behind: a request id, an access line, and its duration in
/metrics by route, method and status class.

A pure ASGI middleware (no BaseHTTPMiddleware: it would copy every body through a queue).
The request id (the caller's X-Request-ID when it is a sane token, else a new one) is bound
to every log line the request writes and sent back in the response's X-Request-ID. The route
label is the route's template (`/api/v1/invoices/{invoice_id}`), never the path itself, so
ids and probing scanners cannot blow up the number of series.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
import weakref
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from krypton.web import logs

REQUEST_SECONDS = Histogram(
    "krypton_http_request_duration_seconds", "How long HTTP requests took, by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
UNMATCHED = "unmatched"  # no route: 404s of scanners, typos


# Probes and scrapes: every few seconds from machines, a line each would drown the rest.
UNLOGGED = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Request ids: this process's random prefix and a counter. Unique across processes and
# restarts (48 random bits), and no system call per request.
_PREFIX = secrets.token_hex(6)
_serial = itertools.count(1)
# Histogram children by labels: `labels()` takes a lock and builds a key on every call.
_timers: dict[tuple[str, str, str], Any] = {}


class RequestTelemetry:
    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500  # what the client gets if the app dies before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        token = logs.REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_status)
        finally:
            logs.REQUEST_ID.reset(token)
            seconds = time.perf_counter() - started
            route = _route(scope)
            key = (scope["method"], route, f"{status // 100}xx")
            timer = _timers.get(key)
            if timer is None:
                timer = _timers[key] = REQUEST_SECONDS.labels(*key)
            timer.observe(seconds)
            if self.access_log and scope["path"] not in UNLOGGED:
                # Fields Krypton made itself (the route's template, not the path; an id that
                # passed REQUEST_ID): nothing to redact, so the line skips the chain.
                logs.line("krypton.access", "request", {
                    "method": scope["method"], "route": route, "status": status,
                    "ms": round(seconds * 1000, 1), "request_id": request_id})


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = str(value.decode("latin-1"))
            if REQUEST_ID.fullmatch(given):
                return given
            break
    return f"{_PREFIX}{next(_serial):010x}"


def _route(scope: Scope) -> str:
    if "endpoint" not in scope:  # the routing found nothing
        return UNMATCHED
    # FastAPI puts the matched route in this same scope, as its router declared it: without
    # the prefix it was included under. The app's route table has the full template.
    template = _templates(scope["app"]).get(id(scope.get("route")))
    if template is not None:
        return template
    # A mounted Starlette app's route (the devnet's): its mount, not each path.
    return str(scope.get("root_path", "")) + "/*"


# By app, and in it by id of route (routes compare by value, not identity, and hash not):
# the routes live as long as their app, so an id cannot be reused meanwhile.
_TEMPLATES: weakref.WeakKeyDictionary[Any, dict[int, str]] = weakref.WeakKeyDictionary()


def _templates(app: Any) -> dict[int, str]:
    """Route → its full path template, for the app's routes (read once per app)."""
    known = _TEMPLATES.get(app)
    if known is None:
        known = {id(context.original_route): context.path
                 for context in iter_route_contexts(app.routes) if context.path}
        _TEMPLATES[app] = known
    return known
