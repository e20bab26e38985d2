"""The chain loop (workers/watch.py) and the TON and Tron readers, with the same client and
parser code as mainnet, against the devnet."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.reader import cursor_name
from krypton.adapters.chains.tron.reader import EVENTS_CURSOR, TronReader
from krypton.app import invoices
from krypton.bootstrap import Container
from krypton.devnet.faults import Fault
from krypton.domain.invoice import Invoice
from krypton.workers.watch import ChainWatch
from tests.support.clock import ManualClock
from tests.support.devnet_rig import DevnetRig

TON = 10**9
USDT = 10**6


class Rig(DevnetRig):
    async def state(self, invoice: Invoice) -> tuple[str, str | None, int]:
        i = await invoices.get_invoice(self.container.deps, self.merchant_id, invoice.id)
        return i.status.value, i.exception.value if i.exception else None, i.amount_paid

    async def payments(self, invoice: Invoice) -> list[str]:
        async with self.container.deps.uow(write=False) as uow:
            return [p.status.value for p in await uow.payments.for_invoice(invoice.id)]

    async def unmatched(self) -> list[str]:
        async with self.container.deps.uow(write=False) as uow:
            return [u["reason"] for u in await uow.unmatched.list(100)]


@pytest.fixture
async def rig(container: Container, clock: ManualClock) -> AsyncIterator[Rig]:
    from krypton.app import merchants

    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    assert container.devnet is not None
    # A short provider timeout: the devnet's "timeout" fault hangs until the client gives up.
    settings = container.settings.model_copy(update={"provider_timeout_seconds": 0.3})
    chains = dataclasses.replace(container, settings=settings).chains()
    yield Rig(container, container.devnet, ChainWatch(container.deps, chains), merchant.id)
    await chains.aclose()


def ton_address(invoice: Invoice) -> TonAddress:
    assert invoice.ton_address is not None
    return parse(invoice.ton_address, network="testnet")


async def test_ton_payment_with_memo_pays(rig: Rig) -> None:
    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    assert await rig.watchers.poll() == 1
    assert await rig.state(invoice) == ("paid", None, 10 * TON)
    await rig.balances()


async def test_memo_matching_ignores_case_and_blanks(rig: Rig) -> None:
    invoice = await rig.invoice("10", "TON", ["ton"])
    assert invoice.memo is not None
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=f"  {invoice.memo.lower()} ")
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert (await rig.state(invoice))[0] == "paid"


async def test_usdt_on_ton_through_our_jetton_wallet_pays(rig: Rig) -> None:
    invoice = await rig.invoice("25", "USDT", ["usdt_ton"])
    rig.devnet.ton.pay_jetton("alice", ton_address(invoice), 25 * USDT, comment=invoice.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", None, 25 * USDT)


async def test_a_jetton_we_do_not_accept_is_recorded_never_credited(rig: Rig) -> None:
    """The devnet's counterfeit USDT is another jetton master: its notification comes from a
    genuine jetton wallet of ours, so it is unsupported (a forgery: tests/adapters/chains/ton)."""
    invoice = await rig.invoice("25", "USDT", ["usdt_ton"])
    rig.devnet.ton.pay_jetton("alice", ton_address(invoice), 25 * USDT, comment=invoice.memo,
                              counterfeit=True)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("pending", None, 0)
    assert await rig.unmatched() == ["unsupported_jetton"]


async def test_bounced_message_is_not_a_payment(rig: Rig) -> None:
    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=invoice.memo,
                           bounceable=True, undeliverable=True)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("pending", None, 0)
    assert await rig.payments(invoice) == []
    assert await rig.unmatched() == []


async def test_rewound_cursor_credits_once(rig: Rig) -> None:
    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    async with rig.container.deps.uow() as uow:
        await uow.cursors.set(cursor_name(ton_address(invoice)), "")
        await uow.commit()
    await rig.watchers.poll()
    assert await rig.payments(invoice) == ["confirmed"]
    assert await rig.state(invoice) == ("paid", None, 10 * TON)


async def test_ton_provider_faults_miss_nothing(rig: Rig) -> None:
    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    rig.devnet.faults.inject("toncenter", Fault("status", status=500), count=1)
    rig.devnet.faults.inject("toncenter", Fault("status", status=429, retry_after=0), count=1)
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", None, 10 * TON)


async def test_tron_transfer_confirms_only_when_solidified(rig: Rig) -> None:
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT)
    rig.devnet.produce("tron")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("confirming", None, 0)
    assert await rig.payments(invoice) == ["confirming"]
    rig.devnet.produce("tron", 18)
    await rig.watchers.poll()
    assert (await rig.state(invoice))[0] == "confirming"  # 19 confirmations, not yet solidified
    rig.devnet.produce("tron", 1)
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", None, 50 * USDT)
    await rig.balances()


async def test_tron_reorg_orphans_and_never_pays(rig: Rig) -> None:
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT)
    rig.devnet.produce("tron", 2)
    await rig.watchers.poll()
    rig.devnet.tron.reorg(3)
    rig.devnet.produce("tron", 25)
    await rig.watchers.poll()
    assert await rig.payments(invoice) == ["orphaned"]
    assert await rig.state(invoice) == ("pending", None, 0)


async def test_tron_reverted_transfer_is_never_credited(rig: Rig) -> None:
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT, result="REVERT")
    rig.devnet.produce("tron", 25)
    await rig.watchers.poll()
    await rig.watchers.poll()
    # A reverted call emits no Transfer event, so discovery never even lists it.
    assert await rig.state(invoice) == ("pending", None, 0)
    assert await rig.payments(invoice) == []


async def test_tron_counterfeit_token_is_ignored(rig: Rig) -> None:
    """Only the real USDT contract is asked about: another contract's Transfer never shows."""
    from krypton.devnet.tron import COUNTERFEIT_CONTRACT

    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT, contract=COUNTERFEIT_CONTRACT)
    rig.devnet.produce("tron", 25)
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("pending", None, 0)
    assert await rig.payments(invoice) == []
    assert await rig.unmatched() == []


