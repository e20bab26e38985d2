"""Fallback load generator, used only when wrk can't be installed (much costlier per request).

    python -m bench.pyload URL CONNECTIONS SECONDS HEADERS_JSON   (body: $WRK_BODY, POSTed)

Prints the same BENCH_RESULT line as bench/wrk.lua.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import httpx


def _pct(sorted_us: list[int], p: float) -> int:
    if not sorted_us:
        return 0
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * p / 100))]


async def main(url: str, connections: int, seconds: float, headers: dict[str, str]) -> None:
    body = os.environ.get("WRK_BODY") or None
    if body:
        headers = {**headers, "Content-Type": "application/json"}
    latencies: list[int] = []
    counts = {"non_2xx": 0, "socket_errors": 0, "timeouts": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30.0, headers=headers) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    resp = await (client.post(url, content=body) if body else client.get(url))
                except httpx.TimeoutException:
                    counts["timeouts"] += 1
                    continue
                except httpx.TransportError:
                    counts["socket_errors"] += 1
                    continue
                latencies.append(int((time.perf_counter() - t0) * 1e6))
                if not 200 <= resp.status_code <= 299:
                    counts["non_2xx"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    result = {"requests": len(latencies), "duration_us": int(elapsed * 1e6), **counts,
              "mean_us": sum(latencies) / max(1, len(latencies)),
              **{f"p{p}_us": _pct(latencies, p) for p in (50, 90, 95, 99)},
              "max_us": latencies[-1] if latencies else 0}
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])))
