"""Webhook delivery: throughput to a local receiver, and delivery lag under a steady load.

    .venv/bin/python -m bench.webhooks [--only sqlite|postgres] [--deliveries N] [--duration S]
                                       [--warmup W] [--rate R] [--loop uvloop|asyncio] [--profile]

The receiver is `bench/webhook_receiver.py` (uvicorn + httptools + uvloop, a bare ASGI
app) in a process of its own: it answers 200 at once and records (arrival, webhook-id,
the payload's `created`).

Per database (SQLite, the embedded default, then PostgreSQL):

1. Ceiling: a plain asyncio + httpx client POSTing a real delivery's body (and headers of
   the same shape) to the receiver, with the sender's concurrency (PER_ENDPOINT in flight
   per endpoint per sender loop), in this process, in the same run; then the same POSTs
   as raw HTTP/1.1 bytes (`bench/webhook_pacer.py`), which shows what the receiver takes
   when the client costs next to nothing.
2. Throughput: a container built in this process, a merchant, an endpoint at the
   receiver (invoice.created only), N invoices through the use case, relayed into N
   deliveries; then the sender runs exactly as the worker job does
   (`webhooks.deliver_due(deps, kit, WEBHOOK_SEND_BATCH)` until nothing is due), timed,
   first one loop, then (with a fresh merchant and N fresh deliveries) two concurrent loops
   in this process, on uvloop as in `krypton serve` (--loop asyncio: as `krypton worker`,
   which runs on asyncio's own loop). Reported: deliveries/s, the ratio to the ceiling,
   and deliveries per CPU-second of this process (steadier than the rate on a shared
   machine).
3. Lag: `krypton serve` as a subprocess (loopback webhooks allowed), a merchant from the
   CLI, an endpoint registered through the API, then POST /api/v1/invoices paced at a
   steady R per second (default 200) for W + S seconds (defaults 3 + 10) by
   `bench/webhook_pacer.py` (raw HTTP/1.1: httpx would take most of a core at 200/s).
   Lag = arrival at the receiver - the payload's `created` (both the same machine's wall
   clock): p50/p95/p99/max of the events created after the first W seconds (a cold server
   catches up during those; their p95/max and a per-second p95 series are shown apart),
   and how many arrived of the invoices created.

Targets (informational: the exit code never depends on speed): >= 1,000 deliveries/s,
lag p95 <= 1 s at 200 invoices/s. With --profile, one more single-loop send run per
database is profiled with cProfile, and where the time goes is printed (by layer and by
function). Results go to bench/results/webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
import uvloop
from tests.support.servers import PostgresServer, free_port

from bench import ROOT, webhook_pacer
from bench.server import KryptonServer, create_merchant, krypton_env
from bench.webhook_receiver import ReceiverProcess, tree_cpu_seconds
from krypton.app import invoices, merchants, webhooks
from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.domain import webhooks as wh
from krypton.web.api.schemas import WebhookObjects
from krypton.workers import loops

RESULTS = ROOT / "bench" / "results"
TARGET_PER_S = 1000.0
TARGET_P95_S = 1.0
INVOICE = invoices.InvoiceRequest(amount="9.99", currency="USD")
INVOICE_JSON = '{"amount":"9.99","currency":"USD"}'
OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=False)
EVENTS = ["invoice.created"]
# Invoices made for the throughput runs this many at a time (setup, not measured).
SETUP_CONCURRENCY = 8
# Stop waiting for the lag run's last deliveries after this long without a new arrival.
DRAIN_IDLE_S = 10.0
# The paced invoice client's connections: at 200/s, room for requests taking up to 0.3 s
# before one starts late.
CLIENT_CONNECTIONS = 64


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted `values` (0 when empty)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * p / 100))]


# --- ceiling: bare httpx to the receiver ------------------------------------------------

@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float
    cpu_s: float  # this process's CPU time over the run
    errors: int = 0

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_s(self) -> float:
        return self.count / self.cpu_s if self.cpu_s else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "per_s": round(self.per_s, 1), "per_cpu_s": round(self.per_cpu_s, 1)}


async def ceiling(url: str, body: bytes, headers: dict[str, str], concurrency: int, n: int) -> Rate:
    """POST `body` `n` times with `concurrency` in flight through one httpx client: the
    fastest this process can push this body to this receiver over HTTP/1.1."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=10.0) as client:
        left, errors = n, 0

        async def worker() -> None:
            nonlocal left, errors
            while left > 0:
                left -= 1
                response = await client.post(url, content=body, headers=headers)
                errors += response.status_code != 200

        # Connections are opened before the clock starts, as the sender's pool keeps them.
        await asyncio.gather(*(client.post(url + "/warm", content=b"{}") for _ in range(concurrency)))
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Rate(n, time.perf_counter() - started, time.process_time() - cpu, errors)


