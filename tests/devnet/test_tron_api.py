"""The devnet's TronGrid / java-tron subset, read through the same parsers as the recorded fixtures."""

from __future__ import annotations

import httpx
import pytest

from krypton.adapters.chains.tron import trongrid
from krypton.devnet import Devnet
from krypton.devnet.tron import COUNTERFEIT_CONTRACT, SOLIDIFY_DEPTH, USDT_CONTRACT
from krypton.domain.finality import confirmations, is_solidified
from tests.devnet.support import (
    DEPOSIT,
    OTHER_DEPOSIT,
    TRONGRID,
    incoming_trc20,
    pay,
    produce,
    tron_head,
    tron_info,
    usdt_events,
)
from tests.support.clock import ManualClock


async def test_transfer_is_visible_once_a_block_includes_it(client: httpx.AsyncClient,
                                                             devnet: Devnet) -> None:
    sent = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=12_500_000)
    assert await tron_info(client, sent["tx_id"]) is None  # not in a block yet: "ask again"
    assert (await usdt_events(client)).transfers == ()

    head = (await produce(client, "tron"))["head"]
    [event] = (await usdt_events(client)).transfers
    assert (event.tx_id, event.to, event.amount, event.block) == (sent["tx_id"], DEPOSIT, 12_500_000, head)
    assert event.from_ == devnet.tron.payer("alice") and event.contract == USDT_CONTRACT
    assert not event.counterfeit
    [listed] = (await incoming_trc20(client)).transfers
    assert (listed.tx_id, listed.amount) == (event.tx_id, 12_500_000)
    assert listed.block_timestamp == event.block_timestamp
    info = await tron_info(client, sent["tx_id"])
    assert info is not None and info.succeeded and info.block_number == head
    assert info.credits == (event,)


async def test_confirmations_grow_and_solidification_comes_19_blocks_later(client: httpx.AsyncClient) -> None:
    sent = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=1)
    await produce(client, "tron")
    info = await tron_info(client, sent["tx_id"])
    assert info is not None and info.block_number is not None
    block = info.block_number
    for built_on_top in range(SOLIDIFY_DEPTH + 2):
        head, solid = await tron_head(client), await tron_head(client, solid=True)
        assert head - solid == SOLIDIFY_DEPTH
        assert confirmations(head, block) == built_on_top + 1
        solidified = is_solidified(solid, block)
        assert solidified == (built_on_top >= SOLIDIFY_DEPTH)
        # The solidity node answers exactly when finality.is_solidified says so.
        assert (await tron_info(client, sent["tx_id"], solid=True) is not None) == solidified
        only_confirmed = await usdt_events(client, only_confirmed="true")
        assert len(only_confirmed.transfers) == int(solidified)
        await produce(client, "tron")


async def test_reorg_drops_an_unsolidified_transfer(client: httpx.AsyncClient, devnet: Devnet) -> None:
    payer = devnet.tron.payer("alice")
    before = devnet.tron.balance(payer)
    sent = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=40_000_000)
    start = (await produce(client, "tron", 3))["head"]
    assert devnet.tron.balance(DEPOSIT) == 40_000_000

    response = await client.post("/control/reorg", json={"n": 3})
    assert response.status_code == 200, response.text
    assert response.json()["dropped_transactions"] == [sent["tx_id"]]
    assert response.json()["head"] == start - 3
    assert (await usdt_events(client)).transfers == ()
    assert (await incoming_trc20(client)).transfers == ()
    assert await tron_info(client, sent["tx_id"]) is None
    assert devnet.tron.balance(DEPOSIT) == 0 and devnet.tron.balance(payer) == before
    # Numbers continue from the new head, with new blocks.
    assert (await produce(client, "tron"))["head"] == start - 2


async def test_reorg_refuses_to_touch_a_solidified_block(client: httpx.AsyncClient, devnet: Devnet) -> None:
    await produce(client, "tron", 5)
    head, solid = devnet.tron.head.number, devnet.tron.solid_head.number
    refused = await client.post("/control/reorg", json={"n": head - solid + 1})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "reorg_refused"
    assert devnet.tron.head.number == head
    allowed = await client.post("/control/reorg", json={"n": head - solid})
    assert allowed.status_code == 200
    # The solid head never moves back, and no further reorg is possible until blocks come.
    assert devnet.tron.solid_head.number == solid == devnet.tron.head.number
    assert (await client.post("/control/reorg", json={"n": 1})).status_code == 409


@pytest.mark.parametrize("result", ["REVERT", "OUT_OF_ENERGY"])
async def test_failed_receipt_pays_nothing(client: httpx.AsyncClient, devnet: Devnet, result: str) -> None:
    sent = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=5_000_000, result=result)
    await produce(client, "tron", SOLIDIFY_DEPTH + 1)
    info = await tron_info(client, sent["tx_id"], solid=True)
    assert info is not None
    assert (info.result, info.failed, info.succeeded, info.credits) == (result, True, False, ())
    assert (await usdt_events(client)).transfers == ()  # a failed call emits no event
    assert devnet.tron.balance(DEPOSIT) == 0


