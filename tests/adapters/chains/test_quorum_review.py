"""A hostile review of provider agreement (adapters/chains/quorum.py, issue 19 §1): what one
lying, lagging or broken provider can still do through the quorum reader, over the fake
providers of test_quorum.py. Each test states the property a payment platform needs."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from krypton.adapters.chains.quorum import FAILED_SIGHTING, MemoryPositions, QuorumTonReader, Sighting
from krypton.adapters.chains.ton import toncenter
from krypton.adapters.chains.ton.address import parse
from krypton.app import invoices, merchants, watching
from krypton.app.ports import ChainRead, TransferKey, Watch
from krypton.bootstrap import Container
from krypton.config import ChainProvider
from krypton.devnet import toncenter_json
from krypton.devnet.faults import MAX_COUNT, Fault
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from tests.adapters.chains.test_quorum import FakeProvider, disagreements, quorum_reader, transfer
from tests.support.clock import ManualClock

TON = 10**9
SENT = datetime(2026, 11, 24, 11, 55, tzinfo=UTC)


def paid(amount: int = 100, *, tx: str = "tx1") -> ObservedTransfer:
    """An honest sighting with everything a payment keeps: asset, payer, block time."""
    return dataclasses.replace(transfer(amount, tx=tx), sender="0:PAYER", block_time=SENT)


# --- what the reported transfer carries ----------------------------------------------------

@pytest.mark.parametrize("lie", [
    {"asset": "USDT_TON"},  # the same integer as 100 USDT-on-TON instead of 100 nanoTON
    {"sender": "0:THIEF"},  # where a refund "to source" and a shop order's payer go
    {"block_time": SENT - timedelta(days=1)},  # when it was paid: late or on time
], ids=["asset", "sender", "block_time"])
async def test_a_lying_primary_cannot_change_what_the_payment_keeps(lie: dict[str, object]) -> None:
    """Facts compares amount, destination, memo, success and block only; the transfer handed
    to ingest is the preferred (primary's) one whenever its Facts match the quorum's, so its
    asset, sender and block_time are the liar's word alone."""
    providers = {"a": FakeProvider({"tx1": dataclasses.replace(paid(), **lie)}),  # type: ignore[arg-type]
                 "b": FakeProvider({"tx1": paid()}), "c": FakeProvider({"tx1": paid()})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    read = await reader.read(None, Watch())
    assert [(t.asset, t.sender, t.block_time) for t in read.seen] in (
        [("TON", "0:PAYER", SENT)],  # the quorum's version
        [])  # or nothing until the providers agree on all of it
    assert read.seen or read.cursor is None  # and then the cursor does not pass it


@pytest.mark.parametrize("lying", [False, True], ids=["honest", "lying"])
async def test_a_lying_primary_cannot_pay_a_usd_invoice_with_a_tenth_of_a_ton(
        container: Container, clock: ManualClock, lying: bool) -> None:
    """The asset lie end to end: 0.1 TON (100_000_000 nanoTON, $0.50) sent to a $100 invoice
    payable in TON or USDT on TON; the primary reports it as a USDT notification of the same
    integer (100 USDT). b and c report TON; the Facts match, so the quorum hands the
    primary's transfer to ingest and the invoice is paid."""
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    made = await invoices.create_invoice(
        container.deps, merchant.id,
        invoices.InvoiceRequest(amount="100", currency="USD", methods=["ton", "usdt_ton"]),
        view=lambda i: {"id": i.id})
    invoice = await invoices.get_invoice(container.deps, merchant.id, made.view["id"])
    assert invoice.ton_address is not None
    to = parse(invoice.ton_address, network="testnet").raw
    tenth = ObservedTransfer(Chain.TON, "tx-tenth", 0, "TON", TON // 10, to, invoice.memo, 7, 1,
                             sender="0:PAYER", final=True)
    told = dataclasses.replace(tenth, asset="USDT_TON") if lying else tenth
    providers = {"a": FakeProvider({"tx-tenth": told}), "b": FakeProvider({"tx-tenth": tenth}),
                 "c": FakeProvider({"tx-tenth": tenth})}
    await watching.follow(container.deps, quorum_reader(providers, 2, clock, audit_every=1000))
    invoice = await invoices.get_invoice(container.deps, merchant.id, invoice.id)
    async with container.deps.uow(write=False) as uow:
        kept = [(p.asset, p.amount) for p in await uow.payments.for_invoice(invoice.id)]
    assert invoice.status.value != "paid"
    assert kept == [("TON", TON // 10)]


class FailedFor(FakeProvider):
    """An honest provider asked about a transaction that credits nothing (ton_lookup: a TON
    transaction that is not credited; tron_lookup: a failed receipt)."""

    async def lookup(self, keys: Sequence[TransferKey]) -> dict[TransferKey, Sighting]:
        return {key: FAILED_SIGHTING for key in keys}


async def test_a_payment_only_the_liar_sees_is_not_recorded_with_its_amount() -> None:
    """The quorum (b, c) says the transaction credits nothing; `_agree` still reports the
    primary's own transfer (its amount, asset, memo) to be ingested and then failed: a
    payment is created, `payment.detected` goes to the merchant's webhooks with the liar's
    amount, and only then does it fail. (On TON nothing is ever "failed": such a
    transaction is simply no payment.)"""
    providers = {"a": FakeProvider({"tx1": transfer(10_000 * TON)}), "b": FailedFor({}), "c": FailedFor({})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    read = await reader.read("c0", Watch())
    assert [t.amount for t in read.seen] == []


# --- rejections (unmatched: counterfeit, unsupported) bypass the quorum ----------------------

class Rejecting(FakeProvider):
    """A primary that reports a real payment as a counterfeit token (TON: a notification it
    says came from a foreign jetton wallet; Tron: a log it says came from another contract);
    asked by tx id, it says the transaction credits nothing (ton_lookup: FAILED_SIGHTING)."""

    def __init__(self, real: ObservedTransfer) -> None:
        super().__init__({})
        self.real = real

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        self.reads += 1
        fake = dataclasses.replace(self.real, asset="COUNTERFEIT", final=True)
        return ChainRead(rejected=[(fake, "counterfeit_token")], cursor="next", handled=1)

    async def lookup(self, keys: Sequence[TransferKey]) -> dict[TransferKey, Sighting]:
        return {key: FAILED_SIGHTING for key in keys if key == (self.real.tx_id, self.real.index)}


async def test_a_lying_primary_cannot_reject_a_payment_the_quorum_sees() -> None:
    """`_agree` checks `seen` and `failed` but passes `rejected` through untouched, and moves
    the cursor. ingest.reject_transfer stores the key as unmatched, and ingest_transfer
    answers "unchanged" for any later sighting of an unmatched key: the real payment (found
    later by an audit or an honest primary) can never be credited."""
    real = paid()
    providers = {"a": Rejecting(real), "b": FakeProvider({"tx1": real}), "c": FakeProvider({"tx1": real})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    read = await reader.read("c0", Watch())
    assert [r.key for r, _ in read.rejected] == []
    assert [t.key for t in read.seen] == [real.key] or read.cursor is None


@pytest.mark.parametrize("lying", [False, True], ids=["honest", "lying"])
async def test_a_primary_rejection_keeps_the_real_payment_from_its_invoice_for_good(
        container: Container, clock: ManualClock, lying: bool) -> None:
    """The same end to end: round one stores the liar's rejection as unmatched; round two's
    audit (b) finds the payment and the quorum (b, c) calls it final with the honest
    facts, yet ingest answers "unchanged" for an unmatched key: the invoice is never paid.
    (honest: the same rig with an honest primary, paid on the first round.)"""
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    made = await invoices.create_invoice(
        container.deps, merchant.id, invoices.InvoiceRequest(amount="10", currency="TON", methods=["ton"]),
        view=lambda i: {"id": i.id})
    invoice = await invoices.get_invoice(container.deps, merchant.id, made.view["id"])
    assert invoice.ton_address is not None
    to = parse(invoice.ton_address, network="testnet").raw
    real = ObservedTransfer(Chain.TON, "tx-real", 0, "TON", 10 * TON, to, invoice.memo, 7, 1,
                            sender="0:PAYER", final=True)
    primary = Rejecting(real) if lying else FakeProvider({"tx-real": real})
    providers = {"a": primary, "b": FakeProvider({"tx-real": real}), "c": FakeProvider({"tx-real": real})}
    reader = quorum_reader(providers, 2, clock, audit_every=2)
    await watching.follow(container.deps, reader)  # the primary: "counterfeit"
    await watching.follow(container.deps, reader)  # b's audit: the quorum has it, final
    assert providers["b"].reads == 1
    invoice = await invoices.get_invoice(container.deps, merchant.id, invoice.id)
    assert (invoice.status.value, invoice.amount_paid) == ("paid", 10 * TON)


# --- liveness: what one provider can hold up for ever --------------------------------------

@pytest.mark.parametrize("final", [False, True], ids=["young", "final"])
async def test_one_invented_transfer_cannot_hold_the_cursor_for_ever(final: bool) -> None:
    """A primary repeating ONE transfer nobody else has: withheld, the cursor held; counted
    at most once ("phantom" only when it calls it final, `_first` once per key), so never
    demoted and never replaced: the TON cursor stays where it is for good."""
    ghost = transfer(tx="ghost", final=final)
    providers = {"a": FakeProvider({"ghost": ghost}), "b": FakeProvider({}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    cursors = [(await reader.read("c0", Watch())).cursor for _ in range(50)]
    assert "next" in cursors  # 50 rounds (100 s): discovery must have moved on somehow


async def test_quorum_unmet_does_not_last_for_ever() -> None:
    """Once fewer healthy providers remain than the quorum, `_decide` returns before any
    `agreed()`: a demoted provider can never earn its way back, and nothing is final again
    until a restart, however long every provider agrees."""
    providers = {n: FakeProvider({}) for n in "abc"}
    reader = quorum_reader(providers, 2, ManualClock(), demote_after=1, restore_after=3)
    reader.book.disagreed("a", ("old", 0), "lag")
    reader.book.disagreed("b", ("old", 0), "lag")
    assert not reader.book.quorum_met
    finals = []
    for n in range(20):
        key = (f"ok{n}", 0)
        for p in providers.values():
            p.said = {key[0]: transfer(tx=key[0])}
        finals.append([t.final for t in (await reader.recheck([key])).seen])
    assert reader.book.quorum_met
    assert finals[-1] == [True]


async def test_an_honest_provider_one_round_behind_is_not_demoted() -> None:
    """"lag" is counted on the first round a quorum calls a transfer final, and the one
    provider a poll (2 s) behind, say a solidity node a block late, is then demoted after
    `demote_after` busy transfers: no evidence of a lie, one fault tolerance less; and
    with it never final first, it never agrees `restore_after` times in a row to come back."""
    providers = {n: FakeProvider({}) for n in "abc"}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    for n in range(10):
        key = (f"busy-{n}", 0)
        providers["a"].said = providers["b"].said = {key[0]: transfer(tx=key[0])}
        providers["c"].said = {key[0]: transfer(tx=key[0], final=False)}
        assert [t.final for t in (await reader.recheck([key])).seen] == [True]
        providers["c"].said = {key[0]: transfer(tx=key[0])}  # final a round later
        await reader.recheck([key])
    assert not reader.book.demoted("c")


class Garbled(FakeProvider):
    """A provider answering 200 with a body the parser refuses (toncenter.PayloadError, a
    ValueError, not a ProviderError)."""

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        self.reads += 1
        raise toncenter.PayloadError("/transactions did not answer with an object")


async def test_a_primary_answering_garbage_hands_discovery_to_the_next() -> None:
    """`read` falls over to the next provider on ProviderError only: a primary whose answers
    do not parse stops the chain's whole round (and, TON first in the round, Tron's too), and
    it is never demoted for it."""
    providers = {"a": Garbled({}), "b": FakeProvider({"tx1": transfer()}),
                 "c": FakeProvider({"tx1": transfer()})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    read = await reader.read(None, Watch())
    assert [t.final for t in read.seen] == [True] and providers["b"].reads == 1


# --- audits and the cursor -----------------------------------------------------------------

class Positioned(FakeProvider):
    """A provider that reads like TON: transfers at chain positions, a cursor the position
    read to (`height`); `said` maps a position to the transfer there, as this provider tells it."""

    def __init__(self, said: dict[int, ObservedTransfer], height: int) -> None:
        super().__init__({})
        self.at = said
        self.height = height

    async def lookup(self, keys: Sequence[TransferKey]) -> dict[TransferKey, Sighting]:
        self.said = {t.tx_id: t for t in self.at.values()}
        return await super().lookup(keys)

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        self.reads += 1
        self.cursors.append(cursor)
        after = int(cursor or 0)
        seen = [t for p, t in sorted(self.at.items()) if p > after]
        return ChainRead(seen=seen, cursor=str(self.height), handled=len(seen))


async def test_an_audit_that_withholds_a_transfer_reads_that_stretch_again() -> None:
    """A primary omits tx1 and moves the cursor past it. The audit (b) finds it, but c has not
    indexed it yet: a quorum (a, c) lacks it, so it is withheld, and `_audit` still moves
    `_audit_from` on to the stored cursor, past tx1. Once c has it, no audit ever reads
    that stretch again: the payment is skipped for good."""
    tx1 = transfer(tx="tx1")
    providers: dict[str, FakeProvider] = {"a": Positioned({}, 1), "b": Positioned({1: tx1}, 1),
                                          "c": Positioned({}, 0)}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=2)
    first = await reader.read("0", Watch())  # the primary: nothing, cursor past tx1
    assert first.seen == [] and first.cursor == "1"
    audit = await reader.read("1", Watch())  # b audits from "0": tx1 withheld (c lacks it)
    assert audit.seen == [] and providers["b"].cursors == ["0"]
    late = providers["c"]
    assert isinstance(late, Positioned)
    late.at, late.height = {1: tx1}, 1  # c catches up
    found = []
    for _ in range(4):  # the primary, c's audit, the primary, b's audit
        found += [t.tx_id for t in (await reader.read("1", Watch())).seen]
    assert found == ["tx1"]


class StaleHead(Positioned):
    """A TON primary whose head is stuck (lie "stale_head", or an indexer that stopped): every
    new transaction is "not final" to it, and TonReader's cursor stops before the first one."""

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        read = await super().read(cursor, watch)
        return dataclasses.replace(read, seen=[dataclasses.replace(t, final=False) for t in read.seen],
                                   cursor=None)


async def test_a_primary_with_a_stale_head_cannot_hold_the_cursor_for_ever() -> None:
    """The quorum (b, c) makes tx1 final and it is paid, but the cursor is the stale primary's:
    it never passes tx1. "lag" is counted once per transfer, so on a quiet account (fewer than
    `demote_after` payments in `window`) the primary is never demoted, the page is read again
    for ever, and once a page (PAGE) of newer transactions piles up behind tx1 the primary
    never reads past them: later payments are found only by the audits, a page every
    `audit_every` reads."""
    tx1 = transfer(tx="tx1")
    providers: dict[str, FakeProvider] = {"a": StaleHead({1: tx1}, 1), "b": Positioned({1: tx1}, 1),
                                          "c": Positioned({1: tx1}, 1)}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    reads = [await reader.read("0", Watch()) for _ in range(50)]
    assert [t.final for t in reads[0].seen] == [True]  # paid on the first round
    assert any(r.cursor is not None for r in reads)  # but the cursor must move on some day


async def test_an_omission_just_before_a_restart_is_still_audited() -> None:
    """The audit's start (`_audit_from`) lives in memory and a new reader starts it at the
    stored cursor: whatever the primary skipped since the last audit before a restart (a
    deploy, a crash, the watcher lease moving to another worker) is never read by anyone.
    (Fixed: the audit position is a cursor of its own, `<cursor>:audit`; `stored` stands for
    the cursors table both processes share: test_quorum_devnet.py checks the real one.)"""
    tx1 = transfer(tx="tx1")
    stored = MemoryPositions()

    def providers() -> dict[str, FakeProvider]:
        return {"a": Positioned({}, 1), "b": Positioned({1: tx1}, 1), "c": Positioned({1: tx1}, 1)}
    before = quorum_reader(providers(), 2, ManualClock(), stored, audit_every=2)
    assert (await before.read("0", Watch())).cursor == "1"  # stored; then the process stops
    after = quorum_reader(providers(), 2, ManualClock(), stored, audit_every=2)
    found = [t.tx_id for _ in range(8) for t in (await after.read("1", Watch())).seen]
    assert found == ["tx1"]


# --- what stays outside the quorum ---------------------------------------------------------

async def test_the_chain_head_is_not_the_word_of_one_demoted_provider(container: Container) -> None:
    """ChainAdapters.heads() (the watcher's lag, and the chain head TIME that
    app/chain_time.py records for expiry) asks `_ton_client`: the first configured provider,
    always, demoted or not, with no quorum. A first provider whose head is stale (or lies)
    holds the recorded chain time back, and expiry waits for it (expiry_now takes the min)."""
    assert container.devnet is not None
    devnet = container.devnet
    providers = [ChainProvider(name=name) for name in ("alpha", "beta", "gamma")]
    settings = container.settings.model_copy(update={"ton_providers": providers, "ton_quorum": 2})
    chains = dataclasses.replace(container, settings=settings).chains()
    try:
        devnet.produce("ton", 20)
        stale = Fault("lie", lie="stale_head", delta=10)
        devnet.faults.inject("toncenter", stale, count=MAX_COUNT, name="alpha")
        ton = chains.ton
        assert isinstance(ton, QuorumTonReader)
        for n in range(ton.book.policy.demote_after):
            ton.book.disagreed("alpha", (f"lie-{n}", 0), "lag")
        assert ton.book.demoted("alpha") and ton.book.primary() == "beta"
        honest = toncenter_json.block(devnet.ton.head)["seqno"]  # what beta and gamma say
        assert (await chains.heads())["ton"].number == honest
    finally:
        await chains.aclose()


# --- properties that hold (kept as regression tests) ----------------------------------------

async def test_a_provider_that_errors_is_neither_counted_nor_blocking() -> None:
    """HTTP 5xx / timeouts are left out, not "omitted": two honest providers make it final
    under a quorum of two, and the failing one is never counted nor demoted for it."""
    providers = {"a": FakeProvider({}), "b": FakeProvider({}), "c": FakeProvider({}, down=True)}
    reader = quorum_reader(providers, 2, ManualClock(), demote_after=2, audit_every=1000)
    before = {kind: disagreements("c", kind) for kind in ("omitted", "lag", "phantom")}
    for n in range(5):
        tx = f"down-{n}"
        providers["a"].said = providers["b"].said = {tx: transfer(tx=tx)}
        read = await reader.read("c0", Watch())
        assert [t.final for t in read.seen] == [True] and read.cursor == "next"
    assert {kind: disagreements("c", kind) for kind in before} == before
    assert not reader.book.demoted("c")


async def test_a_lying_primary_never_makes_a_transfer_final_alone_after_a_restart() -> None:
    """Demotion lives in memory: after a restart the liar is primary again. Its amount and its
    'final' still need a quorum, read after read, from the first one."""
    for _restart in range(2):
        providers = {"a": FakeProvider({"tx1": transfer(10_000)}),
                     "b": FakeProvider({"tx1": transfer(final=False)}),
                     "c": FakeProvider({"tx1": transfer(final=False)})}
        reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
        read = await reader.read("c0", Watch())
        assert [(t.amount, t.final) for t in read.seen] == [(100, False)]
        assert read.cursor is None  # TON: the cursor does not pass what is not settled


async def test_a_single_member_reader_asks_nobody_else() -> None:
    """One provider: discovery only, no lookups, the cursor as the provider gave it."""
    only = FakeProvider({"tx1": transfer()})
    reader = quorum_reader({"only": only}, 1, ManualClock())
    read = await reader.read("c0", Watch())
    assert [t.final for t in read.seen] == [True] and read.cursor == "next"
    assert only.lookups == 0 and only.reads == 1
