"""Fallback load generator, used only when h2load can't be installed (much costlier per
request, and it shares the CPU with the server).

    python -m bench.pyload URL CONNECTIONS SECONDS HEADERS_JSON WARMUP   (body: $BENCH_BODY, POSTed)

Prints one line `BENCH_RESULT {json}` with every measured request's duration (bench/load.py
summarises it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import httpx


async def main(url: str, connections: int, seconds: float, headers: dict[str, str],
               warmup: float) -> None:
    body = os.environ.get("BENCH_BODY") or None
    durations: list[int] = []
    counts = {"non_2xx": 0, "socket_errors": 0, "timeouts": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30.0, headers=headers) as client:
        start = time.perf_counter() + warmup
        deadline = start + seconds

        async def worker() -> None:
            while (t0 := time.perf_counter()) < deadline:
                measured = t0 >= start
                try:
                    resp = await (client.post(url, content=body) if body else client.get(url))
                except httpx.TimeoutException:
                    counts["timeouts"] += measured
                    continue
                except httpx.TransportError:
                    counts["socket_errors"] += measured
                    continue
                if measured:
                    durations.append(int((time.perf_counter() - t0) * 1e6))
                    counts["non_2xx"] += not 200 <= resp.status_code <= 299

        await asyncio.gather(*(worker() for _ in range(connections)))
    print("BENCH_RESULT " + json.dumps({"durations_us": durations, "seconds": seconds, **counts}),
          flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4]),
                     float(sys.argv[5])))
