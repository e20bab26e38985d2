"""A real HTTP server on 127.0.0.1 with programmable answers per path, for the provider
client tests (tests/adapters/chains/test_provider.py).

A Starlette app under uvicorn, in a background thread with its own event loop, so a reply
that hangs stalls only the server, never the test's loop. Several "endpoints" share one
server by path prefix: http://127.0.0.1:PORT/a and .../b are two providers.

    server.script("/a/head", Reply.status(500), Reply.status(500), then=Reply.json({"n": 1}))
    ...
    server.arrivals("/a/head")  # what reached the server, in order
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Reply:
    """One programmed answer: a status, a JSON or raw body, headers, and a delay first."""

    status_code: int = 200
    body: Any = None
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(cls, body: Any, *, delay: float = 0.0) -> Reply:
        return cls(body=body, delay=delay)

    @classmethod
    def status(cls, code: int, *, headers: dict[str, str] | None = None, body: Any = None) -> Reply:
        return cls(status_code=code, headers=headers or {}, body={"error": code} if body is None else body)

    @classmethod
    def text(cls, raw: str, *, code: int = 200, content_type: str = "text/html") -> Reply:
        return cls(status_code=code, raw=raw, headers={"content-type": content_type})

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        return cls(body={"late": True}, delay=seconds)

    def response(self) -> Response:
        if self.raw is not None:
            return Response(self.raw, status_code=self.status_code, headers=self.headers)
        return JSONResponse(self.body, status_code=self.status_code, headers=self.headers)


@dataclass(frozen=True)
class Arrival:
    path: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class ProviderServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._defaults: dict[str, Reply] = {}
        self._arrivals: list[Arrival] = []
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((HOST, 0))
        self.url = f"http://{HOST}:{self._socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="provider-test-server", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the provider test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5.0)
        self._socket.close()

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._arrivals.clear()

    def script(self, path: str, *replies: Reply, then: Reply | None = None) -> None:
        """Answer `path` with `replies` in order, then with `then` (default: 200 {"path": path})."""
        with self._lock:
            self._scripts[path].extend(replies)
            if then is not None:
                self._defaults[path] = then

    def arrivals(self, path: str | None = None) -> list[Arrival]:
        with self._lock:
            return [a for a in self._arrivals if path is None or a.path == path]

    def count(self, path: str | None = None) -> int:
        return len(self.arrivals(path))

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        arrival = Arrival(path, request.method, dict(request.query_params), dict(request.headers),
                          await request.body())
        with self._lock:
            self._arrivals.append(arrival)
            queue = self._scripts[path]
            reply = queue.popleft() if queue else self._defaults.get(path, Reply.json({"path": path}))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return reply.response()