async def test_two_partial_ton_payments_pay_together(rig: Rig) -> None:
    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 4 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("pending", "underpaid", 4 * TON)
    rig.devnet.ton.pay_ton("bob", ton_address(invoice), 6 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", None, 10 * TON)


async def test_memo_copied_from_another_invoice_pays_only_that_invoice(rig: Rig) -> None:
    mine = await rig.invoice("10", "TON", ["ton"])
    other = await rig.invoice("3", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(mine), 10 * TON, comment=other.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(mine) == ("pending", None, 0)
    assert await rig.state(other) == ("paid", "overpaid", 10 * TON)


async def test_unknown_memo_is_kept_unmatched(rig: Rig) -> None:
    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment="KR-AAAAAAAA")
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), TON, comment="thanks!")
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("pending", None, 0)
    assert await rig.unmatched() == ["no_matching_invoice", "no_matching_invoice"]


async def test_ton_paid_late_inside_window_and_unmatched_after(rig: Rig, clock: ManualClock) -> None:
    late = await rig.invoice("10", "TON", ["ton"])
    too_late = await rig.invoice("10", "TON", ["ton"])
    clock.advance(minutes=20)
    await invoices.expire_due(rig.container.deps)
    rig.devnet.ton.pay_ton("alice", ton_address(late), 10 * TON, comment=late.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(late) == ("paid", "paid_late", 10 * TON)
    clock.advance(hours=25)
    rig.devnet.ton.pay_ton("alice", ton_address(too_late), 10 * TON, comment=too_late.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(too_late) == ("expired", None, 0)
    assert await rig.unmatched() == ["invoice_expired"]


async def test_payment_to_an_expired_deposit_address_is_recorded_and_never_reused(
        rig: Rig, clock: ManualClock) -> None:
    old = await rig.invoice("50", "USDT", ["usdt_trc20"])
    clock.advance(hours=25)
    await invoices.expire_due(rig.container.deps)
    new = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert new.tron_index is not None and old.tron_index is not None
    assert new.tron_index > old.tron_index and new.tron_address != old.tron_address
    assert old.tron_address is not None
    rig.devnet.tron.transfer("alice", old.tron_address, 50 * USDT)
    rig.devnet.produce("tron", 25)
    await rig.watchers.poll()
    assert await rig.state(old) == ("expired", None, 0)
    assert await rig.state(new) == ("pending", None, 0)
    assert await rig.unmatched() == ["invoice_expired"]


async def test_underpaid_then_topped_up_on_tron(rig: Rig) -> None:
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 20 * USDT)
    rig.devnet.produce("tron", 20)
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("pending", "underpaid", 20 * USDT)
    rig.devnet.tron.transfer("bob", invoice.tron_address, 31 * USDT)
    rig.devnet.produce("tron", 20)
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", "overpaid", 51 * USDT)
    await rig.balances()


async def test_tron_provider_faults_miss_nothing_and_double_nothing(rig: Rig) -> None:
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT)
    rig.devnet.produce("tron", 20)
    rig.devnet.faults.inject("trongrid", Fault("status", status=503), count=1)
    rig.devnet.faults.inject("trongrid", Fault("status", status=429, retry_after=0), count=1)
    rig.devnet.faults.inject("trongrid", Fault("timeout"), count=1)
    await rig.watchers.poll()
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", None, 50 * USDT)
    assert await rig.payments(invoice) == ["confirmed"]


