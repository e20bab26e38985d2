"""Review of the money-out changes (issue 17): a payout's bounce after confirmation, the
payer's address stored with a payment, and the signer's comments; on SQLite and PostgreSQL
with the real signer on the devnet.

Some tests here FAIL on purpose: each names a bug found in review (see its docstring) and
passes once the fix it describes is made. The others pin properties the feature's own tests
do not: a bounce credited once by two trackers at the same moment, the ledger balanced per
asset after a bounce, the payout watcher and the signer agreeing on which message may bounce,
a stored sender never overwritten."""

# ruff: noqa: F811 - the shared fixtures imported below are redefined as test arguments

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.db import tables as t
from krypton.adapters.signer.chain import ChainError, Delivery, Landed
from krypton.app import ingest, payouts
from krypton.app.merchants import IssuedKey
from krypton.app.payouts import BOUNCE_WATCH, may_bounce
from krypton.domain import ledger
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from krypton.domain.payout import BOUNCE_RETRY, Payout, PayoutStatus
from krypton.domain.signer_policy import (
    DestinationKind,
    Facts,
    Limits,
    Policy,
    Refusal,
    RequestKind,
    TransferRequest,
    decide,
)
from krypton.workers.loops import PAYOUT_TRACK_SECONDS
from tests.app.test_crypto_refunds import (  # noqa: F401 - the refund world fixtures
    ALICE,
    BOB,
    World,
    world,
)
from tests.app.test_payment_sender import new_invoice, payment_of
from tests.app.test_payout_bounce import FEE, ChainView, journal, send
from tests.app.test_payouts import (  # noqa: F401 - the signer rig fixtures
    NOBODY,
    TON,
    USDT,
    Rig,
    _request,
    _status,
    balances,
    credit,
    rig,
    socket_dir,
)
from tests.support.clock import ManualClock


class Outage(ChainView):
    """The signer's chain provider: `down` while TON Center cannot be reached for the
    destinations' transactions (the signer then answers "confirmed" without a delivery)."""

    down = False

    async def delivery(self, message_hash: str) -> Delivery | None:
        if self.down:
            raise ChainError("toncenter: 503 Service Unavailable")
        return await super().delivery(message_hash)


def outage_view(rig: Rig) -> Outage:
    chain = rig.signer._chain
    seen = Outage(chain._http, chain._base)
    rig.signer._chain = seen
    return seen


async def ledger_sums(rig: Rig) -> dict[str, int]:
    """Each asset's balances summed over every account: zero in a balanced ledger."""
    async with rig.container.deps.uow(write=False) as uow:
        found = await uow.ledger.balances()
    sums: dict[str, int] = {}
    for (_, asset), amount in found.items():
        sums[asset] = sums.get(asset, 0) + amount
    return sums


# --- a bounce must not be missed --------------------------------------------------------------

async def test_a_bounce_is_not_missed_behind_200_confirmed_payouts_that_cannot_bounce(
        rig: Rig, merchant: IssuedKey, clock: ManualClock) -> None:
    """BUG (high): `track` reads `confirmed_since(now - BOUNCE_WATCH, limit=200)` oldest first and
    only THEN keeps the payouts that `may_bounce`. 200 payouts confirmed in the last 15 minutes
    to ordinary wallets (non-bounceable, the usual case) fill the page, so a bounceable one
    confirmed after them is never asked again: its bounce is never seen, the merchant's money
    sits in the hot wallet and the payout says confirmed. (The same happens with more than 200
    bounceable ones: the newest are never watched before they age out.)"""
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = outage_view(rig)
    chain.softened = True  # reported delivered first; the bounce is seen a round later
    await credit(rig.container, mid, "TON", 10 * TON)
    earlier = clock.now() - timedelta(minutes=1)
    async with rig.container.db.writer.connect() as conn:  # 200 wallet payouts of the last minute
        await conn.begin()
        await conn.execute(t.payouts.insert(), [dict(
            id=f"po_wallet{i:04d}", merchant_id=mid, asset="TON", amount=TON,
            destination=ALICE.raw, status=PayoutStatus.CONFIRMED.value, network_fee=0,
            created_at=earlier, updated_at=earlier) for i in range(200)])
        await conn.commit()
    bounced = await _request(rig, mid, 4 * TON, NOBODY.friendly(bounceable=True, testnet=True))
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 1
    assert await _status(rig, bounced) is PayoutStatus.CONFIRMED

    chain.softened = False  # the bounce is on chain now
    await payouts.track(deps, rig.kit)
    assert await _status(rig, bounced) is PayoutStatus.FAILED
    assert await balances(rig.container, mid) == (10 * TON, 0)


