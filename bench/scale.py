"""Invoice creation on PostgreSQL with 1, 2 and 3 API processes, against the raw asyncpg
ceiling for the same inserts, measured in the same run.

    .venv/bin/python -m bench.scale [--processes 1,2,3] [--duration S] [--connections N]

Each run starts `krypton serve --role api --workers N` on one PostgreSQL server (the API
only: no chain job runs, so no provider is called; testnet settings with the static rate
table and fixed receiving addresses) and loads POST /api/v1/invoices with two bodies:
one whose options include USDT on Tron (each invoice takes the next deposit index) and one
priced for TON only (no deposit index). The ceiling is `bench/rawdb.py`'s two inserts per
commit with asyncpg at the same concurrency. Informational only: the exit code never
depends on speed, and the database shares the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from tests.support.servers import PostgresServer, free_port

from bench import load, rawdb
from bench.server import KryptonServer, create_merchant, krypton_env

INVOICES = "/api/v1/invoices"
BODIES = {
    "with a Tron deposit index": '{"amount":"9.99","currency":"USD"}',
    "TON only (no index)": '{"amount":"9.99","currency":"USD","methods":["ton"]}',
}
RAW_SECONDS = 5.0
# Testnet, so that several API processes need no devnet host; nothing reaches a provider:
# the API role runs no chain job and rates come from the static table.
SETTINGS = {
    "KRYPTON_NETWORK": "testnet", "KRYPTON_RATES": "static",
    "KRYPTON_TON_ADDRESS": "0:" + "d3" * 32,
    "KRYPTON_TRON_XPUB": ("xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8W"
                          "NqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd"),
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def measure(work: Path, processes: list[int], tool: str, args: argparse.Namespace) -> None:
    with PostgresServer(work / "pg") as pg:
        env = krypton_env(free_port(), KRYPTON_DATABASE_URL=pg.url, **SETTINGS)
        headers = {"Authorization": f"Bearer {create_merchant(env)}"}
        rates: dict[tuple[int, str], float] = {}
        for n in processes:
            env = {**env, "KRYPTON_PORT": str(free_port())}
            args_ = ("--role", "api", "--workers", str(n))
            with KryptonServer(env, work / f"server-{n}.log", args_) as server:
                for label, body in BODIES.items():
                    status, text = server.request("POST", INVOICES, body,
                                                  {**headers, "Content-Type": "application/json"})
                    if status != 201:
                        raise RuntimeError(f"sanity POST answered {status}: {text[:300]}\n"
                                           f"{server.log_tail(8)}")
                    print(f"  {n} API process(es), {label}: warm-up {args.warmup:g} s, then "
                          f"{args.duration:g} s", flush=True)
                    result = load.run(tool, server.base_url + INVOICES, connections=args.connections,
                                      seconds=args.duration, warmup=args.warmup, body=body,
                                      headers=headers)
                    if result.failures:
                        print(f"    {result.failures} requests failed; see {work}/server-{n}.log")
                    rates[(n, label)] = result.rate
        # The servers are stopped: the ceiling has the machine to itself, as they had.
        print(f"  ceiling: raw asyncpg commits (invoice + event), {RAW_SECONDS:g} s", flush=True)
        pg.create_database("rawbench")
        raw = rawdb.postgres_commits(pg.dsn_for("rawbench"), RAW_SECONDS, concurrency=args.connections)

    print(f"\nPostgreSQL, {args.connections} connections; raw ceiling {raw:,.0f} commits/s")
    print(f"  {'API processes':<15}{'body':<28}{'invoices/s':>12}{'of raw':>9}{'of 1 process':>15}")
    for (n, label), rate in rates.items():
        one = rates.get((1, label))
        print(f"  {n:<15}{label:<28}{rate:>12,.0f}{rate / raw:>9.1%}"
              f"{(f'{rate / one:.2f}x' if one else '-'):>15}")
    print("Targets (informational): one process >= 30 % of raw; more processes never slower "
          "than one.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2,3", help="API process counts, comma-separated.")
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Seconds of warm-up per run.")
    parser.add_argument("--connections", type=int, default=64, help="Concurrent connections.")
    args = parser.parse_args(argv)
    processes = [int(p) for p in args.processes.split(",")]
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    tool = load.find_tool()
    print(f"Krypton scale bench: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
          f"before (shared machine: expect noise); load generator {tool}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="krypton-scale-") as tmp:
            measure(Path(tmp), processes, tool, args)
    except KeyboardInterrupt:
        print("\nbench.scale: interrupted; servers stopped, temporary files removed")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
