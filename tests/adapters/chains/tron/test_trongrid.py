"""TronGrid and node parsers on every recorded response in tests/fixtures/tron, and on
variations of them (counterfeit tokens, failed and unknown receipts, paging, bad shapes)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from krypton.adapters.chains.tron.address import from_hex
from krypton.adapters.chains.tron.transfer import (
    MAINNET_USDT,
    NILE_USDT,
    TRANSFER_TOPIC,
    CounterfeitTransfer,
    Trc20Transfer,
    is_usdt,
)
from krypton.adapters.chains.tron.trongrid import (
    MalformedResponse,
    TxInfo,
    parse_block_number,
    parse_contract_events,
    parse_transaction_info,
    parse_transaction_infos,
    parse_trc20_transactions,
)
from krypton.domain.assets import USDT_TRC20, Chain
from krypton.domain.payment import ObservedTransfer
from tests.adapters.chains.tron.recorded import FIXTURES, load, strip_comments

TRC20_LIST = "trongrid-trc20-transactions.json"
EVENTS = "trongrid-contract-events-usdt-transfer.json"
CONTRACT_CALL = "node-wallet-gettransactioninfobyid-nile-contract-call.jsonc"
TRX_TRANSFER = "node-wallet-gettransactioninfobyid-trx-transfer.json"
BY_BLOCK = "node-wallet-gettransactioninfobyblocknum-nile.json"
NOW_BLOCK = "node-wallet-getnowblock-nile.jsonc"
USDT_LOG_ADDRESS = "a614f803b6fd780986a42c78ec9c7f77e6ded13c"  # CHAINS.md: USDT as 20-byte hex
COUNTERFEIT = "TXJ2Z9VAwDpQ4W6zwTpXxRUpwFVDetPQuC"  # any other contract (a vector address)


def _word(hex_value: str) -> str:
    return hex_value.rjust(64, "0")


def test_every_tron_fixture_is_covered_and_parses() -> None:
    parsers: dict[str, Callable[[Any], object]] = {
        TRC20_LIST: parse_trc20_transactions,
        EVENTS: parse_contract_events,
        CONTRACT_CALL: parse_transaction_info,
        TRX_TRANSFER: parse_transaction_info,
        BY_BLOCK: parse_transaction_infos,
        NOW_BLOCK: parse_block_number,
        "vectors.json": lambda body: body,
    }
    names = {p.name for p in FIXTURES.iterdir() if not p.name.endswith(".source.txt")}
    assert names == set(parsers)
    for name, parse in parsers.items():
        assert parse(load(name)) is not None, name


# --- /v1/accounts/{address}/transactions/trc20 ------------------------------------------


def test_trc20_transactions_fixture() -> None:
    page = parse_trc20_transactions(load(TRC20_LIST))
    assert page.fingerprint is None  # the capture has no meta: a single page
    assert page.transfers == (
        Trc20Transfer(
            tx_id="77ff0c0819cc39b3d24c98a3e94c1789f9e4376509aaadc82894896474c0e6b2",
            contract="TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
            from_="TNtbiqvanUnm4YHK9SYzRGR8ktiHRduDbM",
            to="TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",  # the capture queried the contract itself
            amount=195_170_000,
            block_timestamp=1_784_641_290_000,
            index=0,
            block=None,
        ),
    )
    assert type(page.transfers[0].amount) is int
    assert page.transfers[0].classification == "usdt"


def test_trc20_transactions_paging_approvals_and_counterfeits() -> None:
    body = load(TRC20_LIST)
    real = body["data"][0]
    approval = {**real, "type": "Approval"}
    fake = {**real, "token_info": {**real["token_info"], "address": COUNTERFEIT}, "value": "5"}
    body["data"] = [approval, real, fake]
    body["meta"] = {"at": 1, "page_size": 3, "fingerprint": "abc", "links": {"next": "https://x"}}
    page = parse_trc20_transactions(body)
    assert page.fingerprint == "abc"
    assert [t.classification for t in page.transfers] == ["usdt", "counterfeit"]
    assert page.transfers[1].contract == COUNTERFEIT
    assert page.transfers[1].amount == 5


def test_trc20_transactions_value_must_be_an_integer_string() -> None:
    body = load(TRC20_LIST)
    body["data"][0]["value"] = "195.17"
    with pytest.raises(MalformedResponse, match="value"):
        parse_trc20_transactions(body)


# --- /v1/contracts/{contract}/events -------------------------------------------------------


def test_contract_events_fixture() -> None:
    page = parse_contract_events(load(EVENTS))
    assert page.fingerprint is not None and page.fingerprint.startswith("7dveEb1DxX4L2Y6qWLhPFmx9")
    assert page.transfers == (
        Trc20Transfer(
            tx_id="1d8e417344c69d0355fcd6f71aae6575aec4911ffb706a2d3169e43728d6a2e2",
            contract=MAINNET_USDT,
            from_="TA5WVDb8QG5SoPNk1HCnombmkS9nWqH9LR",
            to="TSHfFTij9Ch7MEcs8c67b9iPTCYmxrwsVV",
            amount=1_399_000_000,
            block_timestamp=1_788_431_625_000,
            index=0,
            block=85_919_983,
        ),
        Trc20Transfer(
            tx_id="0ec21a086bbaf72740699834ab13f4db482d64264c99095ae869e237e4ca4ce2",
            contract=MAINNET_USDT,
            from_=from_hex("0xbe090b720b5228f04049fbe2ef815da7b89f6277"),
            to=from_hex("0xac9e825d1245a117fbd24989a9a4a65520ea93ea"),
            amount=2_430_000_000,
            block_timestamp=1_788_431_625_000,
            index=0,
            block=85_919_983,
        ),
    )


def test_contract_events_accept_base58_and_positional_results_and_skip_other_events() -> None:
    body = load(EVENTS)
    first, second = body["data"]
    first["result"] = {
        "0": "TA5WVDb8QG5SoPNk1HCnombmkS9nWqH9LR",
        "1": "41b2ff692d318825a41b5668c4cefa263e8cdcc82e",
        "2": "7",
    }
    second["event_name"] = "Approval"
    first["event_index"] = 3
    first["unexpected_field"] = {"anything": [1, 2]}
    (transfer,) = parse_contract_events(body).transfers
    assert (transfer.from_, transfer.to, transfer.amount, transfer.index) == (
        "TA5WVDb8QG5SoPNk1HCnombmkS9nWqH9LR",
        "TSHfFTij9Ch7MEcs8c67b9iPTCYmxrwsVV",
        7,
        3,
    )


def test_counterfeit_event_is_recorded_but_never_credited() -> None:
    body = load(EVENTS)
    body["data"][0]["contract_address"] = COUNTERFEIT
    fake, real = parse_contract_events(body).transfers
    assert fake.counterfeit and fake.classification == "counterfeit"
    assert fake.amount == 1_399_000_000 and fake.to == "TSHfFTij9Ch7MEcs8c67b9iPTCYmxrwsVV"
    assert not real.counterfeit
    with pytest.raises(CounterfeitTransfer, match=COUNTERFEIT):
        fake.observed(confirmations=19)


def test_malformed_counterfeit_row_is_dropped_but_a_malformed_usdt_row_is_refused() -> None:
    body = load(EVENTS)
    body["data"][0]["contract_address"] = COUNTERFEIT
    body["data"][0]["result"]["value"] = "not a number"
    assert len(parse_contract_events(body).transfers) == 1
    body["data"][0]["contract_address"] = MAINNET_USDT
    with pytest.raises(MalformedResponse, match="value"):
        parse_contract_events(body)


def test_nile_contract_counts_only_on_testnet() -> None:
    body = load(EVENTS)
    for row in body["data"]:
        row["contract_address"] = NILE_USDT
    assert all(t.counterfeit for t in parse_contract_events(body).transfers)
    assert not any(t.counterfeit for t in parse_contract_events(body, network="testnet").transfers)
    assert all(t.counterfeit for t in parse_contract_events(load(EVENTS), network="testnet").transfers)
    assert is_usdt(USDT_TRC20.contract or "") and not is_usdt(NILE_USDT)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"success": False, "error": "limit exceeded", "statusCode": 429},
        {"data": {"not": "a list"}},
        {"data": ["row"]},
        {"data": [], "meta": {"fingerprint": 12}},
    ],
)
def test_bad_pages_are_refused(body: object) -> None:
    with pytest.raises(MalformedResponse):
        parse_contract_events(body)


def test_empty_page() -> None:
    page = parse_contract_events({"data": [], "success": True, "meta": {"at": 1, "page_size": 0}})
    assert page.transfers == () and page.fingerprint is None


# --- Trc20Transfer.observed --------------------------------------------------------------


def test_observed_transfer() -> None:
    transfer = parse_contract_events(load(EVENTS)).transfers[0]
    assert transfer.observed(confirmations=3) == ObservedTransfer(
        chain=Chain.TRON,
        tx_id="1d8e417344c69d0355fcd6f71aae6575aec4911ffb706a2d3169e43728d6a2e2",
        index=0,
        asset="USDT_TRC20",
        amount=1_399_000_000,
        destination="TSHfFTij9Ch7MEcs8c67b9iPTCYmxrwsVV",
        memo=None,
        block=85_919_983,
        confirmations=3,
        sender="TA5WVDb8QG5SoPNk1HCnombmkS9nWqH9LR",
        block_time=datetime(2026, 9, 3, 10, 33, 45, tzinfo=UTC),  # block_timestamp 1788431625000
    )
    assert transfer.observed(3).key == ("tron", transfer.tx_id, 0)


# --- /wallet[solidity]/gettransactioninfobyid ----------------------------------------------


def test_contract_call_receipt_fixture() -> None:
    info = parse_transaction_info(load(CONTRACT_CALL), network="testnet")
    assert info == TxInfo(
        tx_id="01b4cde4197b9d1a1ff09ef5d2b1d939d3ec2401b3f002ebd0802c0f30a6e4ca",
        block_number=66_985_120,
        block_timestamp=1_777_437_762_000,
        result="SUCCESS",
        transfers=(),  # its only log is another event (topic0 c66625d0…), not a Transfer
    )
    assert info.succeeded and not info.failed and info.credits == ()


def test_trx_transfer_receipt_fixture_has_no_result() -> None:
    info = parse_transaction_info(load(TRX_TRANSFER))
    assert info == TxInfo(
        tx_id="c558bd35978267d8999baf6148703cbc94786f3f2e22893637588ca05437d7f0",
        block_number=27_662_687,
        block_timestamp=1_656_580_470_000,
        result=None,
        transfers=(),
    )
    assert not info.succeeded and not info.failed and info.credits == ()


def test_receipts_by_block_fixture() -> None:
    infos = parse_transaction_infos(load(BY_BLOCK))
    assert [(i.tx_id, i.block_number, i.result) for i in infos] == [
        ("ff44a2823a870c12f12a4ca6e7647650356bc2bb5e02c5855312cf2db4c950c1", 66_987_565, None),
        ("0419405287081aa44f4d78725e6fabac8d14e71abf9e28825ad4f4e61a5bccb7", 66_987_565, None),
    ]


@pytest.mark.parametrize("body", [{}, None, "", b""])
def test_missing_receipt_means_not_yet_known(body: object) -> None:
    assert parse_transaction_info(body) is None


def _usdt_receipt(result: str = "SUCCESS", contract_hex: str = USDT_LOG_ADDRESS) -> dict[str, Any]:
    """The recorded contract-call receipt, its log turned into a USDT Transfer of 1.5 USDT
    between two vector addresses."""
    body: dict[str, Any] = copy.deepcopy(load(CONTRACT_CALL))
    body["receipt"]["result"] = result
    body["log"] = [
        copy.deepcopy(body["log"][0]),  # another event first: the Transfer is log #1
        {
            "address": contract_hex,
            "topics": [
                TRANSFER_TOPIC,
                _word("01311788a9736dcc38cf6d53342c076c38e95ef2"),
                _word("b2ff692d318825a41b5668c4cefa263e8cdcc82e"),
            ],
            "data": _word(f"{1_500_000:x}"),
        },
    ]
    return body


def test_usdt_transfer_extracted_from_receipt_logs() -> None:
    assert from_hex("41" + USDT_LOG_ADDRESS) == MAINNET_USDT
    info = parse_transaction_info(_usdt_receipt())
    assert info is not None and info.succeeded
    expected = Trc20Transfer(
        tx_id="01b4cde4197b9d1a1ff09ef5d2b1d939d3ec2401b3f002ebd0802c0f30a6e4ca",
        contract=MAINNET_USDT,
        from_="TA5WVDb8QG5SoPNk1HCnombmkS9nWqH9LR",
        to="TSHfFTij9Ch7MEcs8c67b9iPTCYmxrwsVV",
        amount=1_500_000,
        block_timestamp=1_777_437_762_000,
        index=1,
        block=66_985_120,
    )
    assert info.transfers == (expected,)
    assert info.credits == (expected,)


@pytest.mark.parametrize("result", ["REVERT", "OUT_OF_ENERGY", "OUT_OF_TIME", "TRANSFER_FAILED"])
def test_failed_receipt_credits_nothing(result: str) -> None:
    info = parse_transaction_info(_usdt_receipt(result))
    assert info is not None
    assert info.result == result
    assert info.failed and not info.succeeded
    assert info.credits == ()


def test_top_level_failed_flag_without_receipt_result_is_a_failure() -> None:
    body = _usdt_receipt()
    del body["receipt"]["result"]
    body["result"] = "FAILED"
    info = parse_transaction_info(body)
    assert info is not None and info.failed and info.result == "FAILED"


def test_counterfeit_transfer_log_is_kept_apart() -> None:
    info = parse_transaction_info(_usdt_receipt(contract_hex="e9e9d3001799a9fa785bed8cf3a7995e8aebb8bd"))
    assert info is not None
    (fake,) = info.transfers
    assert fake.counterfeit and fake.contract == COUNTERFEIT
    assert info.credits == ()


def test_logs_that_are_not_trc20_transfers_are_ignored() -> None:
    body = _usdt_receipt()
    nft = copy.deepcopy(body["log"][1])
    nft["topics"].append(_word("01"))  # TRC-721 Transfer: the token id is a fourth topic
    nft["data"] = ""
    body["log"][1] = nft
    info = parse_transaction_info(body)
    assert info is not None and info.transfers == ()


def test_garbage_transfer_log_of_a_counterfeit_cannot_stop_the_parser() -> None:
    # the recorded log (a Nile contract) with a Transfer topic0: its data is truncated ("...")
    body = copy.deepcopy(load(CONTRACT_CALL))
    body["log"][0]["topics"][0] = TRANSFER_TOPIC
    info = parse_transaction_info(body)
    assert info is not None and info.transfers == ()
    body = _usdt_receipt()
    body["log"][1]["data"] = body["log"][1]["data"] + "..."
    with pytest.raises(MalformedResponse, match=r"log\.data"):
        parse_transaction_info(body)


@pytest.mark.parametrize(
    "change",
    [
        {"id": "xyz"},
        {"blockNumber": -1},
        {"blockNumber": 1.5},
        {"receipt": []},
        {"receipt": {"result": 1}},
        {"log": {}},
    ],
)
def test_bad_receipts_are_refused(change: dict[str, object]) -> None:
    body = {**load(CONTRACT_CALL), **change}
    with pytest.raises(MalformedResponse):
        parse_transaction_info(body)


def test_transaction_id_is_lower_case() -> None:
    body = load(TRX_TRANSFER)
    body["id"] = body["id"].upper()
    info = parse_transaction_info(body)
    assert info is not None and info.tx_id == body["id"].lower()


# --- /wallet[solidity]/getnowblock ---------------------------------------------------------


def test_getnowblock_fixture() -> None:
    assert parse_block_number(load(NOW_BLOCK)) == 66_987_627


@pytest.mark.parametrize(
    "body", [{}, {"block_header": {}}, {"block_header": {"raw_data": {"number": "x"}}}, []]
)
def test_bad_blocks_are_refused(body: object) -> None:
    with pytest.raises(MalformedResponse):
        parse_block_number(body)


def test_block_zero_omits_its_number() -> None:
    assert parse_block_number({"block_header": {"raw_data": {"timestamp": 1}}}) == 0


# --- the JSONC loader used above ---------------------------------------------------------


def test_strip_comments_leaves_strings_alone() -> None:
    text = '{"url": "https://a/b", "c": "/* not */", "e": "q\\"//"} // tail\n/* block */'
    assert json.loads(strip_comments(text)) == {"url": "https://a/b", "c": "/* not */", "e": 'q"//'}
    raw = (FIXTURES / EVENTS).read_text()
    assert json.loads(strip_comments(raw)) == json.loads(raw)  # URLs with // survive
    assert load(CONTRACT_CALL)["log"][0]["data"].endswith("...")
