"""The devnet's fee collector against the sandbox vectors (contracts/vectors/fee-collector-vectors.json).

The vectors come from the real contract in @ton/sandbox: addresses, get_fee splits and, for
each payment sequence, the get_stats counters after every step. The devnet charges no gas, so
what the destination and the owner receive is compared with the contract's own arithmetic
(value - fee, the accumulated fees), not with the sandbox's gas-reduced `measured` values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit

from krypton.adapters.chains.ton import fee_collector as fc
from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.cells import Reader, cell_from_boc, cell_to_boc
from krypton.adapters.chains.ton.toncenter import parse_transactions
from krypton.devnet import Devnet
from krypton.devnet import ton_bodies as bodies
from krypton.devnet import ton_collector as logic
from krypton.devnet.common import InvalidInput, epoch_s
from krypton.devnet.ton import TonTransaction
from tests.devnet.support import OURS, TONCENTER, pay, produce
from tests.support.clock import ManualClock

VECTORS_PATH = Path(__file__).parents[2] / "contracts" / "vectors" / "fee-collector-vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
CONFIGS: list[dict[str, Any]] = VECTORS["configs"]
SEQUENCES: list[dict[str, Any]] = VECTORS["sequences"]
STANDARD = CONFIGS[0]
COUNTERS = ("accumulated", "total_collected", "total_withdrawn", "payment_count")


def address_of(raw: str) -> TonAddress:
    return parse(raw, network="testnet")


async def deploy(client: httpx.AsyncClient, vector: dict[str, Any], amount: int | None = None) -> TonAddress:
    body: dict[str, Any] = {"state_init": vector["state_init_boc_base64"]}
    if amount is not None:
        body["amount"] = str(amount)
    response = await client.post("/control/ton/deploy", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["address"] == vector["address_raw"]
    return address_of(result["address"])


async def run(client: httpx.AsyncClient, address: TonAddress, method: str,
              stack: list[Any] | None = None) -> dict[str, Any]:
    response = await client.post(f"{TONCENTER}/runGetMethod",
                                 json={"address": address.raw, "method": method, "stack": stack or []})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def nums(stack: list[dict[str, str]]) -> list[int]:
    assert all(e["type"] == "num" and e["value"] == hex(int(e["value"], 16)) for e in stack)  # canonical hex
    return [int(e["value"], 16) for e in stack]


def slice_address(entry: dict[str, str]) -> TonAddress | None:
    assert entry["type"] == "slice"
    return Reader(cell_from_boc(entry["value"])).address()


async def counters(client: httpx.AsyncClient, address: TonAddress) -> dict[str, str]:
    result = await run(client, address, "get_stats")
    assert result["exit_code"] == 0
    values = nums(result["stack"])
    assert len(values) == 7
    return {name: str(value) for name, value in zip(COUNTERS, values, strict=False)}


async def transactions(client: httpx.AsyncClient, account: TonAddress) -> list[dict[str, Any]]:
    response = await client.get(f"{TONCENTER}/transactions",
                                params={"account": account.raw, "sort": "asc", "limit": 1000})
    assert response.status_code == 200, response.text
    parse_transactions(response.json(), our_address=account, jetton_wallets={})  # no PayloadError
    rows: list[dict[str, Any]] = response.json()["transactions"]
    return rows


def recipient_tx(devnet: Devnet, account: TonAddress, tx_hash: str) -> TonTransaction:
    [tx] = [t for t in devnet.ton.transactions(account, include_pending=True) if t.hash == tx_hash]
    return tx


# -- deploy and get-methods, for every vector config ------------------------------------------------


@pytest.mark.parametrize("vector", CONFIGS, ids=[c["name"] for c in CONFIGS])
async def test_vector_config_deploys_at_its_address_and_answers_its_get_methods(
        client: httpx.AsyncClient, devnet: Devnet, vector: dict[str, Any]) -> None:
    response = await client.post("/control/ton/deploy", json={"state_init": vector["state_init_boc_base64"]})
    assert response.status_code == 200, response.text
    assert response.json() == {"address": vector["address_raw"],
                               "address_bounceable": vector["address_bounceable"],
                               "balance": str(fc.MIN_DEPLOY_AMOUNT)}
    address = address_of(vector["address_raw"])

    for split in vector["fees"]:
        # TON Center takes num entries as hex; decimal strings are accepted too
        for value in (hex(int(split["amount"])), split["amount"]):
            result = await run(client, address, "get_fee", [{"type": "num", "value": value}])
            assert result["exit_code"] == 0
            assert nums(result["stack"]) == [int(split["fee"]), int(split["net"])]

    result = await run(client, address, "get_config")
    owner, destination, *rest = result["stack"]
    assert slice_address(owner) == address_of(vector["owner"])
    assert slice_address(destination) == address_of(vector["destination"])
    assert nums(rest) == [vector["fee_bps"], int(vector["min_withdrawal"]), fc.STORAGE_FLOOR, fc.MIN_NET]

    stats = nums((await run(client, address, "get_stats"))["stack"])
    assert stats == [0, 0, 0, 0, 0, int(vector["min_withdrawal"]), vector["fee_bps"]]
    assert devnet.ton.is_contract(address)


async def test_get_fee_follows_tvm_for_its_argument(client: httpx.AsyncClient) -> None:
    address = await deploy(client, STANDARD)
    below = await run(client, address, "get_fee", [{"type": "num", "value": "0x7"}, ["num", "1000"]])
    # the argument is the top of the stack (the last entry); what lies below stays on it
    assert below["stack"] == [{"type": "num", "value": "0x7"}, {"type": "num", "value": "0x19"},
                              {"type": "num", "value": "0x3cf"}]
    negative = await run(client, address, "get_fee", [{"type": "num", "value": "-0x3e8"}])
    assert negative["stack"] == [{"type": "num", "value": "-0x19"}, {"type": "num", "value": "-0x3cf"}]
    assert (await run(client, address, "get_fee"))["exit_code"] == 2  # stack underflow
    not_a_number = [{"type": "slice", "value": cell_to_boc(Builder().end_cell())}]
    assert (await run(client, address, "get_fee", not_a_number))["exit_code"] == 7  # type check
    assert (await run(client, address, "get_jetton_data")) == {"gas_used": 0, "exit_code": 11, "stack": []}


@pytest.mark.parametrize("stack", [
    [{"type": "num", "value": "12abc"}], [{"type": "num", "value": hex(1 << 256)}],
    [{"type": "tuple", "value": []}], [{"type": "cell", "value": "!!"}], ["num"],
])
async def test_malformed_stack_entries_get_422(client: httpx.AsyncClient, stack: list[Any]) -> None:
    address = await deploy(client, STANDARD)
    response = await client.post(f"{TONCENTER}/runGetMethod",
                                 json={"address": address.raw, "method": "get_fee", "stack": stack})
    assert response.status_code == 422
    assert isinstance(response.json()["error"], str)


@pytest.mark.parametrize("account", [OURS, address_of(STANDARD["address_raw"])], ids=["wallet", "undeployed"])
async def test_get_methods_on_an_account_without_code_get_409(client: httpx.AsyncClient,
                                                               account: TonAddress) -> None:
    response = await client.post(f"{TONCENTER}/runGetMethod",
                                 json={"address": account.raw, "method": "get_stats", "stack": []})
    assert response.status_code == 409
    assert "no contract is deployed there" in response.json()["error"]


# -- payment sequences from the sandbox ----------------------------------------------------------


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[s["name"] for s in SEQUENCES])
async def test_sequence_replays_the_sandbox_counters_step_by_step(
        client: httpx.AsyncClient, devnet: Devnet, clock: ManualClock, sequence: dict[str, Any]) -> None:
    address = await deploy(client, sequence, int(sequence["deploy_value"]))
    owner, destination = address_of(sequence["owner"]), address_of(sequence["destination"])
    payer = devnet.ton.payer("alice")
    for i, step in enumerate(sequence["steps"]):
        clock.advance(minutes=1)
        amount, comment = int(step["amount"]), step["comment"]
        before = {a: devnet.ton.balance(a) for a in (address, owner, destination, payer)}
        stats_before = await counters(client, address)
        sent = await pay(client, asset="ton", to=address.friendly(bounceable=True), amount=amount,
                         comment=comment, bounce=True)
        refused = step["exit_code"] != 0
        assert sent["bounced"] is refused, i

        assert await counters(client, address) == step["stats"], (sequence["name"], i)
        fee, net = int(step["fee"]), int(step["net"])
        split = await run(client, address, "get_fee", [{"type": "num", "value": step["amount"]}])
        assert nums(split["stack"]) == [fee, net]
        tx = recipient_tx(devnet, address, sent["tx_hash"])
        if refused:
            assert (tx.aborted, tx.exit_code) == (True, 102)
            [back] = tx.out_msgs
            assert (back.destination, back.value, back.bounced) == (payer, amount, True)
            assert devnet.ton.balance(payer) == before[payer]  # refunded in full (no fees on the devnet)
            assert devnet.ton.balance(address) == before[address]
            continue
        flushed = int(step["stats"]["total_withdrawn"]) - int(stats_before["total_withdrawn"])
        assert step["flushed"] is (flushed > 0)
        assert (tx.aborted, tx.exit_code) == (False, 0)
        forward = tx.out_msgs[-1]
        assert (forward.destination, forward.value, forward.bounce) == (destination, net, False)
        assert cell_to_boc(forward.body) == cell_to_boc(bodies.comment(comment))  # the payer's body, exact
        assert devnet.ton.balance(destination) == before[destination] + net
        assert devnet.ton.balance(address) == before[address] + fee - flushed
        if flushed:
            flush = tx.out_msgs[0]  # sent before the forward, as the contract does
            assert len(tx.out_msgs) == 2
            assert (flush.destination, flush.value, flush.bounce) == (owner, flushed, False)
            assert flushed == int(stats_before["accumulated"]) + fee
            assert cell_to_boc(flush.body) == cell_to_boc(logic.fees_withdrawn_body(0))
            assert devnet.ton.balance(owner) == before[owner] + flushed
            stats = nums((await run(client, address, "get_stats"))["stack"])
            assert stats[4] == epoch_s(clock.now)  # last_withdrawal_time
        else:
            assert len(tx.out_msgs) == 1

    devnet.ton.produce_block()
    for account in (address, owner, destination, payer):
        await transactions(client, account)  # every transaction renders through the real parser


async def test_refused_payment_renders_the_contracts_exit_code(client: httpx.AsyncClient,
                                                               devnet: Devnet) -> None:
    address = await deploy(client, STANDARD)
    too_small = fc.min_payment(STANDARD["fee_bps"]) - 1
    await pay(client, asset="ton", to=address.raw, amount=too_small, comment="INV-S", bounce=True)
    await pay(client, asset="ton", to=address.raw, amount=too_small, comment="INV-K")  # non-bounceable
    await produce(client, "ton")

    _deployed, bounced, kept = await transactions(client, address)
    vm = {"type": "vm", "success": False, "exit_code": 102, "gas_used": "0", "gas_fees": "0", "vm_steps": 0}
    assert bounced["description"]["aborted"] is True and bounced["description"]["compute_ph"] == vm
    assert "action" not in bounced["description"] and bounced["description"]["bounce"]["type"] == "ok"
    assert [m["bounced"] for m in bounced["out_msgs"]] == [True]
    assert kept["description"]["aborted"] is True and kept["description"]["compute_ph"] == vm
    assert kept["out_msgs"] == [] and "bounce" not in kept["description"]
    # A non-bounceable message cannot be refused: its value stays, the counters do not move.
    assert devnet.ton.balance(address) == fc.MIN_DEPLOY_AMOUNT + too_small
    assert (await counters(client, address))["payment_count"] == "0"

    response = await client.get(f"{TONCENTER}/transactions", params={"account": address.raw, "sort": "asc"})
    kinds = [t.kind for t in parse_transactions(response.json(), our_address=address, jetton_wallets={})]
    assert kinds[1:] == ["ignored", "ton"]  # bounced back vs. kept (as on the chain)


async def test_deploy_transaction_carries_the_state_init_from_the_owner(client: httpx.AsyncClient) -> None:
    address = await deploy(client, STANDARD)
    await produce(client, "ton")
    [row] = await transactions(client, address)
    assert (row["orig_status"], row["end_status"]) == ("nonexist", "active")
    assert row["in_msg"]["source"] == f"0:{'11' * 32}"  # the owner
    assert row["in_msg"]["opcode"] == f"0x{fc.OP_TOP_UP:08x}"
    assert row["in_msg"]["value"] == str(fc.MIN_DEPLOY_AMOUNT) and row["out_msgs"] == []
    assert row["in_msg"]["init_state"]["body"] == STANDARD["state_init_boc_base64"]
    assert row["description"]["compute_ph"]["exit_code"] == 0 and row["description"]["aborted"] is False
    response = await client.get(f"{TONCENTER}/transactions", params={"account": address.raw})
    assert response.json()["address_book"][row["account"]]["user_friendly"] == STANDARD["address_bounceable"]


async def test_money_sent_before_the_deploy_is_kept_and_the_deploy_adds_to_it(
        client: httpx.AsyncClient, devnet: Devnet) -> None:
    address = address_of(STANDARD["address_raw"])
    early = await pay(client, asset="ton", to=address.raw, amount=1_000, comment="early")
    assert early["bounced"] is False  # an undeployed address is an ordinary account, as before
    await deploy(client, STANDARD, 70_000_000)
    assert devnet.ton.balance(address) == 70_001_000
    first, deployed = devnet.ton.transactions(address, include_pending=True)
    assert (first.orig_status, first.end_status) == ("nonexist", "uninit")
    assert (deployed.orig_status, deployed.end_status) == ("uninit", "active")


async def test_jetton_notification_to_a_collector_is_an_unknown_op(client: httpx.AsyncClient,
                                                                   devnet: Devnet) -> None:
    address = await deploy(client, STANDARD)
    sent = await pay(client, asset="usdt_ton", to=address.raw, amount=5_000_000, comment="USDT?")
    tx = recipient_tx(devnet, address, sent["tx_hash"])
    assert (tx.aborted, tx.exit_code, tx.out_msgs) == (True, 104, ())  # non-bounceable: value kept
    assert devnet.ton.jetton_balance(address) == 5_000_000  # stuck in its jetton wallet (README caveat)


# -- deploy refusals -------------------------------------------------------------------------------


def other_code_state_init() -> str:
    data = cell_from_boc(STANDARD["data_boc_base64"])
    code = Builder().store_uint(0xDEADBEEF, 32).end_cell()
    return cell_to_boc(StateInit(code=code, data=data).serialize())


def with_library_state_init() -> str:
    code, data = fc.code(), cell_from_boc(STANDARD["data_boc_base64"])
    cell = Builder().store_uint(0b00111, 5).store_ref(code).store_ref(data) \
        .store_ref(Builder().end_cell()).end_cell()
    return cell_to_boc(cell)


def bad_data_state_init() -> str:
    return cell_to_boc(StateInit(code=fc.code(), data=Builder().store_uint(0, 8).end_cell()).serialize())


@pytest.mark.parametrize(("body", "words"), [
    ({"state_init": "!!not base64"}, "base64 BOC"),
    ({"state_init": "aGVsbG8="}, "base64 BOC"),
    ({"state_init": other_code_state_init()}, "only the fee-collector contract"),
    ({"state_init": with_library_state_init()}, "code and data only"),
    ({"state_init": bad_data_state_init()}, "not a fee-collector data cell"),
    ({"state_init": STANDARD["state_init_boc_base64"], "amount": "59999999"}, "at least 60000000"),
    ({"state_init": STANDARD["state_init_boc_base64"], "amount": 0}, "1 or more"),
    ({"state_init": STANDARD["state_init_boc_base64"], "owner": "x"}, "not a known field"),
    ({}, "state_init is required"),
])
async def test_bad_deploys_get_422_with_a_sentence_and_change_nothing(
        client: httpx.AsyncClient, devnet: Devnet, body: dict[str, Any], words: str) -> None:
    response = await client.post("/control/ton/deploy", json=body)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert words in message and message.endswith(".")
    assert devnet.ton.collectors() == {} and devnet.ton.pending == ()


async def test_deploying_the_same_state_init_twice_is_refused(client: httpx.AsyncClient,
                                                              devnet: Devnet) -> None:
    address = await deploy(client, STANDARD)
    again = await client.post("/control/ton/deploy", json={"state_init": STANDARD["state_init_boc_base64"]})
    assert again.status_code == 422
    assert "already deployed" in again.json()["error"]["message"]
    assert devnet.ton.balance(address) == fc.MIN_DEPLOY_AMOUNT


async def test_state_lists_collectors_with_their_stats(client: httpx.AsyncClient) -> None:
    address = await deploy(client, STANDARD)
    await pay(client, asset="ton", to=address.raw, amount=1_000_000_000, comment="INV-1")
    [row] = (await client.get("/control/state")).json()["ton"]["collectors"]
    assert row == {
        "address": STANDARD["address_raw"], "address_bounceable": STANDARD["address_bounceable"],
        "balance": str(fc.MIN_DEPLOY_AMOUNT + 25_000_000), "owner": STANDARD["owner"],
        "destination": STANDARD["destination"], "fee_bps": 250, "min_withdrawal": "1000000000",
        "stats": {"accumulated": "25000000", "total_collected": "25000000", "total_withdrawn": "0",
                  "payment_count": 1, "last_withdrawal_time": 0},
    }


# -- owner ops -------------------------------------------------------------------------------------


async def test_force_withdraw_returns_the_fees_with_the_owners_value(client: httpx.AsyncClient,
                                                                     devnet: Devnet) -> None:
    address = await deploy(client, STANDARD)
    owner = address_of(STANDARD["owner"])
    nothing = devnet.ton.force_withdraw(address, query_id=5)
    assert (nothing.exit_code, nothing.out_msgs[0].bounced) == (103, True)  # refused, bounced back

    await pay(client, asset="ton", to=address.raw, amount=2_000_000_000)
    stranger = devnet.ton.force_withdraw(address, sender=OURS)
    assert stranger.exit_code == 101 and stranger.out_msgs[0].destination == OURS

    before = devnet.ton.balance(owner)
    tx = devnet.ton.force_withdraw(address, query_id=7, value=50_000_000)
    [answer] = tx.out_msgs
    assert (answer.destination, answer.value) == (owner, 50_000_000 + 50_000_000)
    assert cell_to_boc(answer.body) == cell_to_boc(logic.fees_withdrawn_body(7))
    assert devnet.ton.balance(owner) == before + 100_000_000
    assert devnet.ton.balance(address) == fc.MIN_DEPLOY_AMOUNT
    assert (await counters(client, address))["total_withdrawn"] == "50000000"
    with pytest.raises(InvalidInput, match="not a deployed fee collector"):
        devnet.ton.force_withdraw(OURS)


# -- the contract logic on its own -------------------------------------------------------------------


STATE = logic.from_state_init(cell_from_boc(STANDARD["state_init_boc_base64"]))
OWNER = address_of(STANDARD["owner"])


def receive(body: Cell, *, sender: TonAddress = OWNER, value: int = 10**9, bounced: bool = False,
            state: logic.CollectorState = STATE) -> logic.Outcome:
    return logic.receive(state, sender=sender, value=value, body=body, bounced=bounced,
                         balance_before=10**8, now=1_750_000_000)


def test_owner_ops_refusals_and_bounces_follow_the_contract() -> None:
    set_min = Builder().store_uint(fc.OP_SET_MIN_WITHDRAWAL, 32).store_uint(3, 64).store_coins(42).end_cell()
    changed = receive(set_min)
    assert changed.accepted and changed.state.min_withdrawal == 42
    [excesses] = changed.sends
    assert (excesses.to, excesses.value) == (OWNER, 10**9)
    assert cell_to_boc(excesses.body) == cell_to_boc(logic.excesses_body(3))

    assert receive(set_min, sender=OURS).exit_code == 101
    no_coins = Builder().store_uint(fc.OP_SET_MIN_WITHDRAWAL, 32).store_uint(3, 64).end_cell()
    assert receive(no_coins).exit_code == 9
    # query_id is read before the owner check: a short owner op from anyone is 9, not 101
    assert receive(Builder().store_uint(fc.OP_TOP_UP, 32).end_cell(), sender=OURS).exit_code == 9
    assert receive(fc.top_up_body()).sends == () and receive(fc.top_up_body()).accepted
    assert receive(Builder().store_uint(0x7362D09C, 32).end_cell()).exit_code == 104
    assert receive(Builder().store_uint(1, 8).end_cell()).exit_code == 104  # shorter than an op
    assert receive(Builder().store_ref(Builder().end_cell()).end_cell()).exit_code == 104
    assert receive(bodies.bounced(fc.top_up_body()), bounced=True) == logic.Outcome(0, STATE)


def test_a_fee_above_100_percent_refuses_every_payment() -> None:
    greedy = logic.CollectorState(OWNER, OURS, fee_bps=10_000, min_withdrawal=0)
    assert receive(bodies.empty(), state=greedy, value=10**12).exit_code == 102


def test_data_with_counters_deploys_with_them() -> None:
    data = Builder().store_coins(5).store_coins(6).store_coins(1).store_uint(2, 64).store_uint(9, 32) \
        .store_ref(fc.config_cell(fc.FeeCollectorConfig(OWNER, OURS, 100, 7))).end_cell()
    state = logic.from_state_init(StateInit(code=fc.code(), data=data).serialize())
    assert logic.stats(state) == (5, 6, 1, 2, 9, 7, 100)
    assert logic.config(state) == (OWNER, OURS, 100, 7, fc.STORAGE_FLOOR, fc.MIN_NET)
