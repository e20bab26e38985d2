"""One seeded world: the devnet chains, the real container and workers, a flaky webhook
receiver, crashes and restarts, driven by a plan of steps drawn from one seed.

Determinism: the plan comes from `random.Random(seed)`; each step carries its own `salt`,
so a step does the same thing whether or not the steps before it ran (what shrinking needs).
Ids, the webhook retry spread and the provider client's backoff, jitter and monotonic clock
are all derived from the seed or the manual clock; nothing reads the wall clock.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from unittest import mock

from krypton import bootstrap
from krypton.adapters.chains.provider import ProviderClient, ProviderError
from krypton.adapters.chains.ton.address import parse
from krypton.app import invoices, merchants, relay, webhooks
from krypton.app.deps import Deps
from krypton.bootstrap import ChainAdapters, Container, build
from krypton.config import ChainProvider, Settings
from krypton.devnet.devnet import Devnet
from krypton.devnet.faults import Fault
from krypton.devnet.tron import COUNTERFEIT_CONTRACT, Result
from krypton.domain.errors import DomainError
from krypton.domain.invoice import Invoice
from krypton.web.api.schemas import WebhookObjects
from krypton.workers.watch import ChainWatch
from tests.simulation.clocks import ServerClock, jump_back, sample_heads
from tests.support.clock import ManualClock

SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
OBJECTS = WebhookObjects("http://127.0.0.1:8000", testnet=True)
METHODS = ("ton", "usdt_ton", "usdt_trc20")
# Relative weights of the step kinds in a plan.
WEIGHTS: dict[str, int] = {
    "create_invoice": 12, "cancel_invoice": 3, "pay": 18, "produce": 12, "watch": 14,
    "provider_fault": 5, "tron_lag": 2, "reorg": 3, "advance": 8, "jump": 2, "expire": 4,
    "relay": 6, "deliver": 7, "receiver_mood": 4, "projections": 3, "crash": 4, "restart": 1,
    "provider_lie": 3, "jump_back": 2,
}
# Half the worlds read each chain through three providers under a quorum of two, one of
# which lies now and then (the provider_lie step; adapters/chains/quorum.py).
PROVIDER_NAMES = ("alpha", "beta", "gamma")
LIES = ("amount", "amount", "omit", "stale_head")
PAY_KINDS = ("exact", "exact", "partial", "over", "twice", "wrong_asset", "no_memo",
             "counterfeit", "bounce", "reverted", "late")


class Crash(Exception):
    """A process dying inside a unit of work: raised instead of its commit."""


@dataclass(frozen=True)
class Step:
    kind: str
    salt: int

    def __str__(self) -> str:
        return f"{self.kind}#{self.salt}"


def plan(seed: int, steps: int) -> list[Step]:
    rng = random.Random(seed)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    return [Step(rng.choices(kinds, weights)[0], rng.getrandbits(32)) for _ in range(steps)]


# --- determinism helpers --------------------------------------------------------------------

class SeededIds:
    """Ids and secrets from the seed: the same world makes the same ids."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids/{seed}")
        self._n = 0

    def new(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n:012x}{self._rng.getrandbits(80):020x}"

    def secret(self) -> str:
        return f"{self._rng.getrandbits(256):064x}"

    def random_bytes(self, n: int) -> bytes:
        return self._rng.getrandbits(8 * n).to_bytes(n, "big") if n else b""


class SimMonotonic:
    """The provider client's monotonic clock and sleep: the manual clock plus whatever it slept,
    so backoffs, rate limits and breakers replay without waiting."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.slept = 0.0

    def __call__(self) -> float:
        return self.clock.now().timestamp() + self.slept

    async def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)


# --- the webhook receiver -------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int | None
    excerpt: str = ""
    duration_ms: int = 1
    error: str | None = None


@dataclass
class Receiver:
    """The merchants' HTTP servers, in process: how each URL answers now, and what came."""

    moods: dict[str, str] = field(default_factory=dict)  # url -> ok | fail | slow | redirect | gone
    got: list[tuple[str, str]] = field(default_factory=list)  # (url, webhook-id) that came through
    answered_gone: set[str] = field(default_factory=set)  # urls that ever answered 410

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        mood = self.moods.get(url, "ok")
        if mood == "slow":
            return Answer(None, duration_ms=10_000, error="timeout")
        if mood == "fail":
            return Answer(500, "answer 500")
        if mood == "redirect":
            return Answer(302, "answer 302")
        if mood == "gone":
            self.answered_gone.add(url)
            return Answer(410, "answer 410")
        self.got.append((url, headers["webhook-id"]))
        return Answer(200, "answer 200")


