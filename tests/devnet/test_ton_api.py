"""The devnet's TON Center v3 subset, read through the same parsers as the recorded fixtures."""

from __future__ import annotations

import base64

import httpx
import pytest

from krypton.adapters.chains.ton.cells import Reader, cell_from_boc
from krypton.adapters.chains.ton.toncenter import (
    Ignored,
    cursor_after,
    newer_than,
    parse_transactions,
    parse_wallet_data,
)
from krypton.devnet import Devnet, create_devnet_app
from krypton.devnet.ton import COUNTERFEIT_MASTER, USDT_MASTER
from krypton.domain.assets import TON, USDT_TON
from tests.devnet.support import (
    OURS,
    TONCENTER,
    USDT_TON_MASTER,
    our_jetton_wallet,
    owner_slice,
    pay,
    produce,
    ton_head,
    ton_transfers,
)


async def test_ton_payment_with_comment_is_final_in_the_next_masterchain_block(
        client: httpx.AsyncClient, devnet: Devnet) -> None:
    sent = await pay(client, asset="ton", to=OURS.friendly(bounceable=False), amount=1_500_000_000,
                     comment="INV-7K2")
    assert await ton_transfers(client, OURS) == []  # pending: the indexer has not seen it yet

    head = (await produce(client, "ton"))["head"]
    [transfer] = await ton_transfers(client, OURS)
    assert transfer.kind == "ton" and transfer.credited
    assert (transfer.hash, transfer.lt, transfer.amount, transfer.comment) == (
        sent["tx_hash"], int(sent["lt"]), 1_500_000_000, "INV-7K2")
    assert transfer.asset == TON.code
    assert transfer.source == devnet.ton.payer("alice")
    assert transfer.mc_block_seqno == head == await ton_head(client)
    assert devnet.ton.balance(OURS) == 1_500_000_000


@pytest.mark.parametrize("comment", ["x" * 600, "платёж №42 — " * 30, "🙂" * 200])
async def test_long_comment_spans_several_cells_and_reads_back(client: httpx.AsyncClient,
                                                                comment: str) -> None:
    await pay(client, asset="ton", to=OURS.raw, amount=1, comment=comment)
    await produce(client, "ton")
    response = await client.get(f"{TONCENTER}/transactions", params={"account": OURS.raw})
    [row] = response.json()["transactions"]
    assert cell_from_boc(row["in_msg"]["message_content"]["body"]).refs  # a snake, not one cell
    [transfer] = parse_transactions(response.json(), our_address=OURS, jetton_wallets={})
    assert transfer.comment == comment


async def test_jetton_payment_through_our_own_jetton_wallet_is_credited(
        client: httpx.AsyncClient, devnet: Devnet) -> None:
    wallet = await our_jetton_wallet(client, OURS, USDT_TON_MASTER)
    assert wallet == devnet.ton.jetton_wallet_of(OURS)
    await pay(client, asset="usdt_ton", to=OURS.raw, amount=25_000_000, comment="INV-J1")
    await produce(client, "ton")

    [transfer] = await ton_transfers(client, OURS, {wallet: USDT_TON.code})
    assert transfer.kind == "jetton" and transfer.credited
    assert (transfer.asset, transfer.amount, transfer.comment) == (USDT_TON.code, 25_000_000, "INV-J1")
    assert transfer.source == wallet
    assert transfer.jetton_sender == devnet.ton.payer("alice")
    assert transfer.value == 1  # forward_ton_amount
    assert transfer.observed(confirmations=1).sender == devnet.ton.payer("alice").raw
    assert devnet.ton.jetton_balance(OURS) == 25_000_000


async def test_counterfeit_jetton_notification_is_never_credited(client: httpx.AsyncClient) -> None:
    wallet = await our_jetton_wallet(client, OURS, USDT_TON_MASTER)
    await pay(client, asset="usdt_ton", to=OURS.raw, amount=25_000_000, comment="INV-J1", counterfeit=True)
    await produce(client, "ton")

    [transfer] = await ton_transfers(client, OURS, {wallet: USDT_TON.code})
    assert transfer.kind == "foreign_jetton" and not transfer.credited
    assert transfer.source == await our_jetton_wallet(client, OURS, COUNTERFEIT_MASTER.raw)
    assert (transfer.amount, transfer.comment) == (25_000_000, "INV-J1")  # looks right, is not


async def test_a_jetton_wallet_tells_its_owner_and_master(client: httpx.AsyncClient, devnet: Devnet) -> None:
    """get_wallet_data: how the reader tells our wallet of another jetton from a forgery."""
    await pay(client, asset="usdt_ton", to=OURS.raw, amount=5_000_000, counterfeit=True)
    wallet = devnet.ton.jetton_wallet_of(OURS, COUNTERFEIT_MASTER)
    response = await client.post(f"{TONCENTER}/runGetMethod", json={
        "address": wallet.raw, "method": "get_wallet_data", "stack": []})
    assert response.status_code == 200, response.text
    assert parse_wallet_data(response.json()) == (OURS, COUNTERFEIT_MASTER)
    assert response.json()["stack"][0] == {"type": "num", "value": hex(5_000_000)}
    other = await client.post(f"{TONCENTER}/runGetMethod", json={
        "address": wallet.raw, "method": "get_jetton_data", "stack": []})
    assert other.json()["exit_code"] == 11
    payer = await client.post(f"{TONCENTER}/runGetMethod", json={
        "address": devnet.ton.payer("alice").raw, "method": "get_wallet_data", "stack": []})
    assert payer.status_code == 409  # a wallet runs no jetton wallet code


