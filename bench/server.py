"""`krypton serve` as a subprocess, configured only through KRYPTON_* variables."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's bin/, which holds the `krypton` script

# Limits far above anything the bench can reach: we measure the request path, not the limiter
# saying no. Every other KRYPTON_* variable of the caller's shell is dropped (a stray
# KRYPTON_REDIS_URL would change what is measured).
BENCH_SETTINGS = {
    "KRYPTON_HOST": "127.0.0.1",
    "KRYPTON_LOG_LEVEL": "warning",
    "KRYPTON_RATE_LIMIT_GLOBAL": "1000000/second",
    "KRYPTON_RATE_LIMIT_INVOICE_CREATE": "100000000/hour",
    "KRYPTON_RATE_LIMIT_READS": "100000000/hour",
}


def krypton_env(port: int, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRYPTON_")}
    return {**env, **BENCH_SETTINGS, "KRYPTON_PORT": str(port), **settings}


def create_merchant(env: dict[str, str]) -> str:
    """A merchant with a fresh API key, made by the CLI against the same database; the key."""
    proc = subprocess.run([str(BIN / "krypton"), "merchant", "create", "--name", "bench", "--json"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"krypton merchant create failed:\n{proc.stdout}\n{proc.stderr}")
    key: str = json.loads(proc.stdout.strip().splitlines()[-1])["api_key"]
    return key


class KryptonServer:
    """`krypton serve` (uvicorn, one process, background workers on) on 127.0.0.1:port."""

    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.env = env
        self.args = args  # more `krypton serve` options, e.g. ("--role", "api", "--workers", "2")
        self.base_url = f"http://127.0.0.1:{env['KRYPTON_PORT']}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> KryptonServer:
        cmd = [str(BIN / "krypton"), "serve", *self.args]
        # setpriv makes the kernel SIGTERM the server if the bench dies without cleaning up
        # (e.g. SIGKILL); it execs in place, so self.proc.pid is the server's own pid.
        if setpriv := shutil.which("setpriv"):
            cmd = [setpriv, "--pdeathsig=SIGTERM", "--", *cmd]
        with self.log_path.open("ab") as log:
            # A new session: Ctrl-C in the terminal reaches only the bench, which stops the
            # server itself in __exit__.
            self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout=60)
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
                raise RuntimeError(f"krypton serve exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/livez", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"krypton serve not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str]:
        """One request, for the sanity check before a load run: (status, body text)."""
        req = urllib.request.Request(self.base_url + path, method=method,
                                     data=body.encode() if body else None, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # uvicorn: graceful shutdown, workers cancelled
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the server and its child processes (the
        Tron address helper) have used so far. Rate per CPU-second is steadier than rate
        alone on a shared machine, where other work steals the cores."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if stat.parent.name == str(self.pid) or fields[1] == str(self.pid):  # ppid
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