async def test_a_bounce_hidden_by_a_provider_outage_longer_than_the_watch_is_still_credited(
        rig: Rig, merchant: IssuedKey, clock: ManualClock) -> None:
    """BUG (high): the watch ends BOUNCE_WATCH after the confirmation by the server clock,
    whether or not the signer could look during it. A TON Center outage (or a signer, worker
    or lease holder down) longer than 15 minutes lets a confirmed payout age out unchecked: the
    bounce is on chain, the 4 TON are back in the hot wallet, and the merchant never gets them
    back. The payout must stay watched until a delivery answer covers the end of the window."""
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = outage_view(rig)
    chain.softened = True
    await credit(rig.container, mid, "TON", 10 * TON)
    payout_id = await _request(rig, mid, 4 * TON, NOBODY.friendly(bounceable=True, testnet=True))
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 1
    assert await _status(rig, payout_id) is PayoutStatus.CONFIRMED

    chain.down = True  # the provider is down for 16 minutes; the tracker runs all along
    for _ in range(16):
        clock.advance(seconds=60)
        assert await payouts.track(deps, rig.kit) == 0
    watched = await payouts.get_payout(deps, rig.kit, mid, payout_id)
    assert watched.bounce_check_at is not None and watched.bounce_checks == 0  # nothing answered
    chain.down, chain.softened = False, False  # back, and the bounce is there
    # Adjusted from the review's version, which tracked again at the same instant: a check
    # that got no answer is retried BOUNCE_RETRY later (not every round: asking a provider
    # that is down or rate-limiting us every 5 s is what starves the signer), so the next
    # check after the outage is at most that much later.
    clock.advance(seconds=BOUNCE_RETRY.total_seconds())
    await payouts.track(deps, rig.kit)
    assert await _status(rig, payout_id) is PayoutStatus.FAILED
    assert await balances(rig.container, mid) == (10 * TON, 0)


class Counted(ChainView):
    """Counts the signer's TON Center lookups (transactionsByMessage, both kinds)."""

    lookups = 0

    async def find(self, message_hash: str) -> Landed | None:
        self.lookups += 1
        return await super().find(message_hash)

    async def delivery(self, message_hash: str) -> Delivery | None:
        self.lookups += 1
        return await super().delivery(message_hash)


async def test_watching_a_confirmed_payout_for_bounces_costs_a_bounded_number_of_chain_lookups(
        rig: Rig, merchant: IssuedKey, clock: ManualClock) -> None:
    """BUG (medium): every tracking round (PAYOUT_TRACK_SECONDS = 5 s) asks the signer about
    every watched confirmed payout, and each answer costs the signer TON Center lookups
    (the wallet's transaction, our jetton wallet's, the recipient's: 3 for USDT), straight
    through its httpx client with no rate limit or cache. One USDT payout watched for 15
    minutes is 180 rounds, 540 requests; 20 watched at once pass TON Center's 10 rps for an
    API key, and the signer's own seqno/send/find calls then fail with 429 (ChainError): the
    watch starves sending. A backoff (e.g. 5 s, 30 s, 2 min, 5 min, then the window's end)
    keeps it to a handful."""
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = rig.signer._chain
    counted = Counted(chain._http, chain._base)
    rig.signer._chain = counted
    await credit(rig.container, mid, "USDT_TON", 50 * USDT)
    payout_id = await _request(rig, mid, 12 * USDT, ALICE.raw, "USDT_TON")
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 1
    assert await _status(rig, payout_id) is PayoutStatus.CONFIRMED
    counted.lookups = 0
    rounds = int(BOUNCE_WATCH / timedelta(seconds=PAYOUT_TRACK_SECONDS))
    for _ in range(rounds):
        clock.advance(seconds=PAYOUT_TRACK_SECONDS)
        await payouts.track(deps, rig.kit)
    assert counted.lookups <= 30, f"{counted.lookups} TON Center lookups for one payout in {rounds} rounds"


# --- credited back once -----------------------------------------------------------------------

async def test_two_trackers_seeing_one_bounce_at_once_credit_it_back_once(
        rig: Rig, merchant: IssuedKey) -> None:
    """Two workers (a lease handed over mid-round) both read the payout confirmed and both see
    its bounce: the payout's row lock makes the second find it failed already."""
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = outage_view(rig)
    chain.fee, chain.softened = FEE, True
    await credit(rig.container, mid, "TON", 10 * TON)
    payout_id = await _request(rig, mid, 4 * TON, NOBODY.friendly(bounceable=True, testnet=True))
    await send(rig)
    assert await payouts.track(deps, rig.kit) == 1
    chain.softened = False

    changed = await asyncio.gather(payouts.track(deps, rig.kit), payouts.track(deps, rig.kit))

    assert sorted(changed) == [0, 1]
    assert await _status(rig, payout_id) is PayoutStatus.FAILED
    assert await balances(rig.container, mid) == (10 * TON, 0)
    assert await journal(rig, "payout_failed", payout_id) == 1
    assert await journal(rig, "payout_network_fee", payout_id) == 1
    assert await payouts.track(deps, rig.kit) == 0  # a restart asks nothing more


