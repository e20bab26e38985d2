"""The /control API: provider faults for exactly N requests, and clear 4xx refusals that
change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from krypton.adapters.chains.ton.toncenter import parse_masterchain_info
from krypton.devnet import Devnet
from krypton.devnet.tron import COUNTERFEIT_CONTRACT, USDT_CONTRACT
from tests.devnet.conftest import FakeSleep
from tests.devnet.support import DEPOSIT, OURS, TONCENTER, TRONGRID, pay

TON_INFO = f"{TONCENTER}/masterchainInfo"
TRON_HEAD = f"{TRONGRID}/wallet/getnowblock"


async def fault(client: httpx.AsyncClient, **body: Any) -> None:
    response = await client.post("/control/faults", json=body)
    assert response.status_code == 201, response.text


async def test_status_500_for_exactly_n_requests(client: httpx.AsyncClient) -> None:
    await fault(client, provider="toncenter", kind="status", status=500, count=2)
    statuses = [(await client.get(TON_INFO)).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await client.post(TRON_HEAD)).status_code == 200  # the other provider is untouched


async def test_429_carries_retry_after(client: httpx.AsyncClient) -> None:
    await fault(client, provider="trongrid", kind="status", status=429, retry_after=7)
    limited = await client.post(TRON_HEAD)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert (await client.post(TRON_HEAD)).status_code == 200


async def test_faults_are_used_in_the_order_they_were_armed(client: httpx.AsyncClient,
                                                            sleep: FakeSleep) -> None:
    await fault(client, provider="toncenter", kind="status", status=429, count=2)
    await fault(client, provider="toncenter", kind="latency", latency_ms=250)
    await fault(client, provider="toncenter", kind="status", status=502)
    answers = [await client.get(TON_INFO) for _ in range(5)]
    assert [a.status_code for a in answers] == [429, 429, 200, 502, 200]
    assert sleep.calls == [0.25]
    assert parse_masterchain_info(answers[2].json()) == 1  # a slow answer is still the answer


async def test_latency_for_exactly_n_requests(client: httpx.AsyncClient, sleep: FakeSleep) -> None:
    await fault(client, provider="trongrid", kind="latency", latency_ms=1500, count=2)
    for _ in range(3):
        assert (await client.post(TRON_HEAD)).status_code == 200
    assert sleep.calls == [1.5, 1.5]


async def test_timeout_hangs_then_gives_up(client: httpx.AsyncClient, sleep: FakeSleep) -> None:
    await fault(client, provider="toncenter", kind="timeout")
    assert (await client.get(TON_INFO)).status_code == 504
    assert sleep.calls == [3600.0]


async def test_a_lie_is_aimed_at_one_named_provider_through_the_api(client: httpx.AsyncClient,
                                                                     devnet: Devnet) -> None:
    await fault(client, provider="trongrid", kind="lie", lie="amount", delta=5, name="backup", count=2)
    state = (await client.get("/control/state")).json()
    assert state["faults"]["trongrid/backup"] == [
        {"kind": "lie", "status": None, "retry_after": None, "latency_ms": None, "lie": "amount",
         "delta": 5, "remaining": 2}]
    assert devnet.faults.lie("trongrid", "primary") is None  # only the named one lies
    lies = [devnet.faults.lie("trongrid", "backup") for _ in range(3)]
    assert [f.lie if f else None for f in lies] == ["amount", "amount", None]


async def test_control_endpoints_never_suffer_faults_and_can_be_cleared(client: httpx.AsyncClient) -> None:
    await fault(client, provider="toncenter", kind="status", status=500, count=10)
    await fault(client, provider="trongrid", kind="status", status=500, count=10)
    state = (await client.get("/control/state")).json()
    assert [f["remaining"] for f in state["faults"]["toncenter"]] == [10]
    cleared = await client.delete("/control/faults", params={"provider": "toncenter"})
    assert cleared.json()["faults"] == {"toncenter": [], "trongrid": state["faults"]["trongrid"]}
    assert (await client.get(TON_INFO)).status_code == 200
    await client.delete("/control/faults")
    assert (await client.post(TRON_HEAD)).status_code == 200


async def test_state_shows_payers_balances_and_heads(client: httpx.AsyncClient, devnet: Devnet) -> None:
    await pay(client, asset="ton", to=OURS.raw, amount=5, comment="x")
    await pay(client, asset="usdt_trc20", to=DEPOSIT, amount=6, **{"from": "bob"})
    await client.post("/control/blocks", json={"chain": "tron"})
    state = (await client.get("/control/state")).json()
    assert [p["name"] for p in state["ton"]["payers"]] == ["alice", "bob", "carol"]
    assert state["ton"]["balances"][OURS.raw] == "5"
    assert state["ton"]["pending"] == 2  # the payer's order and our incoming transaction
    assert state["tron"]["balances"][f"{USDT_CONTRACT}/{DEPOSIT}"] == "6"
    assert state["tron"]["head"] - state["tron"]["solid_head"] == 19
    assert (state["tron"]["usdt_contract"], state["tron"]["counterfeit_contract"]) == (
        USDT_CONTRACT, COUNTERFEIT_CONTRACT)
    assert state["ton"]["payers"][1]["address"] == devnet.ton.payer("bob").raw


BAD_REQUESTS: list[tuple[str, object, int, str | None]] = [
    ("/control/pay", "{not json", 400, None),
    ("/control/pay", [1, 2], 400, None),
    ("/control/pay", {"asset": "btc", "to": OURS.raw, "amount": 1}, 422, "asset"),
    ("/control/pay", {"to": OURS.raw, "amount": 1}, 422, "asset"),
    ("/control/pay", {"asset": "ton", "amount": 1}, 422, "to"),
    ("/control/pay", {"asset": "ton", "to": "EQ-not-an-address", "amount": 1}, 422, "to"),
    ("/control/pay", {"asset": "usdt_trc20", "to": "T-not-an-address", "amount": 1}, 422, "to"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw}, 422, "amount"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 0}, 422, "amount"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": -3}, 422, "amount"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 1.5}, 422, "amount"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": "1.5"}, 422, "amount"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": True}, 422, "amount"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 1, "memo": "x"}, 422, "memo"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 1, "comment": 5}, 422, "comment"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 1, "comment": "x" * 5000}, 422, "comment"),
    ("/control/pay", {"asset": "usdt_trc20", "to": DEPOSIT, "amount": 1, "comment": "x"}, 422, "comment"),
    ("/control/pay", {"asset": "usdt_ton", "to": OURS.raw, "amount": 1, "bounce": True}, 422, "bounce"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 1, "result": "REVERT"}, 422, "result"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 1, "counterfeit": True}, 422, "counterfeit"),
    ("/control/pay", {"asset": "usdt_trc20", "to": DEPOSIT, "amount": 1, "result": "MAYBE"}, 422, "result"),
    ("/control/pay", {"asset": "usdt_ton", "to": OURS.raw, "amount": 1, "forward_ton_amount": -1}, 422,
     "forward_ton_amount"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 1, "bounce": "yes"}, 422, "bounce"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 1, "from": "mallory"}, 422, "from"),
    ("/control/pay", {"asset": "ton", "to": OURS.raw, "amount": 10**16}, 409, "amount"),
    ("/control/pay", {"asset": "usdt_ton", "to": OURS.raw, "amount": 10**13}, 409, "amount"),
    ("/control/pay", {"asset": "usdt_trc20", "to": DEPOSIT, "amount": 10**13}, 409, "amount"),
    ("/control/blocks", {"chain": "eth"}, 422, "chain"),
    ("/control/blocks", {"count": 2}, 422, "chain"),
    ("/control/blocks", {"chain": "ton", "count": 0}, 422, "count"),
    ("/control/blocks", {"chain": "tron", "count": 1001}, 422, "count"),
    ("/control/reorg", {}, 422, "n"),
    ("/control/reorg", {"n": 0}, 422, "n"),
    ("/control/reorg", {"n": 20}, 409, "n"),
    ("/control/reorg", {"n": 1, "chain": "ton"}, 422, "chain"),
    ("/control/faults", {"provider": "etherscan", "kind": "status", "status": 500}, 422, "provider"),
    ("/control/faults", {"provider": "toncenter", "kind": "explode"}, 422, "kind"),
    ("/control/faults", {"provider": "toncenter", "kind": "status"}, 422, "status"),
    ("/control/faults", {"provider": "toncenter", "kind": "status", "status": 200}, 422, "status"),
    ("/control/faults", {"provider": "toncenter", "kind": "latency"}, 422, "latency_ms"),
    ("/control/faults", {"provider": "toncenter", "kind": "latency", "latency_ms": 10**6}, 422, "latency_ms"),
    ("/control/faults", {"provider": "toncenter", "kind": "timeout", "count": 0}, 422, "count"),
    ("/control/faults", {"provider": "toncenter", "kind": "lie", "lie": "everything"}, 422, "lie"),
    ("/control/faults", {"provider": "toncenter", "kind": "lie", "lie": "amount", "delta": 0}, 422, "delta"),
    ("/control/faults", {"provider": "toncenter", "kind": "status", "status": 500, "name": "b"}, 422,
     "name"),
    ("/control/faults", {"provider": "trongrid", "kind": "status", "status": 429, "retry_after": -1}, 422,
     "retry_after"),
]


@pytest.mark.parametrize(("path", "body", "status", "field"), BAD_REQUESTS)
async def test_bad_control_input_gets_a_clear_4xx_and_changes_nothing(
        client: httpx.AsyncClient, path: str, body: object, status: int, field: str | None) -> None:
    before = (await client.get("/control/state")).json()
    if isinstance(body, str):
        response = await client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["code"] and error["message"].endswith(".")
    assert (await client.get("/control/state")).json() == before