async def test_counterfeit_contract_is_classified_counterfeit(client: httpx.AsyncClient) -> None:
    sent = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=99_000_000, counterfeit=True)
    await produce(client, "tron")
    [listed] = (await incoming_trc20(client)).transfers  # same symbol and name as USDT
    assert listed.counterfeit and listed.classification == "counterfeit"
    assert listed.contract == COUNTERFEIT_CONTRACT
    [event] = (await usdt_events(client, contract=COUNTERFEIT_CONTRACT)).transfers
    assert event.counterfeit
    assert (await usdt_events(client)).transfers == ()
    assert (await incoming_trc20(client, contract_address=USDT_CONTRACT)).transfers == ()
    info = await tron_info(client, sent["tx_id"])
    assert info is not None and info.succeeded and info.credits == ()
    assert [t.counterfeit for t in info.transfers] == [True]


async def test_fingerprint_pages_through_every_transfer_once(client: httpx.AsyncClient) -> None:
    sent = []
    for i in range(5):
        sent.append((await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=100 + i))["tx_id"])
        if i % 2:
            await produce(client, "tron")
    await produce(client, "tron")
    for order in ("block_timestamp,desc", "block_timestamp,asc"):
        for fetch in (usdt_events, incoming_trc20):
            seen: list[str] = []
            page = await fetch(client, limit="2", order_by=order)
            while True:
                seen += [t.tx_id for t in page.transfers]
                if page.fingerprint is None:
                    break
                # New rows arriving between pages never shift the pages.
                await pay(client, asset="usdt_trc20", to=OTHER_DEPOSIT, amount=1)
                await produce(client, "tron")
                page = await fetch(client, limit="2", order_by=order, fingerprint=page.fingerprint)
            expected = sent if order.endswith("asc") else sent[::-1]
            assert [tx for tx in seen if tx in sent] == expected


async def test_links_next_repeats_the_query_with_the_fingerprint(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=1)
    await produce(client, "tron")
    first = (await client.get(f"{TRONGRID}/v1/contracts/{USDT_CONTRACT}/events",
                              params={"event_name": "Transfer", "limit": 2})).json()
    following = await client.get(first["meta"]["links"]["next"])
    assert len(trongrid.parse_contract_events(following.json()).transfers) == 1


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"fingerprint": "bogus"}, {"order_by": "value,asc"},
    {"only_confirmed": "true", "only_unconfirmed": "true"}, {"only_confirmed": "maybe"},
    {"min_timestamp": "-5"}, {"contract_address": "TNotAnAddress"},
])
async def test_bad_trongrid_parameters_get_400(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await client.get(f"{TRONGRID}/v1/accounts/{DEPOSIT}/transactions/trc20", params=params)
    assert response.status_code == 400
    assert response.json()["success"] is False and response.json()["error"]
    bad_account = await client.get(f"{TRONGRID}/v1/accounts/TNotAnAddress/transactions/trc20")
    assert bad_account.status_code == 400


async def test_receipts_by_block_number(client: httpx.AsyncClient) -> None:
    first = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=1)
    second = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=2, result="REVERT")
    head = (await produce(client, "tron"))["head"]
    response = await client.post(f"{TRONGRID}/wallet/gettransactioninfobyblocknum", json={"num": head})
    infos = trongrid.parse_transaction_infos(response.json())
    assert [(i.tx_id, i.result) for i in infos] == [(first["tx_id"], "SUCCESS"), (second["tx_id"], "REVERT")]
    solid = await client.post(f"{TRONGRID}/walletsolidity/gettransactioninfobyblocknum", json={"num": head})
    assert solid.json() == []


@pytest.mark.parametrize("body", [{}, {"value": "zz"}, {"value": 5}])
async def test_node_api_answers_bad_input_like_java_tron(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post(f"{TRONGRID}/wallet/gettransactioninfobyid", json=body)
    assert response.status_code == 200 and "Error" in response.json()
    with pytest.raises(trongrid.MalformedResponse):
        trongrid.parse_transaction_info(response.json())


async def test_unknown_transaction_is_empty_not_an_error(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{TRONGRID}/wallet/gettransactioninfobyid", params={"value": "ab" * 32})
    assert response.json() == {}
    assert trongrid.parse_transaction_info(response.json()) is None


async def test_trongrid_can_index_a_block_late(client: httpx.AsyncClient, devnet: Devnet,
                                               clock: ManualClock) -> None:
    """With an indexing lag, TronGrid's lists show a block only that long after it was made
    (the node knows it at once): a later block's event can be listed before it."""
    devnet.tron.index_lag_ms = 120_000
    late = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=1)
    await produce(client, "tron")
    devnet.tron.index_lag_ms = 0
    clock.advance(seconds=60)
    prompt = await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=2)
    await produce(client, "tron")
    assert [t.tx_id for t in (await usdt_events(client)).transfers] == [prompt["tx_id"]]
    assert [t.tx_id for t in (await incoming_trc20(client)).transfers] == [prompt["tx_id"]]
    assert await tron_info(client, late["tx_id"]) is not None
    clock.advance(seconds=60)
    events = (await usdt_events(client, order_by="block_timestamp,asc")).transfers
    assert [t.tx_id for t in events] == [late["tx_id"], prompt["tx_id"]]
    assert len((await incoming_trc20(client)).transfers) == 2