class AnyUrl:
    async def check(self, url: str) -> None:
        """Every merchant URL here is in process: nothing to resolve."""


# --- what the world sent ----------------------------------------------------------------------

@dataclass
class Sent:
    """One transfer the world put on a chain, and what Krypton must make of it."""

    chain: str  # "ton" | "tron"
    tx_id: str
    amount: int
    destination: str
    kind: str
    # counted: a payment or unmatched; unmatched: never a payment; never: neither (ignored)
    expect: str
    tron_tx: Any = None  # the devnet TronTx, to find it again after a reorg
    # Whether it ever was a real payment: a reorg may revert it later, the watcher then
    # fails the payment, but until its next round the payment stands.
    ever_counted: bool = False

    def __post_init__(self) -> None:
        self.ever_counted = self.expect == "counted"


# --- crashes ------------------------------------------------------------------------------------

class _CrashingUow:
    def __init__(self, inner: Any, factory: CrashingUows) -> None:
        self._inner, self._factory = inner, factory

    async def __aenter__(self) -> Any:
        uow = await self._inner.__aenter__()
        factory = self._factory
        commit = uow.commit

        async def crashing_commit() -> None:
            if factory.countdown is not None:
                factory.countdown -= 1
                if factory.countdown <= 0:
                    factory.countdown = None
                    raise Crash("the process died before this commit")
            await commit()
        uow.commit = crashing_commit
        return uow

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