async def test_an_outage_longer_than_the_retries_leaves_the_cursor_in_place(rig: Rig) -> None:
    from krypton.adapters.chains.provider import ProviderError

    invoice = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()  # learns our jetton wallet, pays the invoice
    second = await rig.invoice("10", "TON", ["ton"])
    rig.devnet.ton.pay_ton("alice", ton_address(second), 10 * TON, comment=second.memo)
    rig.devnet.produce("ton")
    rig.devnet.faults.inject("toncenter", Fault("status", status=500), count=20)
    with pytest.raises(ProviderError):
        await rig.watchers.poll()
    assert await rig.state(second) == ("pending", None, 0)
    rig.devnet.faults.clear()
    await rig.watchers.poll()
    assert await rig.state(second) == ("paid", None, 10 * TON)
    assert await rig.payments(second) == ["confirmed"]


async def test_a_merchant_with_its_own_ton_address_is_paid_there(rig: Rig) -> None:
    from krypton.app import merchants

    own = rig.devnet.ton.payer("carol")  # any devnet account will do as the merchant's wallet
    merchant, _ = await merchants.create_merchant(rig.container.deps, name="Own wallet",
                                                  ton_address=own.friendly(bounceable=False))
    shop = Rig(rig.container, rig.devnet, rig.watchers, merchant.id)
    invoice = await shop.invoice("10", "TON", ["ton"])
    assert invoice.ton_address == own.raw
    platform_invoice = await rig.invoice("10", "TON", ["ton"])
    # The platform invoice's memo sent to the merchant's address pays nothing.
    rig.devnet.ton.pay_ton("alice", own, 10 * TON, comment=platform_invoice.memo)
    rig.devnet.ton.pay_ton("alice", own, 10 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await shop.state(invoice) == ("paid", None, 10 * TON)
    assert await rig.state(platform_invoice) == ("pending", None, 0)
    assert await rig.unmatched() == ["no_matching_invoice"]


async def test_a_merchant_ton_address_is_validated(rig: Rig) -> None:
    from krypton.app import merchants
    from krypton.domain.errors import DomainError

    with pytest.raises(DomainError) as bad:
        await merchants.create_merchant(rig.container.deps, name="Typo", ton_address="EQ-not-an-address")
    assert bad.value.field == "address"


@pytest.mark.parametrize("seen_orphaned", [False, True])
async def test_tron_transfer_that_fails_on_the_new_fork_is_failed(rig: Rig, seen_orphaned: bool) -> None:
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT)
    rig.devnet.produce("tron", 2)
    await rig.watchers.poll()
    assert await rig.payments(invoice) == ["confirming"]
    (dropped,) = rig.devnet.tron.reorg(2)
    if seen_orphaned:
        await rig.watchers.poll()
        assert await rig.payments(invoice) == ["orphaned"]
    rig.devnet.tron.reinclude(dropped, "OUT_OF_ENERGY")
    rig.devnet.produce("tron", 25)
    await rig.watchers.poll()
    assert await rig.payments(invoice) == ["failed"]
    assert await rig.state(invoice) == ("pending", None, 0)
    await rig.balances()


async def test_tron_watch_set_grows_with_new_invoices_and_drops_finished_ones(
        rig: Rig, clock: ManualClock) -> None:
    """The watch set is read incrementally (new deposit indexes only) and an address leaves
    it a week after its invoice's monitoring window; a payment to it then is still seen
    while it is watched."""
    assert rig.watchers.chains.tron is not None
    watching = rig.watchers.tron_deposits
    first = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert set(await watching.refresh(rig.container.deps)) == {first.tron_address}
    clock.advance(days=4)
    second = await rig.invoice("50", "USDT", ["usdt_trc20"])
    await rig.invoice("5", "TON", ["ton"])  # no deposit address: never in the set
    assert set(await watching.refresh(rig.container.deps)) == {first.tron_address,
                                                               second.tron_address}
    clock.advance(days=4, hours=1)  # first: past its window + a week; second: not yet
    assert set(await watching.refresh(rig.container.deps)) == {second.tron_address}
    await invoices.expire_due(rig.container.deps)
    assert second.tron_address is not None
    rig.devnet.tron.transfer("alice", second.tron_address, 50 * USDT)
    rig.devnet.produce("tron", 25)
    await rig.watchers.poll()
    assert await rig.unmatched() == ["invoice_expired"]
    clock.advance(days=4)
    assert await watching.refresh(rig.container.deps) == {}


