"""The quorum rule and the agreement book (adapters/chains/quorum.py), over fake providers."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from krypton.adapters.chains.provider import ServerError
from krypton.adapters.chains.quorum import (
    ABSENT,
    FAILED_SIGHTING,
    Agreement,
    Member,
    MemoryPositions,
    Policy,
    Positions,
    QuorumReader,
    Sighting,
    agreed_head,
    disagreement,
    verdict,
)
from krypton.app.chain_time import ChainHead
from krypton.app.ports import ChainRead, TransferKey, Watch
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from tests.support.clock import ManualClock

KEY: TransferKey = ("tx1", 0)


def transfer(amount: int = 100, *, final: bool = True, tx: str = "tx1", block: int = 7,
             memo: str | None = "KR-1") -> ObservedTransfer:
    return ObservedTransfer(Chain.TON, tx, 0, "TON", amount, "0:AA", memo, block, 1 if final else 0,
                            final=final)


class FakeProvider:
    """A provider that reports `said` (by tx id) and looks the same up by tx id."""

    chain = "ton"
    cursor_name = "ton:fake"

    def __init__(self, said: dict[str, ObservedTransfer], *, rechecks: bool = False,
                 down: bool = False) -> None:
        self.said = said
        self.rechecks = rechecks
        self.down = down
        self.reads = 0
        self.lookups = 0
        self.cursors: list[str | None] = []

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        self.reads += 1
        self.cursors.append(cursor)
        if self.down:
            raise ServerError("down", status=503, endpoint="fake")
        return ChainRead(seen=list(self.said.values()), cursor="next", handled=len(self.said))

    async def recheck(self, unfinished: Sequence[TransferKey]) -> ChainRead:
        return ChainRead()

    async def lookup(self, keys: Sequence[TransferKey]) -> dict[TransferKey, Sighting]:
        self.lookups += 1
        if self.down:
            raise ServerError("down", status=503, endpoint="fake")
        return {(t.tx_id, t.index): Sighting.seen(t) for t in self.said.values()
                if (t.tx_id, t.index) in keys}


def quorum_reader(providers: dict[str, FakeProvider], quorum: int, clock: ManualClock,
                  positions: Positions | None = None, **policy: int) -> QuorumReader:
    book = Agreement("ton", list(providers), Policy(quorum=quorum, **policy), clock)  # type: ignore[arg-type]
    return QuorumReader([Member(n, p, p.lookup) for n, p in providers.items()], book, positions)


def disagreements(provider: str, kind: str) -> float:
    return REGISTRY.get_sample_value("krypton_provider_disagreements_total",
                                     {"chain": "ton", "provider": provider, "kind": kind}) or 0.0


# --- the rule ------------------------------------------------------------------------------

def test_quorum_of_the_same_facts_wins_and_is_final() -> None:
    honest, liar = Sighting.seen(transfer(100)), Sighting.seen(transfer(999))
    decided = verdict({"a": liar, "b": honest, "c": honest}, ["a", "b", "c"], 2, prefer="a")
    assert decided.decided and decided.final
    assert decided.transfer is not None and decided.transfer.amount == 100
    assert disagreement(liar, decided) == "amount"
    assert disagreement(honest, decided) is None


def test_no_quorum_decides_nothing() -> None:
    sightings = {"a": Sighting.seen(transfer(100)), "b": Sighting.seen(transfer(200)), "c": ABSENT}
    assert not verdict(sightings, ["a", "b", "c"], 2, prefer="a").decided


def test_two_versions_each_with_a_quorum_decide_nothing() -> None:
    honest, liar = Sighting.seen(transfer(100)), Sighting.seen(transfer(999))
    sightings = {"a": liar, "b": liar, "c": honest, "d": honest}
    assert not verdict(sightings, ["a", "b", "c", "d"], 2, prefer="a").decided
    assert verdict(sightings, ["a", "b", "c", "d"], 1, prefer="c").transfer == transfer(100)


def test_same_facts_but_too_few_call_it_final_is_not_final() -> None:
    sightings = {"a": Sighting.seen(transfer()), "b": Sighting.seen(transfer(final=False)),
                 "c": Sighting.seen(transfer(final=False))}
    decided = verdict(sightings, ["a", "b", "c"], 2, prefer="a")
    assert decided.decided and not decided.final


def test_demoted_providers_do_not_count() -> None:
    sightings = {"a": Sighting.seen(transfer(999)), "b": Sighting.seen(transfer(999)),
                 "c": Sighting.seen(transfer(100))}
    assert verdict(sightings, ["c"], 1, prefer="a").transfer == transfer(100)
    assert not verdict(sightings, ["c"], 2, prefer="a").decided


@pytest.mark.parametrize(("other", "kind"), [
    (dataclasses.replace(transfer(), destination="0:BB"), "destination"),
    (transfer(memo="KR-2"), "memo"),
    (transfer(block=8), "block"),
    (dataclasses.replace(transfer(), asset="USDT_TON"), "asset"),
    (dataclasses.replace(transfer(), sender="0:THIEF"), "sender"),
    (dataclasses.replace(transfer(), block_time=datetime(2026, 1, 1, tzinfo=UTC)), "block_time"),
])
def test_each_fact_is_compared(other: ObservedTransfer, kind: str) -> None:
    decided = verdict({"a": Sighting.seen(transfer()), "b": Sighting.seen(transfer())},
                      ["a", "b"], 2, prefer="a")
    assert disagreement(Sighting.seen(other), decided) == kind


def test_omission_and_lag_count_only_against_a_final_verdict() -> None:
    final = verdict({"a": Sighting.seen(transfer()), "b": Sighting.seen(transfer())}, ["a", "b"], 2, "a")
    assert disagreement(ABSENT, final) == "omitted"
    assert disagreement(Sighting.seen(transfer(final=False)), final) == "lag"
    assert disagreement(FAILED_SIGHTING, final) == "success"
    young = verdict({"a": Sighting.seen(transfer(final=False)), "b": Sighting.seen(transfer(final=False))},
                    ["a", "b"], 2, "a")
    assert disagreement(ABSENT, young) is None  # an indexer a moment behind is not lying


def test_quorum_must_fit_the_providers() -> None:
    with pytest.raises(ValueError, match="quorum must be from 1 to 2"):
        Agreement("ton", ["a", "b"], Policy(quorum=3), ManualClock())


# --- the reader ----------------------------------------------------------------------------

async def test_two_of_three_with_a_liar_reports_the_honest_amount_and_demotes_the_liar() -> None:
    clock = ManualClock()
    providers = {"a": FakeProvider({}), "b": FakeProvider({}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, clock, demote_after=3, audit_every=1000)
    before = disagreements("b", "amount")
    for n in range(3):
        tx = f"liar-{n}"
        providers["a"].said = {tx: transfer(100, tx=tx)}
        providers["c"].said = {tx: transfer(100, tx=tx)}
        providers["b"].said = {tx: transfer(150, tx=tx)}
        read = await reader.read(None, Watch())
        assert [(t.amount, t.final) for t in read.seen] == [(100, True)]
        assert read.cursor == "next"
    assert disagreements("b", "amount") - before == 3
    assert reader.book.demoted("b") and reader.book.healthy() == ["a", "c"]
    assert reader.book.quorum_met


async def test_a_lying_primary_is_outvoted_and_replaced() -> None:
    clock = ManualClock()
    providers = {"a": FakeProvider({}), "b": FakeProvider({}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, clock, demote_after=2, audit_every=1000)
    for n in range(2):
        tx = f"primary-{n}"
        providers["a"].said = {tx: transfer(10_000, tx=tx)}
        providers["b"].said = providers["c"].said = {tx: transfer(100, tx=tx)}
        read = await reader.read(None, Watch())
        assert [t.amount for t in read.seen] == [100]  # never the liar's larger amount
    assert reader.book.primary() == "b"
    providers["a"].reads = 0
    await reader.read(None, Watch())
    assert providers["a"].reads == 0  # a demoted provider discovers nothing


async def test_quorum_unmet_reports_nothing_final_and_holds_the_cursor() -> None:
    clock = ManualClock()
    providers = {"a": FakeProvider({"tx1": transfer()}), "b": FakeProvider({"tx1": transfer(final=False)}),
                 "c": FakeProvider({"tx1": transfer(final=False)})}
    reader = quorum_reader(providers, 2, clock)
    read = await reader.read("before", Watch())
    assert [(t.amount, t.final, t.confirmations) for t in read.seen] == [(100, False, 1)]
    assert read.cursor is None and not read.more  # read again from "before"
    providers["b"].said = {"tx1": transfer()}
    read = await reader.read("before", Watch())
    assert [t.final for t in read.seen] == [True] and read.cursor == "next"


async def test_facts_without_a_quorum_are_not_reported_at_all() -> None:
    providers = {"a": FakeProvider({"tx1": transfer(500)}), "b": FakeProvider({}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, ManualClock())
    read = await reader.read(None, Watch())
    assert read.seen == [] and read.cursor is None


async def test_a_primary_inventing_a_final_transfer_is_counted_and_demoted() -> None:
    providers = {"a": FakeProvider({}), "b": FakeProvider({}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, ManualClock(), demote_after=2, audit_every=1000)
    before = disagreements("a", "phantom")
    for n in range(2):
        providers["a"].said = {f"ghost-{n}": transfer(tx=f"ghost-{n}")}
        read = await reader.read("c0", Watch())
        assert read.seen == [] and read.cursor is None  # nothing recorded, the page read again
    assert disagreements("a", "phantom") - before == 2
    assert reader.book.primary() == "b"  # so the cursor moves on again


async def test_providers_that_fail_to_answer_do_not_count() -> None:
    providers = {"a": FakeProvider({"tx1": transfer()}), "b": FakeProvider({"tx1": transfer()}, down=True),
                 "c": FakeProvider({"tx1": transfer()}, down=True)}
    reader = quorum_reader(providers, 2, ManualClock())
    assert (await reader.read(None, Watch())).seen == []
    providers["c"].down = False
    assert [t.final for t in (await reader.read(None, Watch())).seen] == [True]


async def test_a_failing_primary_hands_discovery_to_the_next() -> None:
    providers = {"a": FakeProvider({"tx1": transfer()}, down=True), "b": FakeProvider({"tx1": transfer()}),
                 "c": FakeProvider({"tx1": transfer()})}
    reader = quorum_reader(providers, 2, ManualClock())
    read = await reader.read(None, Watch())
    assert [t.final for t in read.seen] == [True] and providers["b"].reads == 1


async def test_audits_let_another_provider_find_what_the_primary_omits() -> None:
    providers = {"a": FakeProvider({}), "b": FakeProvider({"tx1": transfer()}),
                 "c": FakeProvider({"tx1": transfer()})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=3)
    before = disagreements("a", "omitted")
    found = [len((await reader.read(None, Watch())).seen) for _ in range(3)]
    assert found == [0, 0, 1]
    assert providers["b"].reads == 1 and providers["a"].reads == 2
    assert disagreements("a", "omitted") - before == 1


async def test_an_audit_reads_from_where_the_last_one_ended_and_moves_no_cursor() -> None:
    providers = {"a": FakeProvider({}), "b": FakeProvider({"tx1": transfer()}),
                 "c": FakeProvider({"tx1": transfer()})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=2)
    await reader.read("c0", Watch())  # the primary moves past tx1 without a word
    audit = await reader.read("c1", Watch())
    assert providers["b"].cursors == ["c0"]  # read again from before the primary's page
    assert [t.tx_id for t in audit.seen] == ["tx1"] and audit.cursor is None
    await reader.read("c1", Watch())
    await reader.read("c2", Watch())
    assert providers["c"].cursors == ["c1"]  # the next audit: the next provider, onwards


async def test_a_demoted_provider_comes_back_after_agreeing_for_a_while() -> None:
    clock = ManualClock()
    book = Agreement("ton", ["a", "b", "c"], Policy(quorum=2, demote_after=2, restore_after=3), clock)
    book.disagreed("c", ("x", 0), "amount")
    book.disagreed("c", ("x", 0), "amount")  # the same transfer and kind counts once
    assert not book.demoted("c")
    book.disagreed("c", ("y", 0), "omitted")
    assert book.demoted("c")
    for n in range(3):
        book.agreed("c", (f"ok{n}", 0))
    assert not book.demoted("c")


async def test_disagreements_older_than_the_window_are_forgotten() -> None:
    clock = ManualClock()
    book = Agreement("ton", ["a", "b"], Policy(quorum=1, demote_after=2, window=timedelta(minutes=10)), clock)
    book.disagreed("b", ("x", 0), "lag")
    clock.advance(minutes=11)
    book.disagreed("b", ("y", 0), "lag")
    assert not book.demoted("b")


async def test_too_few_healthy_providers_show_in_the_snapshot() -> None:
    book = Agreement("tron", ["a", "b", "c"], Policy(quorum=2, demote_after=1), ManualClock())
    book.disagreed("a", ("x", 0), "amount")
    assert book.quorum_met and book.snapshot().state == "closed"
    book.disagreed("b", ("x", 0), "amount")
    snapshot = book.snapshot()
    assert not book.quorum_met
    assert snapshot.name == "trongrid-quorum" and snapshot.state == "quorum_unmet"
    assert snapshot.last_error == "1 of 3 providers healthy, quorum 2; demoted: a, b"


async def test_recheck_asks_every_provider_by_tx_id() -> None:
    providers = {"a": FakeProvider({"tx1": transfer(final=False)}), "b": FakeProvider({"tx1": transfer()}),
                 "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, ManualClock())
    read = await reader.recheck([KEY])
    assert [(t.amount, t.final) for t in read.seen] == [(100, False)]
    assert all(p.lookups == 1 and p.reads == 0 for p in providers.values())
    providers["a"].said = {"tx1": transfer()}
    assert [t.final for t in (await reader.recheck([KEY])).seen] == [True]
    providers["a"].said = providers["b"].said = {}
    assert (await reader.recheck([KEY])).vanished == [KEY]


# --- rejections (review finding 2) ---------------------------------------------------------

class Rejects(FakeProvider):
    """A provider whose discovery calls `real` a counterfeit (unmatched); by tx id it answers
    `answer` (FAILED_SIGHTING: credits nothing, as ton_lookup; None: absent, as tron_lookup)."""

    def __init__(self, real: ObservedTransfer, answer: Sighting | None = FAILED_SIGHTING) -> None:
        super().__init__({})
        self.real, self.answer = real, answer

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        self.reads += 1
        fake = dataclasses.replace(self.real, asset="COUNTERFEIT")
        return ChainRead(rejected=[(fake, "counterfeit_token")], cursor="next", handled=1)

    async def lookup(self, keys: Sequence[TransferKey]) -> dict[TransferKey, Sighting]:
        self.lookups += 1
        return {key: self.answer for key in keys if self.answer is not None}


@pytest.mark.parametrize("answer", [FAILED_SIGHTING, None], ids=["credits-nothing", "absent"])
async def test_a_rejection_a_quorum_agrees_with_is_kept_and_the_cursor_moves(answer: Sighting | None) -> None:
    real = transfer()
    providers: dict[str, FakeProvider] = {"a": Rejects(real), "b": Rejects(real, answer),
                                          "c": Rejects(real, answer)}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    read = await reader.read("c0", Watch())
    assert [(t.tx_id, reason) for t, reason in read.rejected] == [("tx1", "counterfeit_token")]
    assert read.seen == [] and read.cursor == "next"


async def test_a_rejection_is_not_stored_while_an_honest_peer_sees_a_credit_and_one_lags() -> None:
    """The liar rejects, b sees the payment, c has not indexed it yet: absence is no proof of
    "no credit" on the first verdict, so nothing is stored and the page is read again; once c
    has it, the quorum's payment is reported and the liar counted."""
    real = transfer()
    providers = {"a": Rejects(real), "b": FakeProvider({"tx1": real}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    before = disagreements("a", "success")
    read = await reader.read("c0", Watch())
    assert (read.rejected, read.seen, read.cursor) == ([], [], None)
    providers["c"].said = {"tx1": real}
    read = await reader.read("c0", Watch())
    assert [(t.amount, t.asset, t.final) for t in read.seen] == [(100, "TON", True)]
    assert read.rejected == [] and read.cursor == "next"
    assert disagreements("a", "success") - before == 1


async def test_a_lone_crediting_peer_is_outvoted_after_the_grace_and_counted() -> None:
    real = transfer(tx="tx-alone")
    providers = {"a": Rejects(real), "b": FakeProvider({"tx-alone": real}), "c": Rejects(real, None)}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    before = disagreements("b", "success")
    assert (await reader.read("c0", Watch())).cursor is None  # one verdict of grace
    read = await reader.read("c0", Watch())
    assert [t.tx_id for t, _ in read.rejected] == ["tx-alone"] and read.cursor == "next"
    assert disagreements("b", "success") - before == 1


async def test_a_rejection_nobody_else_answers_for_is_not_stored() -> None:
    real = transfer()
    providers = {"a": Rejects(real), "b": FakeProvider({}, down=True), "c": FakeProvider({}, down=True)}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    read = await reader.read("c0", Watch())
    assert (read.rejected, read.seen, read.cursor) == ([], [], None)


async def test_a_failure_the_primary_reports_is_kept_with_a_quorum() -> None:
    """The primary's own failed transaction, failed at the quorum too: reported (to fail)."""
    class Fails(FakeProvider):
        async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
            return ChainRead(seen=[transfer(final=False)], failed=[KEY], cursor="next")

        async def lookup(self, keys: Sequence[TransferKey]) -> dict[TransferKey, Sighting]:
            return {key: FAILED_SIGHTING for key in keys}
    providers: dict[str, FakeProvider] = {"a": Fails({}), "b": Fails({}), "c": Fails({})}
    read = await quorum_reader(providers, 2, ManualClock(), audit_every=1000).read("c0", Watch())
    assert [t.tx_id for t in read.seen] == ["tx1"] and read.failed == [KEY] and read.cursor == "next"


# --- liveness: holding the cursor, lag grace, earning back (review findings 4 to 6) ---------

async def test_a_primary_holding_the_cursor_alone_hands_discovery_over_and_is_demoted() -> None:
    ghost = transfer(tx="ghost", final=False)
    providers = {"a": FakeProvider({"ghost": ghost}), "b": FakeProvider({}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000, hold_after=3, demote_after=2)
    before = disagreements("a", "held")
    cursors = [(await reader.read("c0", Watch())).cursor for _ in range(7)]
    # read 1 holds (first sight), 2 to 4 hold by the same transfer again: then b discovers,
    # a counted on reads 5 and 6, demoted, and b is primary
    assert cursors == [None, None, None, None, "next", "next", "next"]
    assert disagreements("a", "held") - before == 2
    assert reader.book.demoted("a") and reader.book.primary() == "b"


async def test_a_primary_a_poll_ahead_on_a_busy_account_is_never_handed_over() -> None:
    """Each read the primary has one new transfer (not final yet) its peers index a poll
    later: each is held once, never the same one twice, so discovery stays with it and
    nothing is counted. (One it already calls final is counted "phantom" at once.)"""
    providers = {n: FakeProvider({}) for n in "abc"}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000, hold_after=2)
    before = disagreements("a", "held")
    for n in range(10):
        old, new = transfer(tx=f"busy-{n}"), transfer(tx=f"busy-{n + 1}", final=False)
        providers["a"].said = {"old": old, "new": new}
        providers["b"].said = providers["c"].said = {"old": old}
        read = await reader.read("c0", Watch())
        assert [t.tx_id for t in read.seen] == [f"busy-{n}"] and read.cursor is None
    assert providers["b"].reads == 0 and disagreements("a", "held") == before


async def test_lag_is_counted_once_the_quorum_called_it_final_a_verdict_before() -> None:
    providers = {"a": FakeProvider({"tx-lag": transfer(tx="tx-lag")}),
                 "b": FakeProvider({"tx-lag": transfer(tx="tx-lag")}),
                 "c": FakeProvider({"tx-lag": transfer(tx="tx-lag", final=False)})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    before = disagreements("c", "lag")
    await reader.recheck([("tx-lag", 0)])
    assert disagreements("c", "lag") == before  # a poll behind: the grace
    await reader.recheck([("tx-lag", 0)])
    assert disagreements("c", "lag") - before == 1  # still not final a verdict later


async def test_a_demoted_provider_earns_back_only_where_every_healthy_one_agrees() -> None:
    providers = {n: FakeProvider({}) for n in "abc"}
    reader = quorum_reader(providers, 2, ManualClock(), demote_after=1, restore_after=2)
    reader.book.disagreed("a", ("old", 0), "amount")
    reader.book.disagreed("b", ("old", 0), "amount")
    for n in range(3):  # c (healthy) says another amount: a and b agree with nobody
        key = (f"split-{n}", 0)
        providers["a"].said = providers["b"].said = {key[0]: transfer(tx=key[0])}
        providers["c"].said = {key[0]: transfer(999, tx=key[0])}
        assert (await reader.recheck([key])).seen == []
    assert not reader.book.quorum_met
    for n in range(2):
        key = (f"same-{n}", 0)
        for p in providers.values():
            p.said = {key[0]: transfer(tx=key[0])}
        await reader.recheck([key])
    assert reader.book.quorum_met and reader.book.healthy() == ["a", "b", "c"]


# --- discovery and audits that fail to parse (finding 9) -----------------------------------

class Unparsable(FakeProvider):
    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        self.reads += 1
        raise ValueError("/transactions did not answer with an object")


async def test_an_audit_answering_garbage_reads_nothing_and_moves_nothing() -> None:
    providers = {"a": FakeProvider({}), "b": Unparsable({}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=2)
    await reader.read("c0", Watch())
    assert await reader.read("c1", Watch()) == ChainRead()
    assert providers["b"].reads == 1


async def test_every_provider_answering_garbage_raises_the_first_error() -> None:
    providers: dict[str, FakeProvider] = {"a": Unparsable({}), "b": Unparsable({}), "c": Unparsable({})}
    reader = quorum_reader(providers, 2, ManualClock(), audit_every=1000)
    with pytest.raises(ValueError, match="did not answer"):
        await reader.read("c0", Watch())


# --- the audit position (finding 8) and the head (finding 10) --------------------------------

async def test_the_audit_position_is_stored_and_read_back() -> None:
    positions = MemoryPositions()
    providers = {"a": FakeProvider({}), "b": FakeProvider({}), "c": FakeProvider({})}
    reader = quorum_reader(providers, 2, ManualClock(), positions, audit_every=2)
    await reader.read("c0", Watch())
    assert positions.values == {"ton:fake:audit": "c0"}  # where audits start, from the first read
    await reader.read("c5", Watch())  # b audits from c0 and catches up: the next audit from c5
    assert positions.values == {"ton:fake:audit": "c5"}
    again = quorum_reader(providers, 2, ManualClock(), positions, audit_every=2)
    await again.read("c9", Watch())
    await again.read("c9", Watch())  # after a restart: from the stored c5, not from c9
    assert providers["b"].cursors == ["c0", "c5"]


def head(number: int) -> Callable[[], Awaitable[ChainHead]]:
    async def ask() -> ChainHead:
        return ChainHead(number, datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=number))
    return ask


def no_head() -> Callable[[], Awaitable[ChainHead]]:
    async def ask() -> ChainHead:
        raise ServerError("down", status=503, endpoint="fake")
    return ask


async def test_the_agreed_head_is_the_quorum_th_highest_of_the_healthy_providers() -> None:
    book = Agreement("ton", ["a", "b", "c", "d"], Policy(quorum=2, demote_after=1), ManualClock())
    async def number(heads: dict[str, Callable[[], Awaitable[ChainHead]]]) -> int:
        return (await agreed_head(book, heads)).number
    assert await number({"a": head(50), "b": head(10), "c": head(12), "d": head(11)}) == 12
    book.disagreed("a", ("x", 0), "amount")  # demoted: its head is not asked
    assert await number({"a": head(99), "b": head(10), "c": head(12), "d": head(11)}) == 11
    # fewer answers than the quorum: the primary's (b); not even that: its error
    assert await number({"a": head(99), "b": head(10), "c": no_head(), "d": no_head()}) == 10
    with pytest.raises(ServerError):
        await number({"a": head(99), "b": no_head(), "c": head(12), "d": no_head()})