async def raw_ceiling(receiver: ReceiverProcess, body: bytes, headers: dict[str, str], concurrency: int,
                      n: int) -> Rate:
    """The same POSTs written as raw HTTP/1.1 (bench/webhook_pacer.py): what the receiver
    takes when the client costs next to nothing."""
    cpu = time.process_time()
    seconds, errors = await webhook_pacer.closed_loop(
        "127.0.0.1", receiver.port, "/hooks", body, headers, count=n, connections=concurrency)
    return Rate(n, seconds, time.process_time() - cpu, errors)


# --- throughput: the sender in this process ----------------------------------------------

async def _create_invoices(c: Container, merchant_id: str, n: int) -> None:
    async def some(count: int) -> None:
        for _ in range(count):
            await invoices.create_invoice(c.deps, merchant_id, INVOICE)
    share, extra = divmod(n, SETUP_CONCURRENCY)
    await asyncio.gather(*(some(share + (k < extra)) for k in range(SETUP_CONCURRENCY)))


async def prepare(c: Container, url: str, n: int) -> wh.Endpoint:
    """A fresh merchant whose endpoint at `url` has `n` deliveries due."""
    merchant, _ = await merchants.create_merchant(c.deps, name="Webhook bench")
    endpoint, _ = await webhooks.create_endpoint(c.deps, c.webhook_kit(), merchant.id, url, EVENTS)
    await _create_invoices(c, merchant.id, n)
    while await webhooks.relay(c.deps, OBJECTS, loops.WEBHOOK_RELAY_BATCH):
        pass
    return endpoint


async def send_all(c: Container, n_loops: int) -> int:
    """Run `n_loops` sender loops side by side, each as the worker job does, until nothing
    is due; how many deliveries were attempted."""
    deps, kit = c.deps, c.webhook_kit()

    async def one() -> int:
        sent = 0
        while done := await webhooks.deliver_due(deps, kit, loops.WEBHOOK_SEND_BATCH):
            sent += done
        return sent
    return sum(await asyncio.gather(*(one() for _ in range(n_loops))))


async def timed_send(c: Container, receiver: ReceiverProcess, n_loops: int) -> tuple[Rate, int, float]:
    """The send run's rate, how many distinct webhook-ids arrived, and the receiver's CPU
    seconds meanwhile."""
    receiver.clear()
    receiver_cpu = tree_cpu_seconds(receiver.pid)
    cpu, started = time.process_time(), time.perf_counter()
    sent = await send_all(c, n_loops)
    rate = Rate(sent, time.perf_counter() - started, time.process_time() - cpu)
    arrived = len({webhook_id for _, webhook_id, _ in receiver.records()})
    return rate, arrived, tree_cpu_seconds(receiver.pid) - receiver_cpu


async def sample_request(c: Container, endpoint: wh.Endpoint) -> tuple[bytes, dict[str, str]]:
    """A real delivery's body, and headers of the shape the sender signs it with."""
    async with c.deps.uow(write=False) as uow:
        page, _ = await uow.webhooks.deliveries_page(endpoint.id, limit=1, starting_after=None)
    body = page[0].body
    secret = wh.new_secret(bytes(wh.SECRET_BYTES))
    headers = wh.headers([secret], page[0].event_id, int(time.time()), body)
    return body, {**headers, "User-Agent": "Krypton-Webhooks/1", "Accept-Encoding": "identity"}


