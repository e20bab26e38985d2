"""A real HTTP server on loopback that records the webhooks it receives and answers as told.

    with Receiver() as hooks:
        hooks.url                  # http://127.0.0.1:PORT/hooks
        hooks.answers = [500, 200] # the next answers in order, then `default`
        hooks.received             # [Received(headers, body, path)], in arrival order
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, default: int = 200) -> None:
        self.default = default
        self.answers: list[int] = []
        self.delay = 0.0  # seconds to wait before answering (a slow receiver)
        self.location = ""  # Location header of a 3xx answer
        self.received: list[Received] = []
        self.webhook_ids: list[str] = []  # each request's webhook-id, as it came
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in
                                                                  self.headers.items()}, body))
                    receiver.webhook_ids.append(self.headers.get("webhook-id", ""))
                    status = receiver.answers.pop(0) if receiver.answers else receiver.default
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.location or "http://127.0.0.1:9/elsewhere")
                reply = f"answer {status}".encode()
                self.send_header("Content-Length", str(len(reply)))
                try:
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # a sender opens many connections at once

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def bodies(self) -> list[bytes]:
        with self._lock:
            return [r.body for r in self.received]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
