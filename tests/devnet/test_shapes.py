"""Every field of the recorded real responses is present in the devnet's, with the same JSON
type (string lt, number now, string values ...). Null on either side is not compared: the
providers null many fields case by case."""

from __future__ import annotations

from typing import Any

import httpx

from krypton.devnet import Devnet
from tests.adapters.chains.ton import recorded as ton_recorded
from tests.adapters.chains.tron import recorded as tron_recorded
from tests.devnet.support import DEPOSIT, OURS, TONCENTER, TRONGRID, pay, produce


def mismatches(recorded: Any, ours: Any, path: str = "$", skip: frozenset[str] = frozenset()) -> list[str]:
    if path in skip or recorded is None or ours is None:
        return []
    if isinstance(recorded, dict):
        if not isinstance(ours, dict):
            return [f"{path}: object expected, got {type(ours).__name__}"]
        found: list[str] = []
        for key, value in recorded.items():
            if f"{path}.{key}" in skip:
                continue
            if key not in ours:
                found.append(f"{path}.{key}: missing")
            else:
                found += mismatches(value, ours[key], f"{path}.{key}", skip)
        return found
    if isinstance(recorded, list):
        if not isinstance(ours, list):
            return [f"{path}: array expected, got {type(ours).__name__}"]
        return mismatches(recorded[0], ours[0], f"{path}[0]", skip) if recorded and ours else []
    if type(recorded) is not type(ours):
        return [f"{path}: {type(recorded).__name__} expected, got {type(ours).__name__} ({ours!r})"]
    return []


async def test_incoming_ton_transaction_matches_the_recorded_one(client: httpx.AsyncClient,
                                                                 devnet: Devnet) -> None:
    recorded = ton_recorded.load("toncenter-v3-transactions-comment.json")["transactions"][1]
    devnet.ton.pay_ton("alice", OURS, 1_000_000_000, "1985597651", undeliverable=True)  # credited, aborted
    await produce(client, "ton")
    body = (await client.get(f"{TONCENTER}/transactions", params={"account": OURS.raw})).json()
    assert mismatches(recorded, body["transactions"][0]) == []
    book = ton_recorded.load("toncenter-v3-transactions-comment.json")["address_book"]
    assert mismatches(next(iter(book.values())), next(iter(body["address_book"].values()))) == []


async def test_jetton_notification_and_external_order_match_the_recorded_ones(client: httpx.AsyncClient,
                                                                              devnet: Devnet) -> None:
    notification = ton_recorded.load("toncenter-v3-transactions-comment.json")["transactions"][0]
    outgoing = ton_recorded.load("toncenter-v3-transactions-jetton-transfer-outgoing-testnet.json")
    await pay(client, asset="usdt_ton", to=OURS.raw, amount=111_000_000_000, comment="1985597651")
    await produce(client, "ton")
    ours = (await client.get(f"{TONCENTER}/transactions", params={"account": OURS.raw})).json()
    payer = devnet.ton.payer("alice").raw
    theirs = (await client.get(f"{TONCENTER}/transactions", params={"account": payer, "sort": "asc"})).json()
    # compute/action phases differ by case (skipped vs run); the recorded ones hold gas details.
    phases = frozenset({"$.description"})
    assert mismatches(notification, ours["transactions"][0], skip=phases) == []
    assert mismatches(outgoing["transactions"][0], theirs["transactions"][0], skip=phases) == []


async def test_masterchain_info_matches_the_recorded_one(client: httpx.AsyncClient) -> None:
    recorded = ton_recorded.load("toncenter-v3-masterchainInfo-testnet.json")
    await produce(client, "ton", 2)
    assert mismatches(recorded, (await client.get(f"{TONCENTER}/masterchainInfo")).json()) == []


async def test_trongrid_rows_match_the_recorded_ones(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=1_399_000_000)
    await produce(client, "tron")
    events = tron_recorded.load("trongrid-contract-events-usdt-transfer.json")
    ours = (await client.get(f"{TRONGRID}/v1/contracts/TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t/events",
                             params={"event_name": "Transfer", "limit": 2})).json()
    assert mismatches(events, ours) == []  # data rows, success and meta with fingerprint and links
    listed = tron_recorded.load("trongrid-trc20-transactions.json")
    ours = (await client.get(f"{TRONGRID}/v1/accounts/{DEPOSIT}/transactions/trc20")).json()
    assert mismatches(listed, ours) == []


async def test_node_answers_match_the_recorded_ones(client: httpx.AsyncClient) -> None:
    sent = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=7)
    await produce(client, "tron")
    info = tron_recorded.load("node-wallet-gettransactioninfobyid-nile-contract-call.jsonc")
    answer = await client.post(f"{TRONGRID}/wallet/gettransactioninfobyid", json={"value": sent["tx_id"]})
    ours = answer.json()
    # A TRC-20 transfer makes no internal transactions; java-tron then omits the field.
    assert mismatches(info, ours, skip=frozenset({"$.internal_transactions"})) == []
    block = tron_recorded.load("node-wallet-getnowblock-nile.jsonc")
    response = await client.get(f"{TRONGRID}/wallet/gettransactioninfobyblocknum",
                                params={"num": str(ours["blockNumber"])})
    assert mismatches(tron_recorded.load("node-wallet-gettransactioninfobyblocknum-nile.json"),
                      response.json()) == []
    assert mismatches(block, (await client.post(f"{TRONGRID}/wallet/getnowblock")).json()) == []
