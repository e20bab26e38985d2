"""End to end on the devnet: 1,000 TON payments final in one burst, time from finality to
invoice `paid` (with its settlement), p50/p95.

    .venv/bin/python -m bench.e2e [--payments N] [--db sqlite|postgres]

Creates N invoices through the use case, pays each from a devnet wallet with its memo,
produces one block (the moment all of them become final), then runs the real watcher
(TON Center client + parsers + provider layer against the in-process devnet) until every
invoice is paid. Each invoice's paid_at minus the block time is its latency. The ceiling
is the bare ingest rate (the same transfers handed straight to ingest, no provider, no
parsing) measured in the same run. Target: p95 <= 2 s. Informational only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from krypton.adapters.chains.ton.address import parse
from krypton.app import ingest, invoices, merchants
from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.domain.assets import Chain
from krypton.domain.invoice import InvoiceStatus
from krypton.domain.payment import ObservedTransfer
from krypton.workers.watch import ChainWatch

TARGET_P95 = 2.0


async def _invoices(c: Container, merchant_id: str, n: int) -> list[invoices.Invoice]:
    req = invoices.InvoiceRequest(amount="1", currency="TON", methods=["ton"])
    ids = [(await invoices.create_invoice(c.deps, merchant_id, req, view=lambda i: i.id)).view
           for _ in range(n)]
    return [await invoices.get_invoice(c.deps, merchant_id, i) for i in ids]


async def watcher_run(n: int, settings: Settings) -> tuple[list[float], float]:
    container = await build(settings)
    assert container.devnet is not None
    merchant, _ = await merchants.create_merchant(container.deps, name="Bench")
    created = await _invoices(container, merchant.id, n)
    for inv in created:
        container.devnet.ton.pay_ton("alice", parse(inv.ton_address or "", network="testnet"),
                                     10**9, comment=inv.memo)
    chains = container.chains()
    watchers = ChainWatch(container.deps, chains)
    if chains.ton is not None:
        await chains.ton.learn_jetton_wallets()
    container.devnet.produce("ton")
    final_at = container.deps.clock.now()
    started = time.perf_counter()
    while await watchers.poll():
        pass
    took = time.perf_counter() - started
    await chains.aclose()
    latencies = []
    for inv in created:
        done = await invoices.get_invoice(container.deps, merchant.id, inv.id)
        assert done.status is InvoiceStatus.PAID and done.paid_at is not None, done.status
        latencies.append((done.paid_at - final_at).total_seconds())
    await container.close()
    return latencies, took


async def ingest_ceiling(n: int, settings: Settings) -> float:
    container = await build(settings)
    merchant, _ = await merchants.create_merchant(container.deps, name="Ceiling")
    created = await _invoices(container, merchant.id, n)
    start = time.perf_counter()
    for k, inv in enumerate(created):
        await ingest.ingest_transfer(container.deps, ObservedTransfer(
            Chain.TON, f"tx{k}", 0, "TON", 10**9, inv.ton_address or "", inv.memo, 1, 1), inv.id)
    rate = n / (time.perf_counter() - start)
    await container.close()
    return rate


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        latencies, took = await watcher_run(args.payments, Settings(data_dir=Path(a)))
        ceiling = await ingest_ceiling(args.payments, Settings(data_dir=Path(b)))
    p50, p95 = _pct(latencies, 50), _pct(latencies, 95)
    rate = args.payments / took
    print(f"{args.payments:,} payments final in one block; all paid and settled in {took:.2f} s")
    print(f"{'metric':<44}{'value':>10}{'target':>10}  meets target?")
    print(f"{'finality -> paid p50 (s)':<44}{p50:>10.2f}")
    print(f"{'finality -> paid p95 (s)':<44}{p95:>10.2f}{'<= 2':>10}  "
          f"{'yes' if p95 <= TARGET_P95 else 'NO'}")
    print(f"{'payments/s through the watcher':<44}{rate:>10,.0f}")
    print(f"{'payments/s straight into ingest (ceiling)':<44}{ceiling:>10,.0f}")
    print(f"{'ratio to the ceiling':<44}{rate / ceiling:>10.1%}")


if __name__ == "__main__":
    asyncio.run(main())
