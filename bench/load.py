"""HTTP load: wrk when it can be had, else a Python generator in its own process.

wrk (C, one thread) costs far less CPU than any Python client, and on a 2-core machine
every cycle the client burns is taken from the server being measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float = 0.0  # filled in by the caller, which knows the server's pid

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts


def find_tool() -> str:
    """'wrk', installing Debian's package once if missing (we may be root), else 'python'."""
    if shutil.which("wrk"):
        return "wrk"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: wrk missing, installing it with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            if shutil.which("wrk"):
                return "wrk"
    return "python"


def run(tool: str, url: str, *, connections: int, seconds: float, body: str | None = None,
        headers: dict[str, str] | None = None) -> Load:
    """Keep `connections` requests in flight for `seconds`; POST `body` if given, else GET."""
    headers = headers or {}
    if tool == "wrk":
        # One wrk thread is plenty for a Python server and leaves the other core alone.
        # --timeout well above any latency we expect, so slow answers count as latency.
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
               "-s", str(HERE / "wrk.lua")]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(url)
    else:
        cmd = [sys.executable, "-m", "bench.pyload", url, str(connections), str(seconds),
               json.dumps(headers)]
    env = {**os.environ, "WRK_BODY": body or ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60,
                          cwd=HERE.parent, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(line.removeprefix(MARK))
    ms = 1000.0
    return Load(requests=r["requests"], seconds=r["duration_us"] / 1e6, non_2xx=r["non_2xx"],
                socket_errors=r["socket_errors"], timeouts=r["timeouts"],
                p50_ms=r["p50_us"] / ms, p90_ms=r["p90_us"] / ms, p95_ms=r["p95_us"] / ms,
                p99_ms=r["p99_us"] / ms, max_ms=r["max_us"] / ms)