@dataclass
class Throughput:
    deliveries: int
    ceiling: Rate
    ceiling_two: Rate  # at twice the concurrency: what two sender loops could reach
    ceiling_raw: Rate  # raw HTTP/1.1 at the sender's concurrency: the receiver's capacity
    one: Rate
    two: Rate
    arrived_one: int
    arrived_two: int
    receiver_cpu_s_one: float
    body_bytes: int
    profile: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"deliveries": self.deliveries, "body_bytes": self.body_bytes,
                "ceiling": self.ceiling.as_json(), "ceiling_2x_concurrency": self.ceiling_two.as_json(),
                "ceiling_raw_http": self.ceiling_raw.as_json(),
                "one_loop": self.one.as_json(), "two_loops": self.two.as_json(),
                "arrived_one_loop": self.arrived_one, "arrived_two_loops": self.arrived_two,
                "receiver_cpu_s_one_loop": round(self.receiver_cpu_s_one, 2),
                "ratio_one_loop_to_ceiling": round(self.one.per_s / self.ceiling.per_s, 4)
                if self.ceiling.per_s else 0.0,
                "profile": self.profile}


async def throughput(settings: Settings, receiver: ReceiverProcess, n: int, profile: bool,
                     db: str) -> Throughput:
    c = await build(settings)
    try:
        print(f"  [{db}] throughput: {n:,} invoices -> deliveries (setup)", flush=True)
        endpoint = await prepare(c, receiver.url, n)
        body, headers = await sample_request(c, endpoint)
        concurrency = webhooks.PER_ENDPOINT
        print(f"  [{db}] ceiling: bare httpx, {concurrency} and {2 * concurrency} in flight, then raw "
              f"HTTP/1.1; {n:,} POSTs of {len(body):,} bytes each", flush=True)
        top = await ceiling(receiver.url, body, headers, concurrency, n)
        top_two = await ceiling(receiver.url, body, headers, 2 * concurrency, n)
        top_raw = await raw_ceiling(receiver, body, headers, concurrency, n)
        print(f"  [{db}] sender, one loop: {n:,} deliveries", flush=True)
        one, arrived_one, receiver_cpu = await timed_send(c, receiver, 1)
        print(f"  [{db}] sender, two loops: {n:,} more deliveries (setup, then timed)", flush=True)
        await prepare(c, receiver.url, n)
        two, arrived_two, _ = await timed_send(c, receiver, 2)
        found: dict[str, Any] = {}
        if profile:
            print(f"  [{db}] profiled run (cProfile), one loop: {n:,} more deliveries", flush=True)
            await prepare(c, receiver.url, n)
            found = await profiled(lambda: send_all(c, 1), RESULTS / f"webhooks-{db}.prof")
        return Throughput(n, top, top_two, top_raw, one, two, arrived_one, arrived_two, receiver_cpu,
                          len(body), found)
    finally:
        await c.close()


# --- where the sender's time goes --------------------------------------------------------

# (layer, substrings of a function's file path or name); the first that matches wins.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("SQLite driver (sqlite3 C calls)", ("sqlite3.Cursor", "sqlite3.Connection", "aiosqlite")),
    ("asyncpg", ("asyncpg",)),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("httpx", ("/httpx/",)),
    ("httpcore", ("/httpcore/",)),
    ("h11 (HTTP/1.1 parsing)", ("/h11/",)),
    ("anyio (sockets, locks)", ("/anyio/",)),
    ("socket I/O and selector", ("_socket.socket", "select.epoll", "selectors.py", "uvloop")),
    ("asyncio event loop", ("asyncio/",)),
    ("secret opening (AES-GCM)", ("cryptography", "envelope.py")),
    ("signing (HMAC) and headers", ("hmac.py", "_hashlib", "domain/webhooks.py", "base64")),
    ("URL checks (ssrf.py, ipaddress)", ("ssrf.py", "ipaddress.py", "idna")),
    ("sender adapter", ("adapters/webhooks/sender.py",)),
    ("use case (app/webhooks.py)", ("app/webhooks.py",)),
    ("repository (adapters/db)", ("adapters/db/",)),
    ("json", ("json/", "_json")),
    ("datetime", ("datetime", "_strptime")),
]


