"""The Krypton app under a real uvicorn server on 127.0.0.1, in a background thread with its
own event loop: for what only a real HTTP server shows (connections, keep-alive)."""

from __future__ import annotations

import socket
import threading
from typing import Any, Self

import uvicorn

HOST = "127.0.0.1"


class LiveServer:
    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                log_config=None, timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((HOST, 0))
        self.url = f"http://{HOST}:{self._socket.getsockname()[1]}"
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="krypton-live-server", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> Self:
        self._thread.start()
        # `started` flips once the socket listens; poll it with a bounded number of waits.
        for _ in range(1000):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            self._started.wait(0.01)
        raise RuntimeError("the live test server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
