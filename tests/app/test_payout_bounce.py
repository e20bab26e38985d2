"""A payout whose message bounces after it was reported sent or even confirmed, on SQLite and
PostgreSQL, with the real signer on the devnet: it ends failed with the amount back in the
merchant's available balance, once (one `payout_failed` entry, one `payout.failed` event),
the network fee staying booked; and a USDT payout is confirmed only once the recipient's
jetton wallet took the jettons (the second hop).

The devnet runs a payout's whole chain of messages in one block; a view of its API that
hides or softens the destination's transaction for a while stands for what the real chain
shows between shards (the destination's transaction a few blocks later) or an indexer that
is behind."""

# ruff: noqa: F811 - the shared fixtures imported below are redefined as test arguments

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.signer.chain import Delivery, Landed, WalletChain
from krypton.app import payouts
from krypton.app.merchants import IssuedKey
from krypton.app.payouts import BOUNCE_CHECKS_PER_ROUND, BOUNCE_WATCH, Batching
from krypton.app.ports import SignerUnavailable, SignOutcome, SignRequest
from krypton.domain import events, ledger
from krypton.domain.payout import (
    BOUNCE_BACKOFF,
    BOUNCE_RETRY,
    Payout,
    PayoutStatus,
    next_bounce_check,
)
from krypton.workers.loops import PAYOUT_TRACK_SECONDS
from tests.app.test_payouts import (  # noqa: F401 - the signer rig fixtures
    ALICE,
    NOBODY,
    TON,
    USDT,
    Rig,
    _request,
    _status,
    balances,
    credit,
    payout_events,
    rig,
    socket_dir,
)
from tests.support.clock import ManualClock

FEE = 3_000_000  # nanotons the chain charged the hot wallet's transaction (the devnet charges none)


class ChainView(WalletChain):
    """The signer's chain, seen as the real chain can show it: `hidden` hides the destinations'
    transactions (not produced yet), `softened` shows them without their bounce; `fee` is
    what the wallet's transaction cost."""

    hidden = False
    softened = False
    fee = 0
    asked = 0

    async def find(self, message_hash: str) -> Landed | None:
        landed = await super().find(message_hash)
        return None if landed is None else dataclasses.replace(landed, total_fees=self.fee)

    async def delivery(self, message_hash: str) -> Delivery | None:
        self.asked += 1
        found = await super().delivery(message_hash)
        if self.hidden or found is None:
            return None
        return dataclasses.replace(found, bounced=False) if self.softened else found


def view(rig: Rig) -> ChainView:
    chain = rig.signer._chain
    seen = ChainView(chain._http, chain._base)
    rig.signer._chain = seen
    return seen


async def journal(rig: Rig, kind: str, reference: str) -> int:
    c = t.journal_entries.c
    async with rig.container.db.reader.connect() as conn:
        query = sa.select(sa.func.count()).where(c.kind == kind, c.reference == reference)
        return int((await conn.execute(query)).scalar_one())


async def send(rig: Rig) -> None:
    assert await payouts.dispatch_due(rig.container.deps, rig.kit, Batching(every=0, size=10), None) >= 1
    await rig.land()


async def test_a_bounce_seen_after_the_payout_was_sent_fails_it_once(rig: Rig, merchant: IssuedKey) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = view(rig)
    await credit(rig.container, mid, "TON", 10 * TON)
    nowhere = NOBODY.friendly(bounceable=True, testnet=True)  # never deployed: it bounces
    payout_id = await _request(rig, mid, 4 * TON, nowhere)
    chain.hidden = True  # the destination's transaction is not on chain yet
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 0
    assert await _status(rig, payout_id) is PayoutStatus.SENT
    assert await balances(rig.container, mid) == (6 * TON, 0)

    chain.hidden = False  # now it is, and it bounced
    assert await payouts.track(deps, rig.kit) == 1
    failed = await payouts.get_payout(deps, rig.kit, mid, payout_id)
    assert failed.status is PayoutStatus.FAILED and "bounced" in (failed.failure or "")
    assert await balances(rig.container, mid) == (10 * TON, 0)
    assert await payouts.track(deps, rig.kit) == 0  # final: asked no more, credited once
    assert await journal(rig, "payout_failed", payout_id) == 1
    assert await payout_events(rig.container, payout_id) == [
        events.payout_status_event(s) for s in ("requested", "queued", "sent", "failed")]