def _layer(func: tuple[str, int, str]) -> str:
    where = f"{func[0]}:{func[2]}"
    for name, needles in LAYERS:
        if any(needle in where for needle in needles):
            return name
    return "other"


async def profiled(run: Callable[[], Awaitable[int]], out: Path) -> dict[str, Any]:
    """Run under cProfile; the self time by layer and the heaviest functions (cProfile
    slows Python code more than C code, so shares are indicative, not exact)."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    sent = await run()
    profiler.disable()
    took = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(out)
    stats = pstats.Stats(profiler)
    table: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in table.values()) or 1.0
    layers: dict[str, float] = {}
    for func, (_, _, tt, _, _) in table.items():
        layers[_layer(func)] = layers.get(_layer(func), 0.0) + tt
    heaviest = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:15]
    inclusive = {f"{Path(f[0]).name}:{f[2]}": ct for f, (_, _, _, ct, _) in table.items()
                 if "krypton" in f[0] and f[2] in _KRYPTON_FUNCTIONS}
    return {
        "deliveries": sent, "seconds": round(took, 2), "file": str(out),
        "self_time_by_layer": {k: round(v / total, 3) for k, v in
                               sorted(layers.items(), key=lambda kv: kv[1], reverse=True)},
        "heaviest_self_time": [{"function": f"{Path(f[0]).name}:{f[1]}:{f[2]}", "calls": nc,
                                "self_s": round(tt, 3), "share": round(tt / total, 3)}
                               for f, (_, nc, tt, _, _) in heaviest],
        "krypton_inclusive_s": {k: round(v, 3) for k, v in
                                sorted(inclusive.items(), key=lambda kv: kv[1], reverse=True)},
    }


# Inclusive time of these tells claim / attempt / record apart.
_KRYPTON_FUNCTIONS = {"deliver_due", "claim", "_attempt", "send", "_post", "_record", "_note_health",
                      "save_delivery", "add_attempts", "_secret", "headers", "resolve_target",
                      "parse_url", "commit"}


def print_profile(db: str, found: dict[str, Any]) -> None:
    if not found:
        return
    print(f"\n  [{db}] profiled send run: {found['deliveries']:,} deliveries in {found['seconds']:.1f} s"
          f" under cProfile ({found['file']})")
    print("    self time by layer:")
    for layer, share in found["self_time_by_layer"].items():
        if share >= 0.01:
            print(f"      {layer:<40}{share:>7.1%}")
    print("    heaviest functions (self time):")
    for row in found["heaviest_self_time"][:12]:
        print(f"      {row['function']:<64}{row['calls']:>9,}{row['share']:>8.1%}")
    print("    Krypton functions, inclusive seconds:")
    for name, seconds in list(found["krypton_inclusive_s"].items())[:12]:
        print(f"      {name:<64}{seconds:>9.2f}")


# --- lag: krypton serve under a paced load -------------------------------------------------

@dataclass
class Lag:
    sent: int  # invoices created (201), warm-up included
    failed: int
    offered_per_s: float
    http_p95_ms: float
    received: int  # distinct webhook-ids that arrived, warm-up included
    duplicates: int
    drain_s: float  # after the last invoice, until the last delivery arrived
    measured: int  # deliveries of events created after the warm-up: the figures below
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float
    warmup_p95_s: float  # of the warm-up's events (a cold server catching up)
    warmup_max_s: float
    p95_by_second: list[float | None]  # of events created in each second, warm-up first
    server_cpu_cores: float
    client_cpu_cores: float  # this process, sending the invoices

    def as_json(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else
                [None if x is None else round(x, 3) for x in v] if isinstance(v, list) else v
                for k, v in asdict(self).items()}


async def _drain(receiver: ReceiverProcess, expected: int) -> float:
    """Wait until `expected` deliveries arrived or none came for DRAIN_IDLE_S; how long."""
    started = last_change = time.perf_counter()
    seen = -1
    while True:
        count = await asyncio.to_thread(receiver.count)
        now = time.perf_counter()
        if count != seen:
            seen, last_change = count, now
        if count >= expected or now - last_change > DRAIN_IDLE_S:
            return now - started
        await asyncio.sleep(0.1)


def lag_figures(records: list[tuple[float, str, str | None]]) -> tuple[list[tuple[float, float]], int]:
    """(payload `created`, lag) of each distinct webhook-id's first arrival, lag = arrival -
    created, in order of lag; and how many arrivals repeated an id."""
    first: dict[str, tuple[float, float]] = {}
    duplicates = 0
    for arrived, webhook_id, created in records:
        if created is None:
            continue
        if webhook_id in first:
            duplicates += 1
            continue
        made = datetime.fromisoformat(created).astimezone(UTC).timestamp()
        first[webhook_id] = (made, arrived - made)
    return sorted(first.values(), key=lambda pair: pair[1]), duplicates


def _by_second(pairs: list[tuple[float, float]], since: float) -> list[float | None]:
    """p95 lag of the events created in each whole second from `since` (None: the server
    created no invoice in that second)."""
    seconds: dict[int, list[float]] = {}
    for made, lag_s in pairs:  # in order of lag, so each second's list comes out sorted
        seconds.setdefault(max(0, int(made - since)), []).append(lag_s)
    return [_pct(seconds[k], 95) if k in seconds else None for k in range(max(seconds, default=-1) + 1)]


def lag(env: dict[str, str], work: Path, receiver: ReceiverProcess, rate: float, seconds: float,
        warmup: float, db: str) -> Lag:
    env = {**env, "KRYPTON_WEBHOOKS_ALLOW_LOOPBACK": "1"}
    key = create_merchant(env)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with KryptonServer(env, work / "server.log") as server:
        status, text = server.request("POST", "/api/v1/webhook-endpoints",
                                      json.dumps({"url": receiver.url, "events": EVENTS}), headers)
        if status != 201:
            raise RuntimeError(f"POST /api/v1/webhook-endpoints answered {status}: {text[:300]}\n"
                               f"{server.log_tail(8)}")
        receiver.clear()
        print(f"  [{db}] lag: krypton serve, {rate:g} invoices/s for {warmup:g} s of warm-up, then "
              f"{seconds:g} s", flush=True)
        cpu, started, client_cpu = server.cpu_seconds(), time.perf_counter(), time.process_time()
        load = asyncio.run(webhook_pacer.paced(
            "127.0.0.1", int(env["KRYPTON_PORT"]), "/api/v1/invoices", INVOICE_JSON.encode(), headers,
            rate=rate, seconds=warmup + seconds, connections=CLIENT_CONNECTIONS, expect=201))
        drained = asyncio.run(_drain(receiver, load.ok))
        took = time.perf_counter() - started
        cores, client_cores = (server.cpu_seconds() - cpu) / took, (time.process_time() - client_cpu) / took
        if load.failed:
            print(f"  [{db}] {load.failed} invoice requests failed (status: count, 0 = no answer: "
                  f"{load.statuses}); server log:\n{server.log_tail(8)}")
    pairs, duplicates = lag_figures(receiver.records())
    boundary = load.started_at + warmup
    steady = [lag_s for made, lag_s in pairs if made >= boundary]
    cold = [lag_s for made, lag_s in pairs if made < boundary]
    return Lag(load.ok, load.failed, load.offered_per_s, _pct(load.latencies_s, 95) * 1000, len(pairs),
               duplicates, drained, len(steady), _pct(steady, 50), _pct(steady, 95), _pct(steady, 99),
               steady[-1] if steady else 0.0, _pct(cold, 95), cold[-1] if cold else 0.0,
               _by_second(pairs, load.started_at), cores, client_cores)


# --- one database, and the report ----------------------------------------------------------

def bench_database(db: str, work: Path, receiver: ReceiverProcess,
                   args: argparse.Namespace) -> dict[str, Any]:
    work.mkdir(parents=True)
    with ExitStack() as stack:
        if db == "postgres":
            pg = stack.enter_context(PostgresServer(work / "pg"))
            settings = Settings(data_dir=work / "inproc", database_url=pg.url, webhooks_allow_loopback=True)
            env = krypton_env(free_port(), KRYPTON_DATABASE_URL=pg.create_database("lag"),
                              KRYPTON_DATA_DIR=str(work / "served"))
        else:
            settings = Settings(data_dir=work / "inproc", webhooks_allow_loopback=True)
            env = krypton_env(free_port(), KRYPTON_DATA_DIR=str(work / "served"))
        result: dict[str, Any] = {}
        if not args.skip_throughput:
            factory = uvloop.new_event_loop if args.loop == "uvloop" else None
            with asyncio.Runner(loop_factory=factory) as runner:
                result["throughput"] = runner.run(throughput(settings, receiver, args.deliveries,
                                                             args.profile, db)).as_json()
        if not args.skip_lag:
            result["lag"] = lag(env, work, receiver, args.rate, args.duration, args.warmup, db).as_json()
    return result


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def print_table(db: str, r: dict[str, Any], rate: float) -> None:
    title = {"sqlite": "SQLite (embedded default)", "postgres": "PostgreSQL"}[db]
    if "error" in r:
        print(f"\n{title}: not measured: {r['error']}")
        return
    rows: list[tuple[str, str, str, str]] = []
    if t := r.get("throughput"):
        one, two, top, top2 = t["one_loop"], t["two_loops"], t["ceiling"], t["ceiling_2x_concurrency"]
        raw = t["ceiling_raw_http"]
        rows += [
            ("deliveries/s, one sender loop", f"{one['per_s']:,.0f}", f">= {TARGET_PER_S:,.0f}",
             _yes(one["per_s"] >= TARGET_PER_S)),
            ("  arrived (distinct webhook-ids) / sent", f"{t['arrived_one_loop']:,} / {one['count']:,}",
             "all", _yes(t["arrived_one_loop"] == one["count"] == t["deliveries"])),
            ("  deliveries per CPU-second (this process)", f"{one['per_cpu_s']:,.0f}", "", ""),
            ("  receiver CPU busy (cores)", f"{t['receiver_cpu_s_one_loop'] / one['seconds']:.2f}"
             if one["seconds"] else "-", "", ""),
            (f"ceiling: bare httpx POSTs/s ({webhooks.PER_ENDPOINT} in flight)", f"{top['per_s']:,.0f}",
             "", ""),
            ("  POSTs per CPU-second (this process)", f"{top['per_cpu_s']:,.0f}", "", ""),
            ("  one loop / ceiling", f"{t['ratio_one_loop_to_ceiling']:.1%}", "", ""),
            ("raw HTTP/1.1 POSTs/s, same concurrency (receiver)", f"{raw['per_s']:,.0f}", "", ""),
            ("  one loop / raw", f"{one['per_s'] / raw['per_s']:.1%}" if raw["per_s"] else "-", "", ""),
            ("deliveries/s, two sender loops", f"{two['per_s']:,.0f}", "", ""),
            ("  two loops / one loop", f"{two['per_s'] / one['per_s']:.2f}x" if one["per_s"] else "-",
             "> 1.00x?", ""),
            ("  arrived / sent", f"{t['arrived_two_loops']:,} / {two['count']:,}", "all",
             _yes(t["arrived_two_loops"] == two["count"] == t["deliveries"])),
            (f"  ceiling at {2 * webhooks.PER_ENDPOINT} in flight", f"{top2['per_s']:,.0f}", "", ""),
        ]
    if lg := r.get("lag"):
        rows += [
            (f"lag at {rate:g} invoices/s, after warm-up: p50 (s)", f"{lg['p50_s']:.3f}", "", ""),
            ("  p95 (s)", f"{lg['p95_s']:.3f}", f"<= {TARGET_P95_S:g}", _yes(lg["p95_s"] <= TARGET_P95_S)),
            ("  p99 (s)", f"{lg['p99_s']:.3f}", "", ""),
            ("  max (s)", f"{lg['max_s']:.3f}", "", ""),
            ("  deliveries measured", f"{lg['measured']:,}", "", ""),
            ("  warm-up's p95 / max (s)", f"{lg['warmup_p95_s']:.3f} / {lg['warmup_max_s']:.3f}", "", ""),
            ("  received / invoices created", f"{lg['received']:,} / {lg['sent']:,}", "all",
             _yes(lg["received"] == lg["sent"] and lg["failed"] == 0)),
            ("  invoice POSTs failed", f"{lg['failed']:,}", "0", ""),
            ("  rate offered (invoices/s)", f"{lg['offered_per_s']:.1f}", "", ""),
            ("  invoice POST p95 (ms)", f"{lg['http_p95_ms']:.1f}", "", ""),
            ("  duplicate arrivals", f"{lg['duplicates']:,}", "", ""),
            ("  drain after the last invoice (s)", f"{lg['drain_s']:.2f}", "", ""),
            ("  server CPU busy (cores)", f"{lg['server_cpu_cores']:.2f}", "", ""),
            ("  invoice client CPU busy (cores)", f"{lg['client_cpu_cores']:.2f}", "", ""),
        ]
    print(f"\n{title}")
    print(f"  {'metric':<46}{'value':>16}  {'target':>10}  meets target?")
    for label, value, target, ok in rows:
        print(f"  {label:<46}{value:>16}  {target:>10}  {ok}")
    if lg:
        print("  lag p95 (s) of the events made in each second, warm-up first: "
              + " ".join("-" if v is None else f"{v:.2f}" for v in lg["p95_by_second"]))
    if t := r.get("throughput"):
        print_profile(db, t.get("profile") or {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="Benchmark one database.")
    parser.add_argument("--deliveries", type=int, default=10_000, help="Deliveries per send run.")
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds of paced load (lag).")
    parser.add_argument("--rate", type=float, default=200.0, help="Invoices per second (lag).")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="Seconds of paced load before the lag is measured (shown apart).")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="Event loop of the throughput runs (krypton serve runs on uvloop, "
                        "krypton worker on asyncio's own).")
    parser.add_argument("--profile", action="store_true", help="Also profile a send run (cProfile).")
    parser.add_argument("--skip-throughput", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-lag", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    # The container's own log lines (the loopback warning, key sources) are not the bench's.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    load = os.getloadavg()
    print(f"Krypton webhook bench: {args.deliveries:,} deliveries per send run; lag at {args.rate:g}"
          f" invoices/s for {args.duration:g} s; {os.cpu_count()} cores, load average before "
          f"{load[0]:.2f} (shared machine: expect noise)", flush=True)
    report: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "loadavg_before": load, "args": vars(args), "databases": {}}
    started = time.monotonic()
    try:
        with (tempfile.TemporaryDirectory(prefix="krypton-webhooks-") as tmp,
              ReceiverProcess(Path(tmp) / "receiver.log") as receiver):
            for db in [args.only] if args.only else ["sqlite", "postgres"]:
                try:
                    result = bench_database(db, Path(tmp) / db, receiver, args)
                except Exception as exc:  # one database failing must not hide the other
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                report["databases"][db] = result
                print_table(db, result, args.rate)
    except KeyboardInterrupt:
        print("\nbench.webhooks: interrupted; servers stopped, temporary files removed")
        return 130
    report["loadavg_after"] = os.getloadavg()
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "webhooks.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nLoad average after {report['loadavg_after'][0]:.2f}. Wrote bench/results/webhooks.json "
          f"({report['elapsed_s']:.0f} s in all). Informational only: targets never fail the run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