async def test_a_bounce_seen_again_after_a_crash_is_not_credited_twice(
        rig: Rig, merchant: IssuedKey) -> None:
    """A tracker that recorded the bounce and died before its round ended: the next one asks
    the signer again (the same bounced answer) and changes nothing."""
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "TON", 10 * TON)
    payout_id = await _request(rig, mid, 4 * TON, NOBODY.friendly(bounceable=True, testnet=True))
    await send(rig)
    assert rig.kit.signer is not None
    outcome = await rig.kit.signer.status(payout_id)
    assert outcome is not None and outcome.bounced
    assert await payouts._record(deps, rig.kit, payout_id, outcome)
    assert not await payouts._record(deps, rig.kit, payout_id, outcome)  # replayed after the crash
    assert await payouts.track(deps, rig.kit) == 0
    assert await balances(rig.container, mid) == (10 * TON, 0)
    assert await journal(rig, "payout_failed", payout_id) == 1


# --- the ledger after a bounce ----------------------------------------------------------------

async def test_the_ledger_balances_per_asset_after_a_usdt_payout_bounces(
        rig: Rig, merchant: IssuedKey) -> None:
    """A USDT payout larger than the hot wallet's jettons: our jetton wallet refuses it and the
    jettons stay. The USDT comes back to the merchant; the TON network fee is booked in TON
    alone; every asset's accounts still sum to zero."""
    deps, mid = rig.container.deps, merchant.merchant_id
    chain = outage_view(rig)
    chain.fee = FEE
    await credit(rig.container, mid, "USDT_TON", 500 * USDT)
    jettons = rig.devnet.ton.jetton_balance(rig.wallet.address)
    payout_id = await _request(rig, mid, 200 * USDT, ALICE.raw, "USDT_TON")  # the wallet holds 100
    await send(rig)
    await payouts.track(deps, rig.kit)
    failed = await payouts.get_payout(deps, rig.kit, mid, payout_id)
    assert failed.status is PayoutStatus.FAILED, failed
    assert await balances(rig.container, mid, "USDT_TON") == (500 * USDT, 0)
    assert await journal(rig, "payout_failed", payout_id) == 1
    assert await journal(rig, "payout_network_fee", payout_id) == 1
    assert set((await ledger_sums(rig)).values()) == {0}
    async with deps.uow(write=False) as uow:
        found = await uow.ledger.balances()
    assert found[(ledger.external("USDT_TON"), "USDT_TON")] == -500 * USDT
    assert found[(ledger.external("TON"), "TON")] == FEE
    assert rig.devnet.ton.jetton_balance(rig.wallet.address) == jettons


async def test_in_one_batch_the_usdt_payout_our_jetton_wallet_refused_is_the_one_failed(
        rig: Rig, merchant: IssuedKey) -> None:
    """Two USDT payouts in one external both go to our one jetton wallet with the same TON
    value, told apart only by order; the wallet holds 100 USDT, so the second refuses. The
    payout that failed and was credited back must be the one whose recipient got nothing."""
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "USDT_TON", 200 * USDT)
    payers = (("alice", ALICE), ("bob", BOB))
    before = {who: rig.devnet.ton.jetton_balance(address) for who, address in payers}
    to_alice = await _request(rig, mid, 60 * USDT, ALICE.raw, "USDT_TON")
    to_bob = await _request(rig, mid, 60 * USDT, BOB.raw, "USDT_TON")
    await send(rig)
    await payouts.track(deps, rig.kit)
    got = {who: rig.devnet.ton.jetton_balance(address) - before[who] for who, address in payers}
    statuses = {"alice": await _status(rig, to_alice), "bob": await _status(rig, to_bob)}
    assert sorted(got.values()) == [0, 60 * USDT], got
    for who, amount in got.items():
        assert statuses[who] is (PayoutStatus.CONFIRMED if amount else PayoutStatus.FAILED), statuses
    assert await balances(rig.container, mid, "USDT_TON") == (140 * USDT, 0)
    assert set((await ledger_sums(rig)).values()) == {0}


# --- which message may bounce -----------------------------------------------------------------