async def test_a_bounce_seen_after_the_payout_was_confirmed_fails_it_and_credits_it_back_once(
        rig: Rig, merchant: IssuedKey) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = view(rig)
    chain.fee, chain.softened = FEE, True  # reported delivered first
    await credit(rig.container, mid, "TON", 10 * TON)
    nowhere = NOBODY.friendly(bounceable=True, testnet=True)
    bounced = await _request(rig, mid, 4 * TON, nowhere)
    kept = await _request(rig, mid, TON, ALICE.raw)  # non-bounceable to a wallet: cannot bounce
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 2
    assert await _status(rig, bounced) is PayoutStatus.CONFIRMED
    assert await balances(rig.container, mid) == (5 * TON, 0)

    chain.softened = False  # the bounce back at the hot wallet is seen
    asked = chain.asked
    assert await payouts.track(deps, rig.kit) == 1
    assert chain.asked == asked + 1  # only the payout that could bounce was asked again
    failed = await payouts.get_payout(deps, rig.kit, mid, bounced)
    assert failed.status is PayoutStatus.FAILED and "bounced" in (failed.failure or "")
    assert await _status(rig, kept) is PayoutStatus.CONFIRMED
    assert await balances(rig.container, mid) == (9 * TON, 0)  # the 4 TON are back, once
    assert await payouts.track(deps, rig.kit) == 0
    assert await journal(rig, "payout_failed", bounced) == 1
    # The chain did charge for sending it: the platform's fee entry stays booked.
    assert failed.network_fee > 0 and await journal(rig, "payout_network_fee", bounced) == 1
    async with deps.uow(write=False) as uow:
        found = await uow.ledger.balances()
    assert found[(ledger.external("TON"), "TON")] == -10 * TON + TON + FEE  # only Alice's TON left
    assert await payout_events(rig.container, bounced) == [
        events.payout_status_event(s) for s in ("requested", "queued", "sent", "confirmed", "failed")]


async def test_a_confirmed_payout_is_watched_until_an_answer_after_the_window_then_no_more(
        rig: Rig, merchant: IssuedKey, clock: ManualClock) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = view(rig)
    chain.softened = True
    await credit(rig.container, mid, "TON", 10 * TON)
    payout_id = await _request(rig, mid, 4 * TON, NOBODY.friendly(bounceable=True, testnet=True))
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 1
    confirmed = await payouts.get_payout(deps, rig.kit, mid, payout_id)
    assert confirmed.status is PayoutStatus.CONFIRMED
    assert (confirmed.bounce_check_at, confirmed.bounce_checks) == (clock.now(), 0)  # due at once

    # The tracker did not get to it during the window (a backlog, a lease handed over): the
    # first answer after the window is the one that ends the watch, and it is asked for.
    clock.advance(seconds=BOUNCE_WATCH.total_seconds() + 1)
    asked = chain.asked
    assert await payouts.track(deps, rig.kit) == 0
    assert chain.asked == asked + 1
    ended = await payouts.get_payout(deps, rig.kit, mid, payout_id)
    assert (ended.status, ended.bounce_check_at, ended.bounce_checks) == (
        PayoutStatus.CONFIRMED, None, 1)

    chain.softened = False  # a "bounce" shown after the watch ended is no longer looked for
    clock.advance(seconds=60)
    assert await payouts.track(deps, rig.kit) == 0
    assert chain.asked == asked + 1  # no longer asked
    assert await _status(rig, payout_id) is PayoutStatus.CONFIRMED


