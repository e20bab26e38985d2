"""Benchmark invoice creation over HTTP against two ceilings, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench [--only sqlite|postgres] [--duration S] [--profile [PY_SPY]]

For each database: start `krypton serve` (one uvicorn process, background workers on, rate
limits raised), then with N concurrent connections measure
  - ceiling A: GET /livez, the same server doing no work;
  - POST /api/v1/invoices: rate, p50/p95/p99, non-2xx count;
  - ceiling B: the database's raw commit rate for the same two inserts (bench/rawdb.py),
and print a table with the targets. Informational only: the exit code never depends on speed.
The machine is shared and noisy: "per server CPU-second" (requests / CPU time the server used)
moves far less between runs than raw rates do, so compare that one before and after a change.
Results go to bench/results/latest.json; with --profile, py-spy samples the server during the
invoice run into bench/results/profile-<db>.txt (collapsed stacks: speedscope.app opens them,
`python -m bench.profile FILE` summarises them). Profiled runs are slightly slower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.servers import PostgresServer, free_port

from bench import ROOT, load, rawdb
from bench import profile as prof
from bench.server import KryptonServer, create_merchant, krypton_env

RESULTS = ROOT / "bench" / "results"
INVOICES = "/api/v1/invoices"
BODY = '{"amount":"9.99","currency":"USD"}'
RAW_SECONDS = 5.0
LIVEZ_WARMUP = 1.0
# Targets, informational. None: no target for that database.
TARGETS: dict[str, dict[str, float | None]] = {
    "sqlite": {"invoices_per_s": 1000, "p95_ms": 50, "livez_ratio": 0.40},
    "postgres": {"invoices_per_s": None, "p95_ms": None, "livez_ratio": 0.40},
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _load_json(result: load.Load) -> dict[str, Any]:
    return {**asdict(result), "rate": round(result.rate, 1), "little": round(result.little, 3),
            "server_cpu_cores": round(result.server_cpu_s / result.seconds, 2) if result.seconds else 0,
            "per_server_cpu_s": round(result.requests / result.server_cpu_s, 1) if result.server_cpu_s else 0}


@contextmanager
def profiling(py_spy: str | None, pid: int, out: Path | None, seconds: float) -> Iterator[None]:
    """py-spy samples `pid` while the body runs (100 Hz, per thread, busy threads only);
    no-op without py-spy."""
    if py_spy is None or out is None:
        yield
        return
    cmd = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds) - 1)),
           "--rate", "100", "--threads", "--format", "raw", "--output", str(out)]
    spy = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def bench_database(db: str, work: Path, tool: str, args: argparse.Namespace) -> dict[str, Any]:
    work.mkdir(parents=True)
    conns, secs = args.connections, args.duration
    with ExitStack() as stack:
        if db == "postgres":
            pg = stack.enter_context(PostgresServer(work))
            env = krypton_env(free_port(), KRYPTON_DATABASE_URL=pg.url)
        else:
            env = krypton_env(free_port(), KRYPTON_DATA_DIR=str(work / "data"))
        headers = {"Authorization": f"Bearer {create_merchant(env)}"}
        profile_out = RESULTS / f"profile-{db}.txt" if args.py_spy else None

        # The server's log is kept in bench/results/ (warnings and errors only).
        stack.callback(lambda: shutil.copy(work / "server.log", RESULTS / f"server-{db}.log")
                       if (work / "server.log").exists() else None)
        with KryptonServer(env, work / "server.log") as server:
            status, text = server.request("POST", INVOICES, BODY,
                                          {**headers, "Content-Type": "application/json"})
            if status != 201:
                raise RuntimeError(f"sanity POST {INVOICES} answered {status}: {text[:300]}\n"
                                   f"server log (last lines):\n{server.log_tail(8)}")

            def run(path: str, warmup: float, body: str | None = None) -> load.Load:
                # Server CPU is counted over warm-up and run alike, and scaled to the run.
                cpu = server.cpu_seconds()
                result = load.run(tool, server.base_url + path, connections=conns, seconds=secs,
                                  warmup=warmup, body=body, headers=headers)
                used = (server.cpu_seconds() - cpu) * secs / (secs + warmup)
                return replace(result, server_cpu_s=used)

            print(f"  [{db}] ceiling A: GET /livez, {conns} connections, warm-up "
                  f"{LIVEZ_WARMUP:g} s, then {secs:g} s", flush=True)
            livez = run("/livez", LIVEZ_WARMUP)
            print(f"  [{db}] POST {INVOICES}: warm-up {args.warmup:g} s, then {secs:g} s", flush=True)
            with profiling(args.py_spy, server.pid, profile_out, args.warmup + secs):
                invoices = run(INVOICES, args.warmup, BODY)
            backlog = (rawdb.postgres_backlog(pg.dsn) if db == "postgres"
                       else rawdb.sqlite_backlog(work / "data" / "krypton.sqlite3"))
        # The server is stopped: the raw run has the machine to itself, like the server had.
        print(f"  [{db}] ceiling B: raw driver commits, {RAW_SECONDS:g} s", flush=True)
        raw, raw_error = 0.0, None
        try:
            if db == "postgres":
                pg.create_database("rawbench")
                raw = rawdb.postgres_commits(pg.dsn_for("rawbench"), RAW_SECONDS, concurrency=conns)
            else:
                raw = rawdb.sqlite_commits(work / "raw.sqlite3", RAW_SECONDS)
        except Exception as exc:  # e.g. the schema gained a NOT NULL column rawdb doesn't fill
            raw_error = f"{type(exc).__name__}: {exc}"
            print(f"  [{db}] ceiling B failed: {raw_error}", flush=True)

    target = TARGETS[db]
    livez_ratio = invoices.rate / livez.rate if livez.rate else 0.0
    meets = {
        "invoices_per_s": _meets(invoices.rate >= (target["invoices_per_s"] or 0), target["invoices_per_s"]),
        "p95_ms": _meets(invoices.p95_ms <= (target["p95_ms"] or 0), target["p95_ms"]),
        "livez_ratio": _meets(livez_ratio >= (target["livez_ratio"] or 0), target["livez_ratio"]),
        # No completed request at all is a failure too (only completed ones are counted).
        "non_2xx": invoices.failures == livez.failures == 0 and min(invoices.requests, livez.requests) > 0,
    }
    return {
        "invoices": _load_json(invoices), "livez": _load_json(livez),
        "raw_commits_per_s": round(raw, 1), "raw_error": raw_error, "invoice_to_livez": round(livez_ratio, 4),
        "invoice_to_raw_commits": round(invoices.rate / raw, 4) if raw else 0.0,
        "projection_backlog_after_run": backlog, "targets": target, "meets_target": meets,
        "profile": str(profile_out) if profile_out else None,
    }


def _meets(ok: bool, target: float | None) -> bool | None:
    return None if target is None else ok


def print_table(db: str, r: dict[str, Any]) -> None:
    title = {"sqlite": "SQLite (embedded default)", "postgres": "PostgreSQL"}[db]
    if "error" in r:
        print(f"\n{title}: not measured: {r['error']}")
        return
    inv, lz, t, m = r["invoices"], r["livez"], r["targets"], r["meets_target"]

    def yes(v: bool | None) -> str:
        return {True: "yes", False: "NO", None: "-"}[v]

    def tgt(prefix: str, v: float | None, fmt: str) -> str:
        return "-" if v is None else prefix + format(v, fmt)

    rows = [
        ("invoices/s", f"{inv['rate']:,.0f}", tgt(">= ", t["invoices_per_s"], ",.0f"),
         yes(m["invoices_per_s"])),
        ("  p50 latency (ms)", f"{inv['p50_ms']:.1f}", "-", ""),
        ("  p95 latency (ms)", f"{inv['p95_ms']:.1f}", tgt("<= ", t["p95_ms"], "g"), yes(m["p95_ms"])),
        ("  p99 latency (ms)", f"{inv['p99_ms']:.1f}", "-", ""),
        ("  mean latency x rate / connections", f"{inv['little']:.2f}", "1.00", ""),
        ("  non-2xx / socket errors / timeouts",
         f"{inv['non_2xx']} / {inv['socket_errors']} / {inv['timeouts']}", "0", yes(m["non_2xx"])),
        ("  server CPU busy (cores)", f"{inv['server_cpu_cores']:.2f}", "", ""),
        ("  invoices per server CPU-second", f"{inv['per_server_cpu_s']:,.0f}", "", ""),
        ("livez/s (ceiling A)", f"{lz['rate']:,.0f}", "", ""),
        ("  livez per server CPU-second", f"{lz['per_server_cpu_s']:,.0f}", "", ""),
        ("  invoices/s / livez/s", f"{r['invoice_to_livez']:.1%}", tgt(">= ", t["livez_ratio"], ".0%"),
         yes(m["livez_ratio"])),
        ("raw commits/s (ceiling B)",
         "failed" if r["raw_error"] else f"{r['raw_commits_per_s']:,.0f}", "", ""),
        ("  invoices/s / raw commits/s", f"{r['invoice_to_raw_commits']:.1%}", "-", ""),
        ("events not yet projected at end", f"{r['projection_backlog_after_run']:,}", "", ""),
    ]
    print(f"\n{title}  ({inv['requests']:,} invoices in {inv['seconds']:.1f} s;"
          f" livez non-2xx {lz['non_2xx']}, p95 {lz['p95_ms']:.1f} ms)")
    print(f"  {'metric':<38}{'value':>14}  {'target':>10}  meets target?")
    for label, value, target, ok in rows:
        print(f"  {label:<38}{value:>14}  {target:>10}  {ok}")


def _git() -> dict[str, Any]:
    def git(*a: str) -> str:
        out = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return out.stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "src"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(TARGETS), help="Benchmark one database.")
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Seconds of invoice warm-up.")
    parser.add_argument("--connections", type=int, default=64, help="Concurrent connections.")
    parser.add_argument("--load-generator", choices=["auto", "h2load", "python"], default="auto",
                        help="auto: h2load (nghttp2-client, installed with apt-get if missing), "
                        "else the Python fallback.")
    parser.add_argument("--profile", nargs="?", const="py-spy", metavar="PY_SPY",
                        help="Profile the server during the invoice run with py-spy (not a "
                        "project dependency: `pip install py-spy` anywhere and pass its path).")
    args = parser.parse_args(argv)
    args.py_spy = shutil.which(args.profile) if args.profile else None
    if args.profile and not args.py_spy:
        print(f"bench: {args.profile} not found; running without profiling")
    # Ctrl-C and `kill` both unwind through every cleanup (SIGINT explicitly too: a shell's
    # background job inherits it ignored).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)

    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tool = load.find_tool() if args.load_generator == "auto" else args.load_generator
    load_note = ("h2load (1 thread, per-request log)" if tool == "h2load" else
                 "PYTHON FALLBACK (no h2load): the client shares the CPU, so every rate below "
                 "is understated")
    loadavg = os.getloadavg()
    print(f"Krypton bench: {args.connections} connections, {args.duration:g} s per run, load "
          f"generator {load_note}; {os.cpu_count()} cores, load average before "
          f"{loadavg[0]:.2f} (shared machine: expect noise)", flush=True)
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "load_tool": tool,
        "connections": args.connections, "duration_s": args.duration, "warmup_s": args.warmup,
        "cpu_count": os.cpu_count(), "loadavg_before": loadavg, "python": platform.python_version(),
        "git": _git(), "profiled": bool(args.py_spy), "databases": {},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="krypton-bench-") as tmp:
            for db in [args.only] if args.only else ["sqlite", "postgres"]:
                try:
                    result = bench_database(db, Path(tmp) / db, tool, args)
                except Exception as exc:  # one database failing must not hide the other
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                report["databases"][db] = result
                print_table(db, result)
                if result.get("profile"):
                    print(prof.summary(Path(result["profile"]), top=12))
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped, temporary files removed")
        return 130
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWrote {(RESULTS / 'latest.json').relative_to(ROOT)} ({report['elapsed_s']:.0f} s in all)."
          " Informational only: targets never fail the run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
