"""A steady (open-loop) HTTP/1.1 POST load, as cheap for the client as Python allows.

`bench/webhooks.py` creates invoices at a fixed rate with it while measuring webhook lag.
httpx cost about 4-5 ms of CPU per request here, so at 200/s the client alone took most of a
core on a 2-core machine and starved the server it measured; this writes the request bytes
over keep-alive connections and reads just the status line, headers and Content-Length
body (or a chunked one), about a twentieth of that.

Slots are due every 1/rate seconds from the start; `connections` workers take them in turn,
each over its own connection, so a slot no worker is free for starts late and its latency
counts from when it was due (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Paced:
    ok: int  # answered with the expected status
    failed: int  # another status, or the connection failed
    offered_per_s: float  # slots started per second, over the whole run
    latencies_s: list[float]  # of the ok ones, from when each was due, sorted
    statuses: dict[int, int]  # unexpected statuses and how often (0: no answer)
    started_at: float  # wall clock (Unix s) when the first slot was due


def request_bytes(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """One response's status; its body read and dropped."""
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked = 0, False
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        await reader.readexactly(size + 2)  # the chunk and its CRLF
    await reader.readuntil(b"\r\n")  # after the last chunk (no trailers expected)
    return status


async def paced(host: str, port: int, path: str, body: bytes, headers: dict[str, str], *,
                rate: float, seconds: float, connections: int, expect: int) -> Paced:
    request = request_bytes(host, port, path, body, headers)
    total = int(rate * seconds)
    slots = iter(range(total))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.2  # time for every worker to connect first
    started_at = time.time() + (start - time.perf_counter())

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for k in slots:
                due = start + k / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                try:
                    writer.write(request)
                    status = await read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status = 0
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                if status == expect:
                    latencies.append(time.perf_counter() - due)
                else:
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    took = time.perf_counter() - start
    return Paced(len(latencies), total - len(latencies), total / took if took > 0 else 0.0,
                 sorted(latencies), statuses, started_at)


async def closed_loop(host: str, port: int, path: str, body: bytes, headers: dict[str, str], *,
                      count: int, connections: int) -> tuple[float, int]:
    """POST `count` times, `connections` at a time, each worker sending its next request as
    soon as the previous one is answered: (seconds taken, non-2xx or failed)."""
    request = request_bytes(host, port, path, body, headers)
    left, errors = count, 0
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal left, errors
        while left > 0:
            left -= 1
            writer.write(request)
            status = await read_response(reader)
            errors += not 200 <= status < 300

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(r, w) for r, w in streams))
    finally:
        for _, writer in streams:
            writer.close()
    return time.perf_counter() - started, errors
