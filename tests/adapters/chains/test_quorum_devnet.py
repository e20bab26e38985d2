"""Several providers of one chain under a quorum, end to end: the devnet serves each chain as
three providers (X-Devnet-Provider), one of them lies (devnet/faults.py "lie"), and the
chain watcher, ingest and the ledger run as in production (both databases)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from krypton.adapters.chains.quorum import QuorumTonReader, QuorumTronReader, StoredPositions
from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.reader import TonReader
from krypton.adapters.chains.tron.reader import TronReader
from krypton.app import invoices, merchants, provider_health
from krypton.app.ports import Watch
from krypton.bootstrap import ChainAdapters, Container
from krypton.config import ChainProvider, Settings
from krypton.devnet.faults import MAX_COUNT, Fault
from krypton.domain.invoice import Invoice
from krypton.web.app import create_app
from krypton.web.health import WATCHER_JOB
from krypton.workers.watch import ChainWatch
from tests.adapters.chains.test_quorum import FakeProvider, quorum_reader, transfer
from tests.adapters.chains.test_quorum_review import Positioned
from tests.support.clock import ManualClock
from tests.support.devnet_rig import DevnetRig

TON = 10**9
USDT = 10**6
NAMES = ("alpha", "beta", "gamma")


class Rig(DevnetRig):
    chains: ChainAdapters

    async def state(self, invoice: Invoice) -> tuple[str, int]:
        """The invoice's status (or its exception, "underpaid") and what was paid."""
        i = await invoices.get_invoice(self.container.deps, self.merchant_id, invoice.id)
        return (i.exception.value if i.exception else i.status.value), i.amount_paid

    async def status(self, invoice: Invoice) -> str:
        return (await invoices.get_invoice(self.container.deps, self.merchant_id, invoice.id)).status.value

    async def payments(self, invoice: Invoice) -> list[tuple[str, int]]:
        async with self.container.deps.uow(write=False) as uow:
            return [(p.status.value, p.amount) for p in await uow.payments.for_invoice(invoice.id)]

    def lie(self, api: str, name: str, lie: str, delta: int | None = None) -> None:
        self.devnet.faults.inject(api, Fault("lie", lie=lie, delta=delta), count=MAX_COUNT, name=name)  # type: ignore[arg-type]

    def ton_book(self) -> QuorumTonReader:
        assert isinstance(self.chains.ton, QuorumTonReader)
        return self.chains.ton

    def tron_book(self) -> QuorumTronReader:
        assert isinstance(self.chains.tron, QuorumTronReader)
        return self.chains.tron


@pytest.fixture
async def rig(container: Container, clock: ManualClock) -> AsyncIterator[Rig]:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    assert container.devnet is not None
    providers = [ChainProvider(name=name) for name in NAMES]
    settings = container.settings.model_copy(update={
        "ton_providers": providers, "tron_providers": providers, "ton_quorum": 2, "tron_quorum": 2})
    chains = dataclasses.replace(container, settings=settings).chains()
    rig = Rig(container, container.devnet, ChainWatch(container.deps, chains), merchant.id)
    rig.chains = chains
    yield rig
    await chains.aclose()


def ton_address(invoice: Invoice) -> TonAddress:
    assert invoice.ton_address is not None
    return parse(invoice.ton_address, network="testnet")


def disagreements(chain: str, provider: str, kind: str) -> float:
    return REGISTRY.get_sample_value("krypton_provider_disagreements_total",
                                     {"chain": chain, "provider": provider, "kind": kind}) or 0.0


async def test_ton_two_of_three_with_a_liar_pays_the_honest_amount_and_demotes_the_liar(rig: Rig) -> None:
    rig.lie("toncenter", "beta", "amount", 5 * TON)
    before = disagreements("ton", "beta", "amount")
    paid = []
    for _ in range(5):  # Policy.demote_after
        invoice = await rig.invoice("10", "TON", ["ton"])
        rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=invoice.memo)
        rig.devnet.produce("ton")
        await rig.watchers.poll()
        paid.append((await rig.state(invoice), await rig.payments(invoice)))
    assert paid == [(("paid", 10 * TON), [("confirmed", 10 * TON)])] * 5
    assert disagreements("ton", "beta", "amount") - before == 5
    book = rig.ton_book().book
    assert book.demoted("beta") and book.healthy() == ["alpha", "gamma"] and book.quorum_met
    await rig.balances()


