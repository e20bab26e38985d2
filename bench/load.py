"""HTTP load: h2load (nghttp2's load generator, C) when it can be had, else a Python client.

Latency percentiles are computed here from h2load's per-request log (start, status,
duration of every request), so they are exactly what the clients saw. We used wrk before:
its percentiles include synthetic samples (wrk 4 corrects for coordinated omission by
adding, for each slow request, samples at every multiple of the mean interval below it),
so one 2 s request counted some 30 times. Its mean then exceeded what Little's law allows
for a closed loop (64 connections / rate), which per-request logs never do; `little` in
the result is that check (mean latency × rate / connections, 1.0 when consistent).

The load runs on one thread, and `warmup` seconds of requests go over the same
connections before measuring starts, so fresh connections queueing to be accepted by a
saturated server are not part of the figures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = "BENCH_RESULT "


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    timeouts: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    connections: int = 0
    server_cpu_s: float = 0.0  # filled in by the caller, which knows the server's pid

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts

    @property
    def little(self) -> float:
        """Mean latency × rate / connections: 1.0 for a consistent closed-loop measurement."""
        return self.mean_ms / 1000 * self.rate / self.connections if self.connections else 0.0


def find_tool() -> str:
    """'h2load', installing Debian's nghttp2-client once if missing (we may be root), else
    'python'."""
    if shutil.which("h2load"):
        return "h2load"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: h2load missing, installing nghttp2-client with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "nghttp2-client"]
        for cmd in (install, ["apt-get", "update", "-qq"], install):
            subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            if shutil.which("h2load"):
                return "h2load"
    return "python"


def percentile(sorted_values: list[int], p: float) -> int:
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def summarise(durations_us: list[int], seconds: float, connections: int, *, non_2xx: int,
              socket_errors: int = 0, timeouts: int = 0) -> Load:
    d = sorted(durations_us)
    ms = 1000.0
    return Load(requests=len(d), seconds=seconds, non_2xx=non_2xx, socket_errors=socket_errors,
                timeouts=timeouts, mean_ms=sum(d) / len(d) / ms if d else 0.0,
                p50_ms=percentile(d, 50) / ms, p90_ms=percentile(d, 90) / ms,
                p95_ms=percentile(d, 95) / ms, p99_ms=percentile(d, 99) / ms,
                max_ms=(d[-1] if d else 0) / ms, connections=connections)


def run(tool: str, url: str, *, connections: int, seconds: float, warmup: float = 1.0,
        body: str | None = None, headers: dict[str, str] | None = None) -> Load:
    """Keep `connections` requests in flight for `warmup` + `seconds`, measuring the last
    `seconds`; POST `body` as JSON if given, else GET."""
    headers = dict(headers or {})
    if body:
        headers["Content-Type"] = "application/json"
    if tool == "h2load":
        return _h2load(url, connections, seconds, warmup, body, headers)
    cmd = [sys.executable, "-m", "bench.pyload", url, str(connections), str(seconds),
           json.dumps(headers), str(warmup)]
    proc = subprocess.run(cmd, env={**os.environ, "BENCH_BODY": body or ""}, capture_output=True,
                          text=True, timeout=warmup + seconds + 60, cwd=HERE.parent, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"pyload failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(line.removeprefix(MARK))
    return summarise(r["durations_us"], r["seconds"], connections, non_2xx=r["non_2xx"],
                     socket_errors=r["socket_errors"], timeouts=r["timeouts"])


def _h2load(url: str, connections: int, seconds: float, warmup: float, body: str | None,
            headers: dict[str, str]) -> Load:
    with tempfile.TemporaryDirectory(prefix="krypton-load-") as tmp:
        log = Path(tmp) / "requests.log"
        cmd = ["h2load", "--h1", "-t1", f"-c{connections}", "-m1", "-D", f"{seconds:g}",
               "--warm-up-time", f"{warmup:g}", "--log-file", str(log)]
        if body:
            (Path(tmp) / "body.json").write_text(body)
            cmd += ["-d", str(Path(tmp) / "body.json")]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(url)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=warmup + seconds + 60,
                              check=False)
        counts = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, "
                           r"(\d+) failed, (\d+) errored, (\d+) timeout", proc.stdout)
        if proc.returncode != 0 or counts is None or not log.exists():
            raise RuntimeError(f"h2load failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        # One line per request measured (warm-up excluded): start (µs), status, duration (µs).
        rows = [(int(status), int(us)) for _, status, us in
                (line.split() for line in log.read_text().splitlines() if line.strip())]
    answered = [(status, us) for status, us in rows if status > 0]  # no answer: no HTTP status
    return summarise([us for _, us in answered], seconds, connections,
                     non_2xx=sum(1 for status, _ in answered if not 200 <= status <= 299),
                     socket_errors=int(counts[2]), timeouts=int(counts[3]))
