"""The devnet's "lie" fault (devnet/faults.py) and its hooks in the JSON renderers, aimed at
one named provider of a chain (X-Devnet-Provider) while the others tell the truth."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from krypton.adapters.chains.ton.address import parse
from krypton.devnet import toncenter_json, trongrid_json
from krypton.devnet.common import InvalidInput
from krypton.devnet.devnet import Devnet
from krypton.devnet.faults import Fault, Faults
from krypton.devnet.http import create_devnet_app
from tests.support.clock import ManualClock

TON = 10**9
USDT = 10**6
OURS = parse("0:" + "d3" * 32, network="testnet")


@pytest.fixture
async def api() -> AsyncIterator[tuple[Devnet, httpx.AsyncClient]]:
    devnet = Devnet(ManualClock().now)
    app = create_devnet_app(devnet)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://devnet") as http:
        yield devnet, http


def named(name: str) -> dict[str, str]:
    return {"X-Devnet-Provider": name}


def test_a_lie_is_kept_apart_per_named_provider_and_used_up() -> None:
    faults = Faults()
    faults.inject("toncenter", Fault("lie", lie="omit"), count=2, name="beta")
    assert faults.lie("toncenter", "alpha") is None and faults.lie("toncenter", None) is None
    assert faults.take("toncenter") is None  # the fault gate never serves a lie
    assert faults.armed()["toncenter/beta"] == [{"kind": "lie", "status": None, "retry_after": None,
                                                 "latency_ms": None, "lie": "omit", "delta": 0,
                                                 "remaining": 2}]
    assert [faults.lie("toncenter", "beta") is not None for _ in range(3)] == [True, True, False]


def test_lies_are_checked() -> None:
    faults = Faults()
    with pytest.raises(InvalidInput, match="lie must be one of amount, omit, stale_head"):
        faults.inject("trongrid", Fault("lie", lie="forge"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="delta must be a whole number"):
        faults.inject("trongrid", Fault("lie", lie="amount", delta=0))
    with pytest.raises(InvalidInput, match="only a lie can be aimed at one named provider"):
        faults.inject("trongrid", Fault("status", status=500), name="beta")


def test_clearing_a_provider_clears_its_lies() -> None:
    faults = Faults()
    faults.inject("trongrid", Fault("lie", lie="stale_head"), count=5, name="beta")
    faults.clear("trongrid")
    assert faults.lie("trongrid", "beta") is None


def test_renderer_hooks_leave_the_truth_alone_without_a_lie() -> None:
    rows = [{"in_msg": {"source": "0:AB", "value": "5"}, "description": {"credit_ph": {"credit": "5"}}}]
    assert toncenter_json.told(rows, None) is rows
    assert trongrid_json.told_info({"id": "x"}, None) == {"id": "x"}
    assert trongrid_json.told_row({"value": "1"}, Fault("lie", lie="stale_head")) == {"value": "1"}


async def test_ton_liar_tells_another_amount_while_the_others_do_not(
        api: tuple[Devnet, httpx.AsyncClient]) -> None:
    devnet, http = api
    devnet.ton.pay_ton("alice", OURS, 3 * TON, comment="KR-LIE")
    devnet.produce("ton")
    devnet.faults.inject("toncenter", Fault("lie", lie="amount", delta=TON), count=10, name="beta")
    params: dict[str, str | int] = {"account": OURS.raw, "sort": "asc", "limit": 100}

    async def values(name: str) -> list[str]:
        answer = (await http.get("/toncenter/api/v3/transactions", params=params, headers=named(name))).json()
        return [tx["in_msg"]["value"] for tx in answer["transactions"] if tx["in_msg"]["source"]]

    assert await values("alpha") == [str(3 * TON)]
    assert await values("beta") == [str(4 * TON)]


async def test_ton_transactions_by_hash_and_omitting_and_stale_liars(
        api: tuple[Devnet, httpx.AsyncClient]) -> None:
    devnet, http = api
    devnet.ton.pay_ton("alice", OURS, 3 * TON, comment="KR-1")
    devnet.ton.pay_ton("bob", OURS, 4 * TON, comment="KR-2")
    devnet.produce("ton")
    every = (await http.get("/toncenter/api/v3/transactions",
                            params={"account": OURS.raw, "limit": 100})).json()["transactions"]
    wanted = next(tx for tx in every if tx["in_msg"]["value"] == str(4 * TON))
    one = (await http.get("/toncenter/api/v3/transactions",
                          params={"account": OURS.raw, "hash": wanted["hash"]})).json()["transactions"]
    assert [tx["hash"] for tx in one] == [wanted["hash"]]
    bad = await http.get("/toncenter/api/v3/transactions", params={"account": OURS.raw, "hash": "nope"})
    assert bad.status_code == 422 and "hash" in bad.json()["error"]

    devnet.faults.inject("toncenter", Fault("lie", lie="omit"), count=1, name="gamma")
    omitted = (await http.get("/toncenter/api/v3/transactions", headers=named("gamma"),
                              params={"account": OURS.raw, "hash": wanted["hash"]})).json()["transactions"]
    assert omitted == []
    head = (await http.get("/toncenter/api/v3/masterchainInfo")).json()["last"]["seqno"]
    devnet.faults.inject("toncenter", Fault("lie", lie="stale_head", delta=1), count=1, name="gamma")
    stale = (await http.get("/toncenter/api/v3/masterchainInfo", headers=named("gamma"))).json()
    assert stale["last"]["seqno"] == max(1, head - 1)


async def test_tron_liar_omits_overstates_and_lags(api: tuple[Devnet, httpx.AsyncClient]) -> None:
    devnet, http = api
    to = devnet.tron.payer("bob")
    tx_id = devnet.tron.transfer("alice", to, 7 * USDT).tx_id
    devnet.produce("tron", 25)

    async def info(name: str, solid: bool = False) -> dict[str, object]:
        path = f"/trongrid/wallet{'solidity' if solid else ''}/gettransactioninfobyid"
        return dict((await http.post(path, json={"value": tx_id}, headers=named(name))).json())

    honest = await info("alpha")
    devnet.faults.inject("trongrid", Fault("lie", lie="amount", delta=USDT), count=1, name="beta")
    more = await info("beta")
    assert honest["log"] != more["log"]
    assert int(more["log"][0]["data"], 16) == 8 * USDT  # type: ignore[index]
    devnet.faults.inject("trongrid", Fault("lie", lie="omit"), count=1, name="beta")
    assert await info("beta") == {}
    devnet.faults.inject("trongrid", Fault("lie", lie="stale_head", delta=100), count=1, name="beta")
    assert await info("beta", solid=True) == {}  # not solidified as far as beta knows
    assert await info("alpha", solid=True) == honest

    rows = (await http.get(f"/trongrid/v1/accounts/{to}/transactions/trc20",
                           params={"only_to": "true"}, headers=named("beta"))).json()["data"]
    devnet.faults.inject("trongrid", Fault("lie", lie="omit"), count=1, name="beta")
    hidden = (await http.get(f"/trongrid/v1/accounts/{to}/transactions/trc20",
                             params={"only_to": "true"}, headers=named("beta"))).json()["data"]
    assert len(rows) == 1 and hidden == []
    now = (await http.post("/trongrid/wallet/getnowblock", json={})).json()
    devnet.faults.inject("trongrid", Fault("lie", lie="stale_head", delta=5), count=1, name="beta")
    stale = (await http.post("/trongrid/wallet/getnowblock", json={}, headers=named("beta"))).json()
    assert stale["block_header"]["raw_data"]["number"] == now["block_header"]["raw_data"]["number"] - 5