async def test_forward_ton_amount_zero_sends_no_notification(client: httpx.AsyncClient,
                                                              devnet: Devnet) -> None:
    wallet = await our_jetton_wallet(client, OURS, USDT_TON_MASTER)
    sent = await pay(client, asset="usdt_ton", to=OURS.raw, amount=3_000_000, comment="INV-0",
                     forward_ton_amount=0)
    await produce(client, "ton")

    assert sent["notified"] is False
    assert await ton_transfers(client, OURS, {wallet: USDT_TON.code}) == []  # nothing reaches us
    # The jettons did arrive, in our jetton wallet: only the notification (and comment) is missing.
    response = await client.get(f"{TONCENTER}/transactions", params={"account": wallet.raw})
    [landed] = response.json()["transactions"]
    assert landed["in_msg"]["opcode"] == "0x178d4519"  # internal_transfer from the payer's jetton wallet
    assert [m["opcode"] for m in landed["out_msgs"]] == ["0xd53276db"]  # excesses only, no notification
    assert devnet.ton.jetton_balance(OURS) == 3_000_000


async def test_bounced_payment_is_never_credited(client: httpx.AsyncClient, devnet: Devnet) -> None:
    payer = devnet.ton.payer("alice")
    before = devnet.ton.balance(payer)
    await pay(client, asset="ton", to=OURS.raw, amount=2_000_000_000, comment="INV-B", bounce=True)
    await produce(client, "ton")

    [refused] = await ton_transfers(client, OURS)
    assert refused.kind == "ignored" and not refused.credited
    assert "sent the value back" in (refused.reason or "")
    assert devnet.ton.balance(OURS) == 0 and devnet.ton.balance(payer) == before

    response = await client.get(f"{TONCENTER}/transactions", params={"account": payer.raw, "sort": "asc"})
    outgoing, returned = parse_transactions(response.json(), our_address=payer, jetton_wallets={})
    assert outgoing.kind == "ignored"  # the payer's own external order
    assert (returned.kind, returned.ignored, returned.value) == ("ignored", Ignored.BOUNCE, 2_000_000_000)
    body = cell_from_boc(response.json()["transactions"][1]["in_msg"]["message_content"]["body"])
    assert Reader(body).uint(32) == 0xFFFFFFFF


async def test_non_bounceable_message_to_a_failing_account_is_credited_and_aborted(
        client: httpx.AsyncClient, devnet: Devnet) -> None:
    # As in the recorded fixture: a non-bounceable transfer to an undeployed account.
    devnet.ton.pay_ton("bob", OURS, 700, "INV-U", bounceable=False, undeliverable=True)
    devnet.ton.produce_block()
    response = await client.get(f"{TONCENTER}/transactions", params={"account": OURS.raw})
    assert response.json()["transactions"][0]["description"]["aborted"] is True
    [transfer] = parse_transactions(response.json(), our_address=OURS, jetton_wallets={})
    assert transfer.kind == "ton" and transfer.amount == 700 and transfer.comment == "INV-U"


