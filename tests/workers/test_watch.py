"""The chain loop (workers/watch.py) and the TON and Tron readers, with the same client and
parser code as mainnet, against the devnet."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.reader import cursor_name
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


async def test_counterfeit_jetton_is_recorded_never_credited(rig: Rig) -> None:
    invoice = await rig.invoice("25", "USDT", ["usdt_ton"])
    rig.devnet.ton.pay_jetton("alice", ton_address(invoice), 25 * USDT, comment=invoice.memo,
                              counterfeit=True)
    rig.devnet.produce("ton")
    await rig.watchers.poll()
    assert await rig.state(invoice) == ("pending", None, 0)
    assert await rig.unmatched() == ["counterfeit_token"]


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