async def test_ton_lying_primary_never_makes_an_underpaid_invoice_paid(rig: Rig) -> None:
    rig.lie("toncenter", "alpha", "amount", 5 * TON)  # alpha is the primary
    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 5 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("underpaid", 5 * TON)
    assert await rig.payments(invoice) == [("confirmed", 5 * TON)]
    await rig.balances()


async def test_ton_quorum_unmet_stays_confirming_until_the_providers_catch_up(rig: Rig) -> None:
    rig.lie("toncenter", "beta", "stale_head")
    rig.lie("toncenter", "gamma", "stale_head")
    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    for _ in range(3):
        await rig.watchers.poll()
        assert await rig.payments(invoice) == [("confirming", 10 * TON)]
        assert (await rig.state(invoice))[0] == "confirming"
    rig.devnet.faults.clear("toncenter")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", 10 * TON)


async def test_tron_two_of_three_with_an_omitting_liar_confirms_and_counts_it(rig: Rig) -> None:
    rig.lie("trongrid", "gamma", "omit")
    before = disagreements("tron", "gamma", "omitted")
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT)
    rig.devnet.produce("tron")
    await rig.watchers.poll()
    assert await rig.payments(invoice) == [("confirming", 50 * USDT)]
    rig.devnet.produce("tron", 19)
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", 50 * USDT)
    assert disagreements("tron", "gamma", "omitted") - before == 1
    await rig.balances()


async def test_tron_liar_reporting_more_never_pays_and_quorum_unmet_never_confirms(rig: Rig) -> None:
    rig.lie("trongrid", "alpha", "amount", 30 * USDT)  # the primary says 50 where 20 was sent
    rig.lie("trongrid", "beta", "stale_head", 100)  # and beta never sees it solidified
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 20 * USDT)
    rig.devnet.produce("tron", 25)
    for _ in range(3):
        await rig.watchers.poll()
        assert await rig.payments(invoice) == [("confirming", 20 * USDT)]
        assert await rig.status(invoice) == "pending"  # partly paid at most, never paid
    rig.devnet.faults.clear("trongrid")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("underpaid", 20 * USDT)
    await rig.balances()


async def test_provider_stats_report_every_provider_and_the_quorum(rig: Rig) -> None:
    names = {s.name for s in rig.chains.provider_stats()}
    assert {f"devnet-toncenter-{n}" for n in NAMES} <= names
    assert {"toncenter-quorum", "trongrid-quorum"} <= names


async def test_healthz_is_503_while_too_few_providers_are_healthy(rig: Rig, container: Container) -> None:
    container.settings = container.settings.model_copy(update={"role": "api"})
    app = create_app(container, run_workers=False)
    leases = container.leases()
    assert await leases.try_acquire(WATCHER_JOB)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            await provider_health.record(container.deps, rig.chains.provider_stats(), "host:1")
            health = await api.get("/healthz")
            assert health.status_code == 200, health.json()
            book = rig.tron_book().book
            for n, name in enumerate(("alpha", "beta")):
                for k in range(book.policy.demote_after):
                    book.disagreed(name, (f"tx{n}-{k}", 0), "amount")
            await provider_health.record(container.deps, rig.chains.provider_stats(), "host:1")
            health = await api.get("/healthz")
            assert health.status_code == 503 and health.json()["down"] == ["tron_providers"]
            assert "fewer healthy tron providers than the quorum" in health.json()["reason"]
            assert "demoted: alpha, beta" in health.json()["reason"]
    finally:
        await leases.release(WATCHER_JOB)


