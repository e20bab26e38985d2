"""Matching: observed transfers per second matched against 1,000,000 open invoices.

    .venv/bin/python -m bench.matching [--invoices N] [--transfers N]

Loads N open invoices (each with a TON memo at the platform address and a Tron deposit
address) straight into a fresh embedded SQLite database, then matches pages of 100
observed transfers (half TON by memo, half Tron by deposit address, one in ten unknown)
with the real `krypton.app.matching.find_invoices`. The ceiling is the same lookups
through the raw sqlite3 driver in the same run. Informational: never fails on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from krypton.app import matching, merchants
from krypton.bootstrap import build
from krypton.config import DEVNET_TON_ADDRESS, Settings
from krypton.domain import memo
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer

PAGE = 100
TARGET = 20_000


def _rows(n: int, merchant_id: str, rng: random.Random) -> list[tuple[object, ...]]:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for i in range(n):
        rows.append((f"inv_{i:024x}", merchant_id, "pending", "USD", 999, "[]", 100, 0, 0, 0, "{}",
                     memo.from_random(rng.randbytes(8)), DEVNET_TON_ADDRESS, f"T{i:033d}", i, now,
                     now + timedelta(minutes=15), now + timedelta(days=1)))
    return rows


def load(path: Path, n: int, merchant_id: str, rng: random.Random) -> list[tuple[str, str]]:
    """Insert n invoices with the raw driver; returns their (memo, tron address)."""
    with sqlite3.connect(path) as db:
        rows = _rows(n, merchant_id, rng)
        db.executemany(
            "INSERT OR IGNORE INTO invoices (id, merchant_id, status, price_currency, price_amount, "
            "options, fee_bps, underpayment_tolerance_bps, amount_paid, amount_detected, metadata, "
            "memo, ton_address, tron_address, tron_index, created_at, expires_at, monitor_until) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        return [(str(r[11]), str(r[13])) for r in rows]


def transfers(keys: list[tuple[str, str]], count: int, rng: random.Random) -> list[ObservedTransfer]:
    out = []
    for i in range(count):
        memo_, address = rng.choice(keys)
        if i % 10 == 9:
            memo_, address = "KR-UNKNOWN0", "T" + "9" * 33
        if i % 2:
            out.append(ObservedTransfer(Chain.TON, f"t{i}", 0, "TON", 10**9, DEVNET_TON_ADDRESS,
                                        memo_.lower(), 1, 1))
        else:
            out.append(ObservedTransfer(Chain.TRON, f"t{i}", 0, "USDT_TRC20", 10**6, address, None, 1, 1))
    return out


def raw_ceiling(path: Path, batch: list[list[ObservedTransfer]]) -> float:
    """The same two IN-lookups per page through sqlite3 directly."""
    with sqlite3.connect(path) as db:
        start = time.perf_counter()
        for page in batch:
            memos = [memo.normalise(t.memo) for t in page if t.chain is Chain.TON]
            addrs = [t.destination for t in page if t.chain is Chain.TRON]
            db.execute(f"SELECT memo, id, ton_address FROM invoices WHERE memo IN "
                       f"({','.join('?' * len(memos))})", memos).fetchall()
            db.execute(f"SELECT tron_address, id FROM invoices WHERE tron_address IN "
                       f"({','.join('?' * len(addrs))})", addrs).fetchall()
        return sum(len(p) for p in batch) / (time.perf_counter() - start)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--transfers", type=int, default=50_000)
    args = parser.parse_args(argv)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        container = await build(Settings(data_dir=Path(tmp)))
        merchant, _ = await merchants.create_merchant(container.deps, name="Bench")
        path = Path(tmp) / "krypton.sqlite3"
        started = time.perf_counter()
        keys = load(path, args.invoices, merchant.id, rng)
        print(f"loaded {args.invoices:,} open invoices in {time.perf_counter() - started:.1f} s")
        pages = [transfers(keys, PAGE, rng) for _ in range(args.transfers // PAGE)]
        matched = 0
        start = time.perf_counter()
        for page in pages:
            async with container.deps.uow(write=False) as uow:
                found = await matching.find_invoices(uow, page)
            matched += sum(f is not None for f in found)
        rate = args.transfers / (time.perf_counter() - start)
        ceiling = raw_ceiling(path, pages)
        await container.close()
    print(f"matched {matched:,} of {args.transfers:,} transfers (one in ten is unknown)")
    print(f"{'metric':<40}{'value':>12}{'target':>12}  meets target?")
    print(f"{'transfers matched per second':<40}{rate:>12,.0f}{'>= ' + format(TARGET, ','):>12}  "
          f"{'yes' if rate >= TARGET else 'NO'}")
    print(f"{'raw sqlite3 lookups per second (ceiling)':<40}{ceiling:>12,.0f}")
    print(f"{'ratio to the ceiling':<40}{rate / ceiling:>12.1%}")


if __name__ == "__main__":
    asyncio.run(main())