BOUNCEABLE_CONTRACT = TonAddress(0, bytes([0x21]) * 32)
MASTERCHAIN = TonAddress(-1, bytes([0x33]) * 32)


@pytest.mark.parametrize("form", [
    BOUNCEABLE_CONTRACT.raw,
    BOUNCEABLE_CONTRACT.friendly(bounceable=True, testnet=True),
    BOUNCEABLE_CONTRACT.friendly(bounceable=False, testnet=True),
    BOUNCEABLE_CONTRACT.friendly(bounceable=True, testnet=False),
    BOUNCEABLE_CONTRACT.friendly(bounceable=False, testnet=False),
    MASTERCHAIN.raw,
    MASTERCHAIN.friendly(bounceable=True, testnet=True),
    MASTERCHAIN.friendly(bounceable=False, testnet=True),
])
async def test_the_watcher_and_the_signer_agree_on_which_ton_message_may_bounce(
        rig: Rig, form: str) -> None:
    """`may_bounce` (what `track` watches after confirmation) must say exactly what the signer
    signs: a raw "0:…" or "-1:…" address goes non-bounceable (never comes back, never watched);
    a masterchain "Ef…/kf…" too, by the signer's prefix rule. Were they to differ, a bounce
    would be missed (signer bounceable, watcher not) or asked for nothing."""
    request = TransferRequest("po_form", RequestKind.PAYOUT, "TON", TON, form,
                              DestinationKind.MERCHANT_WALLET, 1)
    message = await rig.signer._message(request)
    now = rig.container.deps.clock.now()
    payout = Payout("po_form", "mer_x", "TON", TON, form, now, now, PayoutStatus.CONFIRMED)
    assert may_bounce(payout) is message.bounce


# --- the payer's address ----------------------------------------------------------------------

async def test_a_later_sighting_with_another_sender_does_not_overwrite_the_stored_one(
        world: World) -> None:
    """The sender is what the first credited sighting said; a later sighting of the same
    transfer key naming someone else (a provider that lies, a re-parsed body) changes the
    confirmations, never where a refund to the source goes."""
    invoice = await new_invoice(world, "10", "TON", "ton")
    assert invoice.ton_address is not None
    seen = ObservedTransfer(chain=Chain.TON, tx_id="b" * 64, index=0, asset="TON", amount=10 * TON,
                            destination=invoice.ton_address, memo=invoice.memo, block=None,
                            confirmations=0, final=False, sender=BOB.raw)
    await ingest.ingest_transfer(world.container.deps, seen, invoice.id)
    later = dataclasses.replace(seen, block=5, confirmations=1, final=True, sender=ALICE.raw)
    await ingest.ingest_transfer(world.container.deps, later, invoice.id)
    payment = await payment_of(world, invoice)
    assert (payment.status.value, payment.sender) == ("confirmed", BOB.raw)



# --- the signer's comments --------------------------------------------------------------------

POLICY = Policy({"TON": Limits(per_transfer=10 * TON, per_day=10 * TON)})
NO_FACTS = Facts(0, None, False, False)


def _supplier_payment(comment: str) -> TransferRequest:
    return TransferRequest("ord_1", RequestKind.SUPPLIER_PAYMENT, "TON", TON, ALICE.raw,
                           DestinationKind.SUPPLIER, 1, comment)


@pytest.mark.parametrize("comment", [
    "Ref#1\x1b[2J",  # a terminal escape: would clear the screen of whoever tails the audit log
    "Ref#1\u200b",  # zero-width space: two comments that look alike but differ
    "Ref#1\u2028second line",  # a line separator that is not "\n"
    "Ref#1\r\nforged: line",  # a carriage return rewrites the line it is shown on
    "\ud800",  # a lone surrogate, as json.loads gives it from "\\ud800"
])
def test_comments_that_hide_or_forge_text_are_refused(comment: str) -> None:
    decision = decide(POLICY, _supplier_payment(comment), NO_FACTS)
    assert decision.refusal is Refusal.COMMENT_INVALID, decision


def test_a_supplier_comment_naming_an_invoice_memo_is_refused() -> None:
    """BUG (low): a supplier's answer names both the destination and, now, the comment. With
    "KR-…" in the comment, a payment to Krypton's own collector address credits that memo's
    invoice (another merchant's balance, forwarded at once by the contract) instead of landing
    unmatched where the operator can take it back. No supplier needs Krypton's memo syntax:
    the policy should refuse a comment in which domain/memo.find sees a memo."""
    decision = decide(POLICY, _supplier_payment("50 Telegram Stars\n\nRef#abc KR-ACDE3467"), NO_FACTS)
    assert decision.refusal is Refusal.COMMENT_INVALID, decision