async def test_the_checks_back_off_and_end_with_the_first_answer_after_the_window(
        rig: Rig, merchant: IssuedKey, clock: ManualClock) -> None:
    """With the tracker running every PAYOUT_TRACK_SECONDS for 20 minutes, a watched payout
    gets five answered checks: the next round, then 30 s, 2 min, 5 min after each answer, and
    at the window's end (not 240 checks, one a round); an unanswered check (the destination's
    transaction not seen) is asked again BOUNCE_RETRY later and does not count."""
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = view(rig)
    chain.softened = True
    await credit(rig.container, mid, "TON", 10 * TON)
    payout_id = await _request(rig, mid, 4 * TON, NOBODY.friendly(bounceable=True, testnet=True))
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 1
    confirmed_at = clock.now()
    step = int(PAYOUT_TRACK_SECONDS)
    asked_at: list[int] = []
    for second in range(step, 20 * 60 + 1, step):
        clock.advance(seconds=step)
        chain.hidden = second == 155  # the third check finds no answer
        before = chain.asked
        await payouts.track(deps, rig.kit)
        if chain.asked > before:
            asked_at.append(second)
    # 155 s: unanswered, retried at 185 s (not counted: the next wait is still 5 min).
    assert asked_at == [5, 35, 155, 185, 485, 900]
    watched = await payouts.get_payout(deps, rig.kit, mid, payout_id)
    assert (watched.status, watched.bounce_check_at, watched.bounce_checks) == (
        PayoutStatus.CONFIRMED, None, 5)
    assert watched.confirmed_at == confirmed_at and BOUNCE_WATCH.total_seconds() == 900


class DownSigner:
    """The signer's socket does not answer (the process stopped)."""

    async def transfer(self, requests: Sequence[SignRequest]) -> list[SignOutcome]:
        raise SignerUnavailable("signer: connection refused")

    async def status(self, request_id: str) -> SignOutcome | None:
        raise SignerUnavailable("signer: connection refused")


async def test_while_the_signer_is_down_a_due_check_stays_due_and_is_not_counted(
        rig: Rig, merchant: IssuedKey, clock: ManualClock) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = view(rig)
    chain.softened = True
    await credit(rig.container, mid, "TON", 10 * TON)
    payout_id = await _request(rig, mid, 4 * TON, NOBODY.friendly(bounceable=True, testnet=True))
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 1
    due = (await payouts.get_payout(deps, rig.kit, mid, payout_id)).bounce_check_at
    down = dataclasses.replace(rig.kit, signer=DownSigner())
    for _ in range(4 * 15):  # the signer is down for longer than the window
        clock.advance(seconds=PAYOUT_TRACK_SECONDS)
        assert await payouts.track(deps, down) == 0
    waiting = await payouts.get_payout(deps, rig.kit, mid, payout_id)
    assert (waiting.bounce_check_at, waiting.bounce_checks) == (due, 0)  # nothing was written

    clock.advance(seconds=BOUNCE_WATCH.total_seconds())
    chain.softened = False  # it bounced meanwhile: the first round after the restart sees it
    assert await payouts.track(deps, rig.kit) == 1
    assert await _status(rig, payout_id) is PayoutStatus.FAILED
    assert await balances(rig.container, mid) == (10 * TON, 0)