# --- Tron: the contract-wide event scan above 20 open deposit addresses ---------------------


async def tron_invoices(rig: Rig, count: int) -> list[Invoice]:
    return [await rig.invoice("50", "USDT", ["usdt_trc20"]) for _ in range(count)]


def pay_tron(rig: Rig, invoice: Invoice, amount: int = 50 * USDT) -> None:
    assert invoice.tron_address is not None
    rig.devnet.tron.transfer("alice", invoice.tron_address, amount)


def tron_reader(rig: Rig) -> TronReader:
    assert rig.watchers.chains.tron is not None
    return rig.watchers.chains.tron


async def events_cursor(rig: Rig) -> str | None:
    async with rig.container.deps.uow(write=False) as uow:
        return await uow.cursors.get(EVENTS_CURSOR)


async def test_tron_switches_to_the_event_scan_above_20_open_addresses_and_back(
        rig: Rig, clock: ManualClock) -> None:
    first = await tron_invoices(rig, 20)
    pay_tron(rig, first[0])
    rig.devnet.produce("tron", 20)
    await rig.watchers.poll()
    assert not tron_reader(rig).scanning  # 20 open addresses: each polled on its own
    assert await rig.state(first[0]) == ("paid", None, 50 * USDT)
    assert await events_cursor(rig) is None

    clock.advance(days=3)
    (later,) = await tron_invoices(rig, 1)
    await rig.watchers.poll()  # 21: the scan (and its first sweep) takes over
    assert tron_reader(rig).scanning
    pay_tron(rig, later)
    rig.devnet.produce("tron")
    await rig.watchers.poll()
    assert await rig.state(later) == ("confirming", None, 0)  # found by the scan alone
    cursor = await events_cursor(rig)
    assert cursor is not None and int(cursor) == rig.devnet.tron.head.timestamp
    rig.devnet.produce("tron", 19)
    await rig.watchers.poll()
    assert await rig.state(later) == ("paid", None, 50 * USDT)

    clock.advance(days=5, hours=1)  # the first 20 leave the watch set a week past their window
    (fresh,) = await tron_invoices(rig, 1)
    pay_tron(rig, fresh)
    rig.devnet.produce("tron", 20)
    await rig.watchers.poll()
    assert not tron_reader(rig).scanning  # two open addresses: each polled on its own again
    assert await rig.state(fresh) == ("paid", None, 50 * USDT)
    await rig.balances()


async def test_tron_scan_finds_an_event_trongrid_indexes_after_newer_ones(
        rig: Rig, clock: ManualClock) -> None:
    """TronGrid lists a block 100 s late, after a block 70 s newer: a scan that re-read only
    the last minute before its cursor never saw it; the overlap re-read finds it."""
    late, prompt, *_ = await tron_invoices(rig, 21)
    await rig.watchers.poll()
    rig.devnet.tron.index_lag_ms = 100_000
    pay_tron(rig, late)
    rig.devnet.produce("tron")
    rig.devnet.tron.index_lag_ms = 0
    clock.advance(seconds=70)
    pay_tron(rig, prompt)
    rig.devnet.produce("tron")
    await rig.watchers.poll()
    assert await rig.state(prompt) == ("confirming", None, 0)
    assert await rig.state(late) == ("pending", None, 0)  # not listed yet
    clock.advance(seconds=150)  # half the overlap since the last rewind: one is due
    await rig.watchers.poll()
    assert await rig.state(late) == ("confirming", None, 0)
    rig.devnet.produce("tron", 19)
    await rig.watchers.poll()
    assert await rig.state(late) == ("paid", None, 50 * USDT)
    assert await rig.payments(late) == ["confirmed"]