async def test_one_provider_configured_reads_as_before(container: Container) -> None:
    settings = container.settings.model_copy(update={
        "ton_providers": [ChainProvider(name="only")], "tron_providers": []})
    chains = dataclasses.replace(container, settings=settings).chains()
    try:
        assert isinstance(chains.ton, TonReader) and isinstance(chains.tron, TronReader)
        assert isinstance(chains.merchant_ton("0:" + "ab" * 32, fee_collector=False), TonReader)
        assert not [s for s in chains.provider_stats() if s.name.endswith("-quorum")]
    finally:
        await chains.aclose()


def test_settings_refuse_a_quorum_the_providers_cannot_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_TRON_PROVIDERS", '[{"name": "a", "urls": ["https://a.example"]}, '
                                                 '{"name": "b", "urls": ["https://b.example"]}]')
    monkeypatch.setenv("KRYPTON_TRON_QUORUM", "3")
    with pytest.raises(ValueError, match="KRYPTON_TRON_QUORUM is 3 but only 2 tron provider"):
        Settings()
    monkeypatch.setenv("KRYPTON_TRON_QUORUM", "2")
    assert [p.name for p in Settings().tron_providers] == ["a", "b"]
    monkeypatch.setenv("KRYPTON_TON_QUORUM", "2")
    with pytest.raises(ValueError, match="KRYPTON_TON_QUORUM is 2 but only 1 ton provider"):
        Settings()


def test_settings_refuse_providers_without_urls_off_the_devnet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_NETWORK", "mainnet")
    monkeypatch.setenv("KRYPTON_TON_PROVIDERS", '[{"name": "a"}, {"name": "b", "urls": ["https://b.example"]}]')
    with pytest.raises(ValueError, match="provider 'a' needs urls"):
        Settings()
    monkeypatch.setenv("KRYPTON_TON_PROVIDERS", '[{"name": "a", "urls": ["ftp://a"]}]')
    with pytest.raises(ValueError, match="is not an http"):
        Settings()


async def test_the_audit_position_is_its_own_cursor_in_the_database(container: Container) -> None:
    """Review finding 8: what a primary skipped just before a restart is audited after it."""
    positions = StoredPositions(container.deps.uow)
    assert await positions.get("ton:fake:audit") is None
    tx1 = transfer(tx="tx1")

    def providers() -> dict[str, FakeProvider]:
        return {"a": Positioned({}, 1), "b": Positioned({1: tx1}, 1), "c": Positioned({1: tx1}, 1)}
    before = quorum_reader(providers(), 2, ManualClock(), positions, audit_every=2)
    assert (await before.read("0", Watch())).cursor == "1"  # the primary skips tx1; then a restart
    assert await positions.get("ton:fake:audit") == "0"
    after = quorum_reader(providers(), 2, ManualClock(), positions, audit_every=2)
    found = [t.tx_id for _ in range(4) for t in (await after.read("1", Watch())).seen]
    assert found == ["tx1"]
    async with container.deps.uow(write=False) as uow:
        assert await uow.cursors.get("ton:fake:audit") == "1"


@pytest.mark.parametrize(("quorum", "warned"), [(1, True), (2, False)])
async def test_a_quorum_that_is_not_a_majority_is_logged_at_start_up(
        container: Container, quorum: int, warned: bool) -> None:
    providers = [ChainProvider(name=name) for name in NAMES]
    settings = container.settings.model_copy(update={
        "ton_providers": providers, "tron_providers": providers, "ton_quorum": quorum, "tron_quorum": quorum})
    with capture_logs() as logs:
        chains = dataclasses.replace(container, settings=settings).chains()
    try:
        found = [(e["chain"], e["quorum"], e["providers"]) for e in logs
                 if e["event"] == "provider_quorum_not_a_majority"]
        assert found == ([("ton", 1, 3), ("tron", 1, 3)] if warned else [])
        assert isinstance(chains.tron, QuorumTronReader)
        assert set(await chains.heads()) == {"ton", "tron"}  # each chain's head by its quorum
    finally:
        await chains.aclose()
