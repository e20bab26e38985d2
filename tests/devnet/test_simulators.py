"""The simulators without HTTP: determinism, balances, blocks, reorg rules, the block timer."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from krypton.adapters.chains.tron.address import parse_address
from krypton.devnet import Devnet, create_devnet_app, run_block_timer
from krypton.devnet.common import InsufficientFunds, InvalidInput, ReorgRefused, UnknownPayer
from krypton.devnet.faults import Fault, Faults
from krypton.devnet.ton import COUNTERFEIT_MASTER, USDT_MASTER, payer_address
from krypton.devnet.tron import BLOCK_MS, SOLIDIFY_DEPTH
from krypton.domain.assets import USDT_TON
from tests.devnet.support import DEPOSIT, OURS
from tests.support.clock import ManualClock


def _script(devnet: Devnet) -> None:
    devnet.ton.pay_ton("alice", OURS, 10, "a")
    devnet.ton.pay_jetton("bob", OURS, 20, "b")
    devnet.ton.produce_block()
    devnet.tron.transfer("carol", DEPOSIT, 30)
    devnet.tron.produce_block()


async def _dump(devnet: Devnet) -> str:
    app = create_devnet_app(devnet)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as client:
        ton = await client.get("/toncenter/api/v3/transactions", params={"account": OURS.raw})
        tron = await client.get(f"/trongrid/v1/accounts/{DEPOSIT}/transactions/trc20")
        head = await client.get("/trongrid/wallet/getnowblock")
    return json.dumps([ton.json(), tron.json(), head.json()], sort_keys=True)


async def test_same_seed_and_clock_give_byte_identical_chains() -> None:
    first, second, other = (Devnet(ManualClock().now, seed=s) for s in ("one", "one", "two"))
    for devnet in (first, second, other):
        _script(devnet)
    assert await _dump(first) == await _dump(second)
    assert await _dump(first) != await _dump(other)
    # Addresses depend on names only, so a CLI user keeps paying from the same "alice".
    assert first.ton.payers == other.ton.payers and first.tron.payers == other.tron.payers
    assert first.ton.jetton_wallet_of(OURS) == other.ton.jetton_wallet_of(OURS)


def test_devnet_addresses_are_valid_and_usdt_is_the_real_contract(devnet: Devnet) -> None:
    assert USDT_MASTER.raw == USDT_TON.contract
    assert devnet.tron.payer("alice") == parse_address(devnet.tron.payer("alice"))
    assert devnet.ton.payer("alice") == payer_address("alice")
    wallets = {devnet.ton.jetton_wallet_of(OURS, m) for m in (USDT_MASTER, COUNTERFEIT_MASTER)}
    assert len(wallets) == 2
    with pytest.raises(InvalidInput):
        devnet.ton.jetton_wallet_of(OURS, OURS)


def test_ton_balances_move_and_a_refused_payment_changes_nothing(devnet: Devnet) -> None:
    ton = devnet.ton
    alice = ton.payer("alice")
    start = ton.balance(alice)
    ton.pay_ton("alice", OURS, 1_000)
    ton.pay_jetton("alice", OURS, 5, forward_ton_amount=3)
    assert ton.balance(OURS) == 1_003 and ton.balance(alice) == start - 1_003
    assert ton.jetton_balance(OURS) == 5
    pending = len(ton.pending)
    with pytest.raises(InsufficientFunds):
        ton.pay_ton("alice", OURS, start)
    with pytest.raises(UnknownPayer):
        ton.pay_ton("mallory", OURS, 1)
    with pytest.raises(InvalidInput):
        ton.pay_jetton("alice", OURS, 1, "\ud800")
    assert len(ton.pending) == pending and ton.balance(OURS) == 1_003
    block = ton.produce_block()
    assert block.tx_count == pending and ton.pending == ()
    assert all(tx.mc_block_seqno == block.seqno for tx in ton.transactions(OURS))


def test_tron_blocks_are_three_seconds_apart_in_simulated_time(clock: ManualClock, devnet: Devnet) -> None:
    tron = devnet.tron
    first = tron.produce_block()
    second = tron.produce_block()  # the clock has not moved: still 3 s later
    assert second.timestamp - first.timestamp == BLOCK_MS
    clock.advance(seconds=60)
    assert tron.produce_block().timestamp == int(clock.now().timestamp() * 1000)
    assert tron.head.number - tron.solid_head.number == SOLIDIFY_DEPTH


def test_tron_balances_follow_inclusion_and_reorgs(devnet: Devnet) -> None:
    tron = devnet.tron
    alice = tron.payer("alice")
    start = tron.balance(alice)
    tron.transfer("alice", DEPOSIT, start - 10)
    with pytest.raises(InsufficientFunds):
        tron.transfer("alice", DEPOSIT, 11)  # what is queued counts against what can be spent
    tron.transfer("alice", DEPOSIT, 11, result="REVERT")  # a failing call may always be sent
    assert tron.balance(DEPOSIT) == 0  # nothing moves before a block includes it
    tron.produce_block()
    assert (tron.balance(DEPOSIT), tron.balance(alice)) == (start - 10, 10)
    tron.reorg(1)
    assert (tron.balance(DEPOSIT), tron.balance(alice)) == (0, start)
    with pytest.raises(ReorgRefused):
        tron.reorg(SOLIDIFY_DEPTH + 1)
    with pytest.raises(InvalidInput):
        tron.transfer("alice", DEPOSIT, 1, contract=DEPOSIT)


def test_faults_refuse_nonsense() -> None:
    faults = Faults()
    with pytest.raises(InvalidInput):
        faults.inject("toncenter", Fault("status", status=302))
    with pytest.raises(InvalidInput):
        faults.inject("toncenter", Fault("latency", latency_ms=0))
    with pytest.raises(InvalidInput):
        faults.clear("nobody")
    assert faults.take("toncenter") is None


async def test_block_timer_produces_on_both_chains_at_their_intervals(devnet: Devnet) -> None:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)  # let the other loop run; no time passes

    ton_start, tron_start = devnet.ton.head.seqno, devnet.tron.head.number
    task = asyncio.create_task(run_block_timer(devnet, 1.0, 3.0, sleep=fake_sleep))
    for _ in range(20):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert set(waits) == {1.0, 3.0}
    # One block per finished wait; the wait under way when cancelled produced nothing.
    ton_blocks, tron_blocks = devnet.ton.head.seqno - ton_start, devnet.tron.head.number - tron_start
    assert waits.count(1.0) - 1 <= ton_blocks <= waits.count(1.0) and ton_blocks > 0
    assert waits.count(3.0) - 1 <= tron_blocks <= waits.count(3.0) and tron_blocks > 0


async def test_block_timer_refuses_a_zero_interval(devnet: Devnet) -> None:
    with pytest.raises(ValueError, match="ton_interval"):
        await run_block_timer(devnet, 0, 3)