async def test_pending_transactions_show_without_mc_block_seqno_when_asked(devnet: Devnet) -> None:
    app = create_devnet_app(devnet, ton_show_pending=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://devnet") as client:
        await pay(client, asset="ton", to=OURS.raw, amount=5, comment="p")
        [pending] = await ton_transfers(client, OURS)
        assert pending.mc_block_seqno is None
        await produce(client, "ton")
        [final] = await ton_transfers(client, OURS)
        assert final.cursor == pending.cursor and final.mc_block_seqno == devnet.ton.head.seqno


async def test_lt_increases_strictly_and_hashes_are_unique_sha256_in_base64(
        client: httpx.AsyncClient, devnet: Devnet) -> None:
    for i in range(3):
        await pay(client, asset="ton", to=OURS.raw, amount=10 + i, comment=f"n{i}")
        await pay(client, asset="usdt_ton", to=OURS.raw, amount=10 + i, comment=f"j{i}")
    await produce(client, "ton")
    hashes: list[str] = []
    for account in (OURS, devnet.ton.payer("alice"), devnet.ton.jetton_wallet_of(OURS)):
        transfers = await ton_transfers(client, account, limit=100, sort="asc")
        lts = [t.lt for t in transfers]
        assert lts == sorted(set(lts)) and transfers
        hashes += [t.hash for t in transfers]
    assert len(hashes) == len(set(hashes))
    assert all(len(base64.b64decode(h, validate=True)) == 32 for h in hashes)


async def test_transactions_pages_by_limit_offset_sort_and_lt_range(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await pay(client, asset="ton", to=OURS.raw, amount=100 + i, comment=f"c{i}")
    await produce(client, "ton")
    everything = await ton_transfers(client, OURS, limit=100)
    assert [t.amount for t in everything] == [100, 101, 102, 103, 104]

    newest = await client.get(f"{TONCENTER}/transactions", params={"account": OURS.raw, "limit": 2})
    assert [int(t["lt"]) for t in newest.json()["transactions"]] == [everything[4].lt, everything[3].lt]
    second = await ton_transfers(client, OURS, limit=2, offset=2, sort="asc")
    assert second == everything[2:4]
    ranged = await ton_transfers(client, OURS, start_lt=everything[1].lt, end_lt=everything[3].lt)
    assert ranged == everything[1:4]
    # A watcher resumes from its cursor: asking from start_lt repeats the cursor, newer_than drops it.
    cursor = cursor_after(everything[:2])
    resumed = await ton_transfers(client, OURS, start_lt=everything[1].lt, sort="asc")
    assert newer_than(resumed, cursor) == everything[2:]


@pytest.mark.parametrize("params", [
    {}, {"account": "nonsense"}, {"account": OURS.raw, "limit": "0"}, {"account": OURS.raw, "limit": "1001"},
    {"account": OURS.raw, "offset": "-1"}, {"account": OURS.raw, "sort": "sideways"},
    {"account": OURS.raw, "start_lt": "abc"},
])
async def test_bad_transactions_parameters_get_422(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await client.get(f"{TONCENTER}/transactions", params=params)
    assert response.status_code == 422
    assert isinstance(response.json()["error"], str)


async def test_masterchain_info_reports_first_and_last(client: httpx.AsyncClient) -> None:
    await produce(client, "ton", 3)
    body = (await client.get(f"{TONCENTER}/masterchainInfo")).json()
    assert body["first"]["seqno"] == 1 and body["last"]["seqno"] == 4
    assert await ton_head(client) == 4


async def test_jetton_wallets_lists_our_wallet_once_it_exists(client: httpx.AsyncClient,
                                                              devnet: Devnet) -> None:
    # Like the real indexer: a wallet that never received jettons is not deployed, not listed;
    # get_wallet_address (runGetMethod) is the way to learn it up front.
    params = {"owner_address": OURS.friendly(bounceable=False), "jetton_address": USDT_TON_MASTER}
    empty = await client.get(f"{TONCENTER}/jetton/wallets", params=params)
    assert empty.json()["jetton_wallets"] == []
    await pay(client, asset="usdt_ton", to=OURS.raw, amount=9, comment=None)
    await pay(client, asset="usdt_ton", to=OURS.raw, amount=4, counterfeit=True)
    listed = (await client.get(f"{TONCENTER}/jetton/wallets", params=params)).json()
    [row] = listed["jetton_wallets"]
    wallet = devnet.ton.jetton_wallet_of(OURS)
    assert row["address"] == f"0:{wallet.hash.hex().upper()}"
    assert (row["balance"], row["owner"], row["jetton"]) == ("9", f"0:{OURS.hash.hex().upper()}",
                                                            f"0:{USDT_MASTER.hash.hex().upper()}")
    assert listed["address_book"][row["address"]]["user_friendly"] == wallet.friendly(bounceable=True)
    both = (await client.get(f"{TONCENTER}/jetton/wallets", params={"owner_address": OURS.raw})).json()
    assert len(both["jetton_wallets"]) == 2


async def test_run_get_method_answers_like_tvm(client: httpx.AsyncClient, devnet: Devnet) -> None:
    legacy = await client.post(f"{TONCENTER}/runGetMethod", json={
        "address": USDT_TON_MASTER, "method": "get_wallet_address",
        "stack": [["tvm.Slice", owner_slice(OURS)]]})
    wallet = Reader(cell_from_boc(legacy.json()["stack"][0]["value"])).address()
    assert wallet == devnet.ton.jetton_wallet_of(OURS)
    unknown = await client.post(f"{TONCENTER}/runGetMethod", json={
        "address": USDT_TON_MASTER, "method": "get_jetton_data", "stack": []})
    assert unknown.status_code == 200 and unknown.json()["exit_code"] == 11


@pytest.mark.parametrize("body", [
    "not json", [], {"method": "get_wallet_address", "stack": []},
    {"address": USDT_TON_MASTER, "method": "get_wallet_address", "stack": []},
    {"address": USDT_TON_MASTER, "method": "get_wallet_address", "stack": [{"type": "num", "value": "0x1"}]},
    {"address": USDT_TON_MASTER, "method": "get_wallet_address", "stack": [{"type": "slice", "value": "!!"}]},
])
async def test_bad_run_get_method_requests_get_422(client: httpx.AsyncClient, body: object) -> None:
    content = body if isinstance(body, str) else None
    response = await client.post(f"{TONCENTER}/runGetMethod", content=content,
                                 json=None if content is not None else body)
    assert response.status_code == 422
    assert isinstance(response.json()["error"], str)