class CrashingUows:
    """The unit-of-work factory, able to die at the n-th commit from now."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self.countdown: int | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> _CrashingUow:
        return _CrashingUow(self.inner(*args, **kwargs), self)


# --- the world ------------------------------------------------------------------------------------

class World:
    def __init__(self, seed: int, new_database: Callable[[Path], tuple[str, Callable[[], None]]]) -> None:
        self.seed = seed
        # In memory where the system has it: a world's commits need no fsync to be replayable.
        self.tmp = Path(tempfile.mkdtemp(prefix=f"krypton-sim-{seed}-", dir=SCRATCH))
        self.url, self._drop = new_database(self.tmp)
        self.clock = ManualClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
        self.monotonic = SimMonotonic(self.clock)
        self.server = ServerClock(self.clock)  # the chains' clock (above) plus a jump or none
        self.ids = SeededIds(seed)
        self.receiver = Receiver()
        self.merchant_ids: list[str] = []
        self.endpoints: dict[str, tuple[str, str]] = {}  # endpoint id -> (merchant id, url)
        self.gone_urls: set[str] = set()
        self.invoice_ids: list[str] = []
        self.sent: dict[tuple[str, str], Sent] = {}
        self.trace: list[str] = []
        self.restarts = 0
        self.devnet: Devnet | None = None
        self._container: Container | None = None
        self._chains: ChainAdapters | None = None
        self._watcher: ChainWatch | None = None
        self.deps: Deps | None = None
        self.uows: CrashingUows | None = None
        self.kit: webhooks.Kit | None = None
        chosen = random.Random(f"providers/{seed}")
        self.providers = PROVIDER_NAMES if chosen.random() < 0.5 else ()
        self.liar = chosen.choice(PROVIDER_NAMES)

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def container(self) -> Container:
        assert self._container is not None
        return self._container

    @property
    def watch(self) -> ChainWatch:
        assert self._watcher is not None
        return self._watcher

    @property
    def d(self) -> Deps:
        assert self.deps is not None
        return self.deps

    async def boot(self) -> None:
        """Start (or restart) the process on the same database and the same chains."""
        providers = [ChainProvider(name=name) for name in self.providers]
        quorum = 2 if providers else 1
        settings = Settings(data_dir=self.tmp, database_url=self.url, api_key_cache_seconds=0,
                            provider_timeout_seconds=5.0, ton_providers=providers,
                            tron_providers=providers, ton_quorum=quorum, tron_quorum=quorum)
        container = await build(settings, clock=self.clock, devnet_nonce=f"sim{self.seed}")
        if self.devnet is None:
            self.devnet = container.devnet
        else:
            container.devnet = self.devnet  # a restart: the chains go on
        self.uows = CrashingUows(container.deps.uow)
        container.deps = self.deps = dataclasses.replace(container.deps, ids=self.ids,
                                                         uow=cast(Any, self.uows), clock=self.server)
        self._container = container
        await container.start_devnet()
        client = functools.partial(ProviderClient, clock=self.monotonic,
                                   sleep=self.monotonic.sleep, rng=random.Random(f"provider/{self.seed}"))
        with mock.patch.object(bootstrap, "ProviderClient", client):
            self._chains = container.chains()
        self._watcher = ChainWatch(self.deps, self._chains)
        if self.kit is None:  # stateless (the key file in data_dir): made once, 30 ms saved a boot
            self.kit = dataclasses.replace(container.webhook_kit(), urls=AnyUrl(), sender=self.receiver)

    async def shutdown(self) -> None:
        if self._chains is not None:
            await self._chains.aclose()
            self._chains = None
        if self._container is not None:
            await self._container.close()
            self._container = None

    async def close(self) -> None:
        try:
            await self.shutdown()
        finally:
            self._drop()
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def setup(self) -> None:
        """Two merchants, three endpoints: one of them may answer 410 Gone (then it is off)."""
        await self.boot()
        rng = random.Random(f"setup/{self.seed}")
        for n in range(2):
            merchant, _ = await merchants.create_merchant(
                self.d, name=f"Shop {n}", fee_bps=rng.choice([0, 100, 333]),
                underpayment_tolerance_bps=rng.choice([0, 0, 100, 500]), methods=METHODS)
            self.merchant_ids.append(merchant.id)
        for n, (merchant_id, name) in enumerate([(self.merchant_ids[0], "a"), (self.merchant_ids[1], "b"),
                                                  (self.merchant_ids[1], "gone")]):
            url = f"https://shop{n}.example/hooks/{name}"
            endpoint, _ = await webhooks.create_endpoint(self.d, self.kit_, merchant_id, url, ("*",))
            self.endpoints[endpoint.id] = (merchant_id, url)
            if name == "gone":
                self.gone_urls.add(url)

    @property
    def kit_(self) -> webhooks.Kit:
        assert self.kit is not None
        return self.kit

    # --- steps --------------------------------------------------------------------------------

    async def step(self, step: Step) -> None:
        rng = random.Random(step.salt)
        note = await getattr(self, f"_{step.kind}")(rng)
        self.trace.append(f"{step}: {note}" if note else str(step))

    async def _create_invoice(self, rng: random.Random) -> str:
        merchant_id = rng.choice(self.merchant_ids)
        currency = rng.choice(["TON", "USDT", "USD"])
        amount = rng.choice({"TON": ["0.5", "1", "2.5", "10"], "USDT": ["1", "9.99", "25", "250"],
                             "USD": ["1", "4.99", "20", "150"]}[currency])
        methods = rng.choice([None, ["ton"], ["usdt_ton"], ["usdt_trc20"], ["ton", "usdt_trc20"]])
        expires_in = rng.choice([None, 120, 600, 1800])
        request = invoices.InvoiceRequest(amount=amount, currency=currency, methods=methods,
                                          expires_in=expires_in)
        try:
            created = await invoices.create_invoice(self.d, merchant_id, request)
        except DomainError as exc:  # a price no chosen method takes: refused, as it should be
            return f"refused {amount} {currency} {methods}: {exc}"
        invoice = created.invoice
        assert invoice is not None
        self.invoice_ids.append(invoice.id)
        return f"{invoice.id} {amount} {currency} {methods}"

    async def _invoice(self, rng: random.Random) -> Invoice | None:
        if not self.invoice_ids:
            return None
        invoice_id = rng.choice(self.invoice_ids)
        async with self.d.uow(write=False) as uow:
            return await uow.invoices.get(invoice_id)

    async def _cancel_invoice(self, rng: random.Random) -> str:
        invoice = await self._invoice(rng)
        if invoice is None:
            return "no invoice"
        try:
            await invoices.cancel_invoice(self.d, invoice.merchant_id, invoice.id)
        except DomainError as exc:  # paid or partly paid: refused, and that is a rule
            return f"{invoice.id} refused: {exc}"
        return f"{invoice.id} cancelled"

    async def _pay(self, rng: random.Random) -> str:
        invoice = await self._invoice(rng)
        if invoice is None:
            return "no invoice"
        kind = rng.choice(PAY_KINDS)
        options = [o for o in invoice.options if invoice.asset in (None, o.asset)]
        option = rng.choice(options or list(invoice.options))
        asset, due = option.asset, option.amount
        if kind == "wrong_asset":
            others = [a for a in ("TON", "USDT_TON", "USDT_TRC20") if invoice.option(a) is None]
            if not others:
                kind = "exact"
            else:
                asset = rng.choice(others)
                due = {"TON": 10**9, "USDT_TON": 5 * 10**6, "USDT_TRC20": 5 * 10**6}[asset]
        amount = {"partial": max(1, due * rng.randint(30, 90) // 100),
                  "over": due + due * rng.randint(1, 50) // 100}.get(kind, due)
        payer = rng.choice(["alice", "bob", "carol"])
        times = 2 if kind == "twice" else 1
        notes = []
        for _ in range(times):
            notes.append(self._send(invoice, asset, amount, kind, payer))
        return f"{invoice.id} {kind} {asset} {amount}: {', '.join(notes)}"

    def _send(self, invoice: Invoice, asset: str, amount: int, kind: str, payer: str) -> str:
        devnet = self.devnet
        assert devnet is not None
        memo = None if kind == "no_memo" else invoice.memo
        if asset in ("TON", "USDT_TON"):
            if invoice.ton_address is None:
                return "no TON address"
            to = parse(invoice.ton_address, network="testnet")
            if asset == "TON":
                bounce = kind == "bounce"
                tx = devnet.ton.pay_ton(payer, to, amount, comment=memo, bounceable=bounce,
                                        undeliverable=bounce)
                expect = "never" if bounce else "counted"
            else:
                fake = kind == "counterfeit"
                tx = devnet.ton.pay_jetton(payer, to, amount, comment=memo, counterfeit=fake)
                expect = "unmatched" if fake else "counted"
            self.sent[("ton", tx.hash)] = Sent("ton", tx.hash, amount, invoice.ton_address, kind, expect)
            return f"ton tx {tx.hash[:10]} {expect}"
        if invoice.tron_address is None:
            return "no Tron address"
        contract = COUNTERFEIT_CONTRACT if kind == "counterfeit" else None
        result: Result = "REVERT" if kind == "reverted" else "SUCCESS"
        ttx = devnet.tron.transfer(payer, invoice.tron_address, amount, result=result,
                                   **({"contract": contract} if contract else {}))
        expect = "never" if contract or result != "SUCCESS" else "counted"
        self.sent[("tron", ttx.tx_id)] = Sent("tron", ttx.tx_id, amount, invoice.tron_address, kind,
                                              expect, ttx)
        return f"tron tx {ttx.tx_id[:10]} {expect}"

    async def _produce(self, rng: random.Random) -> str:
        assert self.devnet is not None
        chain = rng.choice(["ton", "tron", "tron"])
        count = rng.choice([1, 1, 2, 5, 20])
        self.clock.advance(seconds=3 * count)
        return f"{chain} head {self.devnet.produce(chain, count)}"

    async def _watch_round(self) -> str:
        try:
            moved = await self.watch.poll()
        except ProviderError as exc:  # an outage longer than the retries: the loop tries again
            return f"provider error {type(exc).__name__}"
        await sample_heads(self)
        return f"moved {moved}"

    async def _watch(self, rng: random.Random) -> str:
        return await self._watch_round()

    async def _provider_fault(self, rng: random.Random) -> str:
        assert self.devnet is not None
        provider = rng.choice(["toncenter", "trongrid"])
        fault = rng.choice([Fault("status", status=500), Fault("status", status=502),
                            Fault("status", status=503),
                            Fault("status", status=429, retry_after=rng.choice([0, 1, 2])),
                            Fault("latency", latency_ms=rng.randint(1, 3))])
        count = rng.choice([1, 2, 3, 6, 12])
        self.devnet.faults.inject(provider, fault, count)
        return f"{provider} {fault.kind} {fault.status or fault.latency_ms} x{count}"

    async def _provider_lie(self, rng: random.Random) -> str:
        """One of three providers lies for a while; the quorum of the other two holds."""
        assert self.devnet is not None
        if not self.providers:
            return "one provider: nobody to outvote a liar"
        api = rng.choice(["toncenter", "trongrid"])
        lie = rng.choice(LIES)
        delta = {"amount": rng.choice([1, 10**6, 5 * 10**9]), "stale_head": rng.choice([1, 5, 30])}.get(lie)
        count = rng.choice([1, 3, 10, 40])
        self.devnet.faults.inject(api, Fault("lie", lie=lie, delta=delta), count, name=self.liar)  # type: ignore[arg-type]
        return f"{self.liar} at {api} lies: {lie} {delta or ''} x{count}"

    async def _tron_lag(self, rng: random.Random) -> str:
        assert self.devnet is not None
        self.devnet.tron.index_lag_ms = rng.choice([0, 0, 3000, 9000, 30000])
        return f"index lag {self.devnet.tron.index_lag_ms} ms"

    async def _reorg(self, rng: random.Random) -> str:
        assert self.devnet is not None
        tron = self.devnet.tron
        room = tron.head.number - tron.solid_head.number
        if room < 1:
            return "nothing to reorganise"
        dropped = tron.reorg(rng.randint(1, min(room, 5)))
        notes = []
        for tx in dropped:
            fate = rng.choice(["again", "again", "revert", "gone"])
            if fate == "gone":
                notes.append(f"{tx.tx_id[:10]} gone")
                continue
            again = tron.reinclude(tx, "SUCCESS" if fate == "again" else "REVERT")
            sent = self.sent.get(("tron", tx.tx_id))
            if sent is not None:  # on the new fork it may succeed where it reverted, or not
                sent.tron_tx = again
                if sent.kind != "counterfeit":
                    sent.expect = "counted" if again.succeeded else "never"
                    sent.ever_counted |= again.succeeded
            notes.append(f"{tx.tx_id[:10]} {fate}")
        tron.produce_block()
        return f"dropped {len(dropped)} txs: {', '.join(notes)}"

    async def _advance(self, rng: random.Random) -> str:
        return f"now {self.clock.advance(seconds=rng.choice([1, 5, 30, 60, 240])).isoformat()}"

    async def _jump(self, rng: random.Random) -> str:
        return f"jumped to {self.clock.advance(minutes=rng.choice([10, 30, 90, 600])).isoformat()}"

    async def _jump_back(self, rng: random.Random) -> str:
        return jump_back(self.server, rng)

    async def _expire(self, rng: random.Random) -> str:
        return f"expired {await invoices.expire_due(self.d)}"

    async def _relay(self, rng: random.Random) -> str:
        return f"relayed {await webhooks.relay(self.d, OBJECTS, rng.choice([1, 5, 500]))}"

    async def _deliver(self, rng: random.Random) -> str:
        return f"attempted {await webhooks.deliver_due(self.d, self.kit_, rng.choice([1, 5, 200]))}"

    async def _receiver_mood(self, rng: random.Random) -> str:
        urls = sorted(url for _, url in self.endpoints.values())
        url = rng.choice(urls)
        mood = "gone" if url in self.gone_urls and rng.random() < 0.5 else rng.choice(
            ["ok", "ok", "fail", "slow", "redirect"])
        self.receiver.moods[url] = mood
        return f"{url} {mood}"

    async def _projections(self, rng: random.Random) -> str:
        return f"applied {await relay.run_projections(self.d, rng.choice([1, 3, 500]))}"

    async def _crash(self, rng: random.Random) -> str:
        """A unit of work dies before its commit, in the middle of some job; maybe a restart."""
        target = rng.choice(["watch", "relay", "deliver", "create_invoice", "expire", "projections",
                             "cancel_invoice"])
        assert self.uows is not None
        self.uows.countdown = rng.randint(1, 3)
        try:
            note = await getattr(self, f"_{target}")(rng)
        except Crash:
            note = "crashed"
        finally:
            self.uows.countdown = None
        if rng.random() < 0.4:
            await self._restart(rng)
            note += ", restarted"
        return f"{target}: {note}"

    async def _restart(self, rng: random.Random) -> str:
        await self.shutdown()
        await self.boot()
        self.restarts += 1
        return f"restart {self.restarts}"

    # --- the end: everything recovers -----------------------------------------------------------

    async def settle(self) -> None:
        """Faults cleared, receivers healthy (but a gone one stays gone), the chains move on
        past every confirmation and solidification; every job runs until nothing is left."""
        assert self.devnet is not None
        self.devnet.faults.clear()
        self.devnet.tron.index_lag_ms = 0
        self.server.offset = timedelta(0)  # NTP put it right
        self.receiver.moods = {u: m for u, m in self.receiver.moods.items() if m == "gone"}
        self.clock.advance(seconds=60)
        for chain in ("ton", "tron"):
            self.devnet.produce(chain, 25)
        for _ in range(3):
            self.clock.advance(seconds=10)
            await self.watch.poll()
            await sample_heads(self)
        await invoices.expire_due(self.d)
        await relay.catch_up(self.d)
        await self.drain_webhooks()
        self.trace.append("settle")

    async def drain_webhooks(self, rounds: int = 40) -> None:
        """Relay everything, then send what is due, moving the clock along the retry schedule."""
        for _ in range(rounds):
            # Sending makes events of its own (an endpoint switched off): relay them too.
            while await webhooks.relay(self.d, OBJECTS) + await webhooks.deliver_due(self.d, self.kit_):
                pass
            if not await self.pending_deliveries():
                return
            self.clock.advance(minutes=30)

    async def pending_deliveries(self) -> int:
        from tests.simulation.invariants import pending_deliveries

        return await pending_deliveries(self)

