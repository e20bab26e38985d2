"""Wallet contracts on the devnet (devnet/ton_wallet.py): signed externals are verified for
real, then their messages applied; sent through the TON Center v3 subset (POST /message)."""

from __future__ import annotations

import httpx
import pytest
from pytoniq_core.boc.builder import Builder

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import cell_to_boc
from krypton.adapters.chains.ton.comments import build_comment
from krypton.adapters.signer.wallet import HotWallet, OutMessage, WalletVersion, external_message
from krypton.devnet import Devnet
from krypton.devnet.ton import payer_address
from tests.devnet.support import TONCENTER, produce
from tests.support.clock import ManualClock

TON = 10**9
ALICE = payer_address("alice")
NOWHERE = TonAddress(0, b"\x42" * 32)  # never deployed


@pytest.fixture(params=list(WalletVersion))
def wallet(request: pytest.FixtureRequest, devnet: Devnet) -> HotWallet:
    hot = HotWallet(bytes(range(32)), request.param, network="devnet")
    devnet.ton.deploy_wallet_contract(hot.state_init(), 100 * TON)
    return hot


def until(clock: ManualClock, seconds: int = 60) -> int:
    return int(clock.now().timestamp()) + seconds


async def send(client: httpx.AsyncClient, boc: str) -> httpx.Response:
    return await client.post(f"{TONCENTER}/message", json={"boc": boc})


def pay(to: TonAddress, amount: int, *, bounce: bool = False) -> OutMessage:
    return OutMessage(to, amount, build_comment("hello"), bounce=bounce)


async def test_a_signed_batch_moves_the_money_and_is_found_by_its_hash(
        client: httpx.AsyncClient, devnet: Devnet, wallet: HotWallet, clock: ManualClock) -> None:
    before = devnet.ton.balance(ALICE)
    signed = wallet.sign(0, until(clock), [pay(ALICE, TON), pay(ALICE, 2 * TON), pay(NOWHERE, 3 * TON)])
    response = await send(client, signed.boc)
    assert response.status_code == 200 and response.json()["message_hash"] == signed.hash
    await produce(client, "ton")

    assert devnet.ton.balance(ALICE) == before + 3 * TON
    assert devnet.ton.balance(NOWHERE) == 3 * TON  # non-bounceable: credited to an undeployed account
    assert devnet.ton.balance(wallet.address) == 94 * TON
    found = (await client.get(f"{TONCENTER}/transactionsByMessage", params={"msg_hash": signed.hash})).json()
    [tx] = found["transactions"]
    assert [m["value"] for m in tx["out_msgs"]] == [str(TON), str(2 * TON), str(3 * TON)]
    seqno = (await client.post(f"{TONCENTER}/runGetMethod", json={
        "address": wallet.address.raw, "method": "seqno", "stack": []})).json()["stack"][0]["value"]
    assert seqno == "0x1"


async def test_a_replayed_external_is_refused(client: httpx.AsyncClient, devnet: Devnet, wallet: HotWallet,
                                              clock: ManualClock) -> None:
    signed = wallet.sign(0, until(clock), [pay(ALICE, TON)])
    assert (await send(client, signed.boc)).status_code == 200
    again = await send(client, signed.boc)
    assert again.status_code == 422 and again.json()["exit_code"] in (33, 133)
    assert "seqno" in again.json()["error"]
    assert devnet.ton.balance(wallet.address) == 99 * TON  # sent once


async def test_a_bad_signature_is_refused_and_changes_nothing(
        client: httpx.AsyncClient, devnet: Devnet, wallet: HotWallet, clock: ManualClock) -> None:
    impostor = HotWallet(bytes(range(1, 33)), wallet.version, network="devnet")
    body = impostor.body(0, until(clock), [pay(ALICE, TON)])
    forged = cell_to_boc(external_message(wallet.address, body))
    response = await send(client, forged)
    assert response.status_code == 422 and response.json()["exit_code"] in (35, 135)
    assert devnet.ton.wallet(wallet.address).seqno == 0  # type: ignore[union-attr]
    assert devnet.ton.balance(wallet.address) == 100 * TON


async def test_an_expired_external_is_refused(client: httpx.AsyncClient, wallet: HotWallet,
                                              clock: ManualClock) -> None:
    signed = wallet.sign(0, until(clock, 30), [pay(ALICE, TON)])
    clock.advance(seconds=30)
    response = await send(client, signed.boc)
    assert response.status_code == 422 and response.json()["exit_code"] in (36, 136)


async def test_not_enough_balance_skips_that_message_only(
        client: httpx.AsyncClient, devnet: Devnet, wallet: HotWallet, clock: ManualClock) -> None:
    """Mode 3 (+2 ignore errors): the message the balance cannot cover is skipped, the seqno spent."""
    signed = wallet.sign(0, until(clock), [pay(ALICE, 150 * TON), pay(ALICE, TON)])
    assert (await send(client, signed.boc)).status_code == 200
    await produce(client, "ton")
    [tx] = (await client.get(f"{TONCENTER}/transactionsByMessage", params={"msg_hash": signed.hash})
            ).json()["transactions"]
    assert [m["value"] for m in tx["out_msgs"]] == [str(TON)]
    assert devnet.ton.wallet(wallet.address).seqno == 1  # type: ignore[union-attr]


async def test_without_ignore_errors_the_whole_action_phase_fails(
        client: httpx.AsyncClient, devnet: Devnet, clock: ManualClock) -> None:
    hot = HotWallet(bytes(range(32)), WalletVersion.V4R2, network="devnet")  # v5r1 requires +2
    devnet.ton.deploy_wallet_contract(hot.state_init(), 10 * TON)
    empty = Builder().end_cell()
    messages = [OutMessage(ALICE, TON, empty, mode=1), OutMessage(ALICE, 50 * TON, empty, mode=1)]
    signed = hot.sign(0, until(clock), messages)
    assert (await send(client, signed.boc)).status_code == 200
    await produce(client, "ton")
    [tx] = (await client.get(f"{TONCENTER}/transactionsByMessage", params={"msg_hash": signed.hash})
            ).json()["transactions"]
    assert tx["out_msgs"] == [] and tx["description"]["action"]["result_code"] == 37
    assert devnet.ton.balance(hot.address) == 10 * TON


async def test_a_bounceable_message_to_an_undeployed_account_bounces_back(
        client: httpx.AsyncClient, devnet: Devnet, wallet: HotWallet, clock: ManualClock) -> None:
    signed = wallet.sign(0, until(clock), [pay(NOWHERE, 5 * TON, bounce=True)])
    assert (await send(client, signed.boc)).status_code == 200
    assert devnet.ton.balance(NOWHERE) == 0
    assert devnet.ton.balance(wallet.address) == 100 * TON  # the bounce brought it back


async def test_a_funded_address_is_deployed_by_its_first_external(
        client: httpx.AsyncClient, devnet: Devnet, clock: ManualClock) -> None:
    hot = HotWallet(bytes(range(5, 37)), WalletVersion.V5R1, network="devnet")
    devnet.ton.fund(hot.address, 10 * TON)
    without_init = hot.sign(0, until(clock), [pay(ALICE, TON)])
    assert (await send(client, without_init.boc)).status_code == 422  # no contract there yet
    deploy = hot.sign(0, until(clock), [pay(ALICE, TON)], deploy=True)
    assert (await send(client, deploy.boc)).status_code == 200
    assert devnet.ton.balance(hot.address) == 9 * TON and devnet.ton.wallet(hot.address) is not None
