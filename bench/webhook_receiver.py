"""A fast webhook receiver for `bench/webhooks.py`, run in a process of its own.

    .venv/bin/python -m bench.webhook_receiver --port PORT

Uvicorn (httptools, uvloop) serving a bare ASGI app, no framework: every POST is answered
200 at once and recorded in memory as (arrival time, webhook-id, body). The bench reads
what arrived over HTTP on the same port:

    GET /count     how many POSTs arrived (cheap: polled while waiting for a drain)
    GET /records   [[arrival_unix_s, webhook_id, payload_created_iso], ...] in arrival order
    DELETE /records  forget everything so far

The arrival time is the wall clock (`time.time()`), not a monotonic one: the lag is
arrival minus the payload's `created`, which Krypton stamped from the same machine's wall
clock in another process. Bodies are parsed only when /records is read, so a POST costs
the receiver as little as possible. A process of its own, so the sender being measured
does not share its GIL: `ReceiverProcess` starts it for a `with` block (and reads it), and
`tree_cpu_seconds` tells how busy it, or any process tree, was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Self

from tests.support.servers import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OK = b"ok"
_JSON = [(b"content-type", b"application/json")]


class Records:
    """What arrived: (wall-clock arrival, webhook-id, raw body), in arrival order."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str, bytes]] = []

    def add(self, arrived: float, webhook_id: str, body: bytes) -> None:
        self.items.append((arrived, webhook_id, body))

    def clear(self) -> None:
        self.items.clear()

    def dump(self) -> bytes:
        return json.dumps([[arrived, webhook_id, _created(body)]
                           for arrived, webhook_id, body in self.items]).encode()


def _created(body: bytes) -> str | None:
    """The payload's `created` (when Krypton made the event), or None for a body without it."""
    try:
        value = json.loads(body).get("created")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
                  ) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def make_app(records: Records) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app over `records` (a function, so a test can drive it without a server)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        body = await _body(receive)
        if method == "POST":
            # Stamped after the whole body is in: the moment the delivery was received.
            arrived = time.time()
            webhook_id = next((v.decode() for k, v in scope["headers"] if k == b"webhook-id"), "")
            records.add(arrived, webhook_id, body)
            await _answer(send, 200, _OK)
        elif method == "GET" and path == "/count":
            await _answer(send, 200, str(len(records.items)).encode())
        elif method == "GET" and path == "/records":
            await _answer(send, 200, records.dump(), _JSON)
        elif method == "DELETE" and path == "/records":
            records.clear()
            await _answer(send, 204, b"")
        else:
            await _answer(send, 404, b"not here")

    return app


class ReceiverProcess:
    """This module's server as a subprocess on a free port, for the block (`with`)."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = self.base_url + "/hooks"  # where the endpoint points
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Self:
        root = Path(__file__).resolve().parent.parent
        cmd = [sys.executable, "-m", "bench.webhook_receiver", "--port", str(self.port)]
        # As bench/server.py: the kernel stops it if the bench dies without cleaning up.
        if setpriv := shutil.which("setpriv"):
            cmd = [setpriv, "--pdeathsig=SIGTERM", "--", *cmd]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=root, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the webhook receiver exited ({self.proc.returncode}):\n"
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                self.count()
                return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the webhook receiver was not ready after {timeout:g} s") from None
                time.sleep(0.05)

    def _call(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(self.base_url + path, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            data: bytes = response.read()
            return data

    def count(self) -> int:
        return int(self._call("GET", "/count"))

    def records(self) -> list[tuple[float, str, str | None]]:
        """(arrival unix seconds, webhook-id, payload `created`) of every POST since `clear`."""
        return [(float(a), str(i), c) for a, i, c in json.loads(self._call("GET", "/records"))]

    def clear(self) -> None:
        self._call("DELETE", "/records")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process `pid` and all its descendants (0
    for those /proc does not show us)."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = int(fields[11]) + int(fields[12])  # utime, stime
    wanted, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in wanted:
                wanted.add(child)
                frontier.append(child)
    return sum(times.get(p, 0) for p in wanted) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> None:
    import uvicorn  # here: the bench imports make_app without starting a server

    parser = argparse.ArgumentParser(prog="python -m bench.webhook_receiver",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # uvloop and httptools: the fastest uvicorn has, so the receiver is not what limits the
    # sender. Uvicorn stops on SIGTERM.
    uvicorn.run(make_app(Records()), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", lifespan="off", log_level="warning", access_log=False,
                backlog=1024)


if __name__ == "__main__":
    main()