class AnsweringSigner:
    """Every payout asked about was confirmed and delivered; remembers who was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def transfer(self, requests: Sequence[SignRequest]) -> list[SignOutcome]:
        raise AssertionError("nothing is sent in this test")

    async def status(self, request_id: str) -> SignOutcome | None:
        self.asked.append(request_id)
        return SignOutcome(request_id, "confirmed", delivered=True)


async def test_a_backlog_of_due_checks_drains_in_due_order_a_bounded_number_a_round(
        rig: Rig, merchant: IssuedKey, clock: ManualClock) -> None:
    """25 watched payouts due at once (after an outage of the worker), among 200 confirmed
    payouts that are not watched and one whose check is not due yet: each round asks the
    longest-due BOUNCE_CHECKS_PER_ROUND, and the backlog is gone in three rounds."""
    deps, mid = rig.container.deps, merchant.merchant_id
    now = clock.now()
    confirmed = now - timedelta(minutes=3)
    contract = NOBODY.friendly(bounceable=True, testnet=True)
    rows = [dict(id=f"po_wallet{i:04d}", destination=ALICE.raw, bounce_check_at=None)
            for i in range(200)]
    rows += [dict(id=f"po_due{i:02d}", destination=contract,
                  bounce_check_at=now - timedelta(seconds=100 - i)) for i in range(25)]
    rows.append(dict(id="po_later", destination=contract, bounce_check_at=now + timedelta(seconds=1)))
    async with rig.container.db.writer.connect() as conn:
        await conn.begin()
        await conn.execute(t.payouts.insert(), [dict(
            row, merchant_id=mid, asset="TON", amount=TON, status=PayoutStatus.CONFIRMED.value,
            network_fee=0, bounce_checks=0, created_at=confirmed, updated_at=confirmed)
            for row in reversed(rows)])
        await conn.commit()
    signer = AnsweringSigner()
    kit = dataclasses.replace(rig.kit, signer=signer)
    asked_by_round = []
    for _ in range(4):
        assert await payouts.track(deps, kit) == 0
        asked_by_round.append(len(signer.asked))
    assert BOUNCE_CHECKS_PER_ROUND == 10 and asked_by_round == [10, 20, 25, 25]  # drained
    assert signer.asked == [f"po_due{i:02d}" for i in range(25)]  # the longest due first
    checked = await payouts.get_payout(deps, rig.kit, mid, "po_due00")
    assert (checked.bounce_check_at, checked.bounce_checks) == (now + BOUNCE_BACKOFF[0], 1)


def test_the_watch_ends_only_on_an_answer_made_after_the_window() -> None:
    confirmed = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    payout = Payout("po_1", "mer_1", "TON", TON, "EQx", confirmed, confirmed,
                    PayoutStatus.CONFIRMED)
    payout.watch_bounces(confirmed)
    hours_later = confirmed + timedelta(hours=5)
    payout.bounce_checked(hours_later, answered=False)  # however long nothing is answered
    assert payout.bounce_check_at == hours_later + BOUNCE_RETRY and payout.bounce_checks == 0
    payout.bounce_checked(hours_later, answered=True)
    assert payout.bounce_check_at is None and payout.bounce_checks == 1
    # Answers inside the window back off, cut at the window's end.
    assert next_bounce_check(confirmed, 1, confirmed) == confirmed + BOUNCE_BACKOFF[0]
    late = confirmed + BOUNCE_WATCH - timedelta(seconds=10)
    assert next_bounce_check(confirmed, 4, late) == confirmed + BOUNCE_WATCH
    assert next_bounce_check(confirmed, 9, confirmed) == confirmed + BOUNCE_BACKOFF[-1]
    # A bounce ends the watch with the payout.
    payout.watch_bounces(confirmed)
    payout.fail("bounced", confirmed + timedelta(minutes=1))
    assert payout.bounce_check_at is None


async def test_a_usdt_payout_is_confirmed_only_when_the_recipients_jetton_wallet_took_it(
        rig: Rig, merchant: IssuedKey) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "USDT_TON", 50 * USDT)
    payout_id = await _request(rig, mid, 12 * USDT, ALICE.raw, "USDT_TON")
    await send(rig)

    class SecondHopLate(ChainView):
        """Our jetton wallet's transaction is on chain; the recipient's is not yet."""

        hops = 0

        async def delivery(self, message_hash: str) -> Delivery | None:
            self.hops += 1
            return await super().delivery(message_hash) if self.hops % 2 else None

    chain = rig.signer._chain
    rig.signer._chain = SecondHopLate(chain._http, chain._base)
    assert await payouts.track(deps, rig.kit) == 0
    assert await _status(rig, payout_id) is PayoutStatus.SENT
    rig.signer._chain = chain
    assert await payouts.track(deps, rig.kit) == 1
    assert await _status(rig, payout_id) is PayoutStatus.CONFIRMED