async def test_tron_account_sweep_finds_what_the_scan_never_lists(
        rig: Rig, clock: ManualClock) -> None:
    """An event TronGrid lists 20 minutes late, when the scan's rewinds no longer reach it,
    is found by the account sweep (every 10 minutes while scanning), and only by it."""
    missed, other, *_ = await tron_invoices(rig, 21)
    await rig.watchers.poll()  # the first scanning round sweeps at once; the next in 10 min
    rig.devnet.tron.index_lag_ms = 20 * 60_000
    pay_tron(rig, missed)
    rig.devnet.produce("tron")
    rig.devnet.tron.index_lag_ms = 0
    clock.advance(minutes=9)
    pay_tron(rig, other)
    rig.devnet.produce("tron")
    await rig.watchers.poll()
    assert await rig.state(other) == ("confirming", None, 0)
    clock.advance(minutes=2)
    await rig.watchers.poll()  # a sweep, with nothing listed yet; the next at 21 min
    clock.advance(minutes=9, seconds=30)
    await rig.watchers.poll()  # listed now, but before every scan's reach: not found
    assert await rig.state(missed) == ("pending", None, 0)
    clock.advance(seconds=30)
    await rig.watchers.poll()
    assert (await rig.state(missed))[2] == 0
    assert await rig.payments(missed) == ["confirming"]


async def test_the_scan_taking_over_does_not_poll_again_what_was_just_polled(
        rig: Rig, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Addresses polled one by one in the last round are not all polled again when the 21st
    makes the scan take over: the sweep's ten minutes count from that last round."""
    await tron_invoices(rig, 20)
    await rig.watchers.poll()  # 20: each polled on its own
    reader = tron_reader(rig)
    polled: list[str] = []
    incoming = reader.client.incoming

    async def counted(address: str, *args: Any, **kwargs: Any) -> Any:
        polled.append(address)
        return await incoming(address, *args, **kwargs)
    monkeypatch.setattr(reader.client, "incoming", counted)
    await tron_invoices(rig, 1)
    clock.advance(minutes=9)
    await rig.watchers.poll()  # 21: the scan takes over, no address is polled
    assert reader.scanning and polled == []
    clock.advance(minutes=1)
    await rig.watchers.poll()  # ten minutes since every address was polled: the sweep
    assert len(set(polled)) == 21


@pytest.mark.parametrize(("offset", "exception"), [(-1, None), (0, "paid_late"), (1, "paid_late")])
async def test_ton_lateness_is_judged_by_the_block_time_not_the_watcher(
        rig: Rig, clock: ManualClock, offset: int, exception: str | None) -> None:
    """Paid a second before the expiry, seen ten minutes later after the invoice expired:
    on time. Paid at the expiry or a second after: late."""
    invoice = await rig.invoice("10", "TON", ["ton"])
    clock.current = invoice.expires_at + timedelta(seconds=offset)
    rig.devnet.ton.pay_ton("alice", ton_address(invoice), 10 * TON, comment=invoice.memo)
    rig.devnet.produce("ton")
    clock.advance(minutes=10)  # the watcher lags behind the chain
    await invoices.expire_due(rig.container.deps)
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", exception, 10 * TON)


@pytest.mark.parametrize(("blocks_before", "exception"), [(0, None), (1, "paid_late")])
async def test_tron_lateness_is_judged_by_the_block_time(
        rig: Rig, clock: ManualClock, blocks_before: int, exception: str | None) -> None:
    """The transfer in the last block before the expiry is on time; one block later it is late."""
    invoice = await rig.invoice("50", "USDT", ["usdt_trc20"])
    assert invoice.tron_address is not None
    clock.current = invoice.expires_at - timedelta(seconds=1)
    if blocks_before:
        rig.devnet.produce("tron", blocks_before)  # the last block before the expiry, left empty
    rig.devnet.tron.transfer("alice", invoice.tron_address, 50 * USDT)
    block = rig.devnet.tron.produce_block()
    assert (block.timestamp < invoice.expires_at.timestamp() * 1000) is (exception is None)
    clock.advance(minutes=5)
    rig.devnet.produce("tron", 20)
    await invoices.expire_due(rig.container.deps)
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("paid", exception, 50 * USDT)


async def test_the_tron_scan_settings_reach_the_reader(container: Container) -> None:
    from datetime import timedelta

    from pydantic import ValidationError

    from krypton.adapters.chains.tron.reader import ScanPolicy
    from krypton.config import Settings

    settings = container.settings.model_copy(update={
        "tron_scan_lookback_seconds": 600, "tron_scan_overlap_seconds": 120, "tron_sweep_seconds": 60})
    chains = dataclasses.replace(container, settings=settings).chains()
    assert chains.tron is not None
    assert chains.tron.policy == ScanPolicy(lookback=timedelta(minutes=10),
                                            overlap=timedelta(minutes=2), sweep_every=timedelta(minutes=1))
    await chains.aclose()
    with pytest.raises(ValidationError, match="tron_scan_overlap_seconds"):
        Settings(tron_scan_overlap_seconds=0)
