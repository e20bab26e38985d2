"""Pure parsers for the Tron HTTP APIs Krypton reads (TronGrid v1 and the node's /wallet API).

Each parser takes the decoded JSON body (what `response.json()` returns) and gives typed
records; none does I/O. A body without the documented shape raises `MalformedResponse`.

Rows from the real USDT contract must decode, or the whole response is refused. Rows from
any other contract are counterfeits whose fields anyone can shape: they are kept (marked
`counterfeit=True`) when they decode and dropped when they do not, so a hostile token can
neither be credited nor stop the watcher.

- `parse_trc20_transactions`: GET /v1/accounts/{address}/transactions/trc20
- `parse_contract_events`:    GET /v1/contracts/{contract}/events?event_name=Transfer
- `parse_transaction_info`:   /wallet[solidity]/gettransactioninfobyid (None = not known yet)
- `parse_transaction_infos`:  /wallet[solidity]/gettransactioninfobyblocknum
- `parse_block_number`:       /wallet[solidity]/getnowblock
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

from krypton.adapters.chains.tron import address
from krypton.adapters.chains.tron.transfer import TRANSFER_TOPIC, Network, Trc20Transfer, is_usdt

SUCCESS = "SUCCESS"
_TX_ID = re.compile(r"[0-9a-fA-F]{64}")
_WORD = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_UINT = re.compile(r"[0-9]+")


class MalformedResponse(ValueError):
    """The provider's answer does not have the documented shape (worth a retry, then an alert)."""


@dataclass(frozen=True, slots=True)
class TransferPage:
    """One page of transfers; pass `fingerprint` back to TronGrid for the next (None: last page)."""

    transfers: tuple[Trc20Transfer, ...]
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class TxInfo:
    """A transaction's receipt. `result` is receipt.result ("SUCCESS", "REVERT", "OUT_OF_ENERGY",
    …), or None when the receipt has none (plain TRX transfers carry no result)."""

    tx_id: str
    block_number: int | None
    block_timestamp: int | None
    result: str | None
    transfers: tuple[Trc20Transfer, ...]

    @property
    def succeeded(self) -> bool:
        return self.result == SUCCESS

    @property
    def failed(self) -> bool:
        """True for REVERT, OUT_OF_ENERGY and every other non-SUCCESS result: not paid."""
        return self.result is not None and self.result != SUCCESS

    @property
    def credits(self) -> tuple[Trc20Transfer, ...]:
        """The USDT transfers this receipt proves, if any: genuine ones of a successful call."""
        if not self.succeeded:
            return ()
        return tuple(t for t in self.transfers if not t.counterfeit)


# --- TronGrid v1 ---------------------------------------------------------------------------


def parse_trc20_transactions(body: object, network: Network = "mainnet") -> TransferPage:
    """GET /v1/accounts/{address}/transactions/trc20. Rows whose type is not "Transfer"
    (approvals) are skipped. The endpoint gives no log index and no block number: every
    transfer has index 0 and block None."""
    rows, fingerprint = _page(body)
    transfers = []
    for row in rows:
        item = _mapping(row, "trc20 transaction")
        if item.get("type", "Transfer") != "Transfer":
            continue
        contract = _address(
            _mapping(item.get("token_info"), "token_info").get("address"), "token_info.address"
        )
        transfer = _decode(contract, network, partial(_list_row, item, contract))
        if transfer is not None:
            transfers.append(transfer)
    return TransferPage(tuple(transfers), fingerprint)


def parse_contract_events(body: object, network: Network = "mainnet") -> TransferPage:
    """GET /v1/contracts/{contract}/events?event_name=Transfer. Events of another name are
    skipped; addresses in `result` may be 0x-hex, 41-hex or base58."""
    rows, fingerprint = _page(body)
    transfers = []
    for row in rows:
        item = _mapping(row, "event")
        name = item.get("event_name")
        if name != "Transfer" and not (name is None and str(item.get("event", "")).startswith("Transfer(")):
            continue
        contract = _address(item.get("contract_address"), "contract_address")
        transfer = _decode(contract, network, partial(_event_row, item, contract))
        if transfer is not None:
            transfers.append(transfer)
    return TransferPage(tuple(transfers), fingerprint)


# --- node HTTP API -------------------------------------------------------------------------


def parse_transaction_info(body: object, network: Network = "mainnet") -> TxInfo | None:
    """/wallet[solidity]/gettransactioninfobyid. An empty answer (`{}`, null or nothing) means
    the node does not know the transaction YET: ask again later; it is not a failure."""
    if body is None or body == {} or body == b"" or body == "":
        return None
    info = _mapping(body, "transaction info")
    tx_id = _tx_id(info.get("id"))
    block = _optional_uint(info.get("blockNumber"), "blockNumber")
    timestamp = _optional_uint(info.get("blockTimeStamp"), "blockTimeStamp")
    receipt = _mapping(info.get("receipt", {}), "receipt")
    result = receipt.get("result")
    if result is None and info.get("result") == "FAILED":  # top-level flag of a failed call
        result = "FAILED"
    if result is not None and not isinstance(result, str):
        raise MalformedResponse(f"receipt.result should be a string, got {result!r}")
    transfers = []
    for position, log in enumerate(_sequence(info.get("log", []), "log")):
        transfer = _log_transfer(log, position, tx_id, block, timestamp, network)
        if transfer is not None:
            transfers.append(transfer)
    return TxInfo(tx_id, block, timestamp, result, tuple(transfers))


def parse_transaction_infos(body: object, network: Network = "mainnet") -> list[TxInfo]:
    """/wallet[solidity]/gettransactioninfobyblocknum: every receipt of one block."""
    infos = (parse_transaction_info(item, network) for item in _sequence(body, "transaction infos"))
    return [info for info in infos if info is not None]


def parse_block_number(body: object) -> int:
    """/wallet[solidity]/getnowblock: the height of the returned block."""
    header = _mapping(_mapping(body, "block").get("block_header"), "block_header")
    raw = _mapping(header.get("raw_data"), "block_header.raw_data")
    # Protobuf JSON omits zero values, so a missing number is block 0.
    return _uint(raw.get("number", 0), "block_header.raw_data.number")


# --- rows ----------------------------------------------------------------------------------


def _list_row(item: Mapping[str, object], contract: str) -> Trc20Transfer:
    return Trc20Transfer(
        tx_id=_tx_id(item.get("transaction_id")),
        contract=contract,
        from_=_address(item.get("from"), "from"),
        to=_address(item.get("to"), "to"),
        amount=_uint(item.get("value"), "value"),
        block_timestamp=_uint(item.get("block_timestamp"), "block_timestamp"),
    )


def _event_row(item: Mapping[str, object], contract: str) -> Trc20Transfer:
    result = _mapping(item.get("result"), "result")

    def field(name: str, position: str) -> object:
        return result[name] if name in result else result.get(position)

    return Trc20Transfer(
        tx_id=_tx_id(item.get("transaction_id")),
        contract=contract,
        from_=_address(field("from", "0"), "result.from"),
        to=_address(field("to", "1"), "result.to"),
        amount=_uint(field("value", "2"), "result.value"),
        block_timestamp=_uint(item.get("block_timestamp"), "block_timestamp"),
        index=_uint(item.get("event_index", 0), "event_index"),
        block=_optional_uint(item.get("block_number"), "block_number"),
    )


def _log_transfer(
    log: object, position: int, tx_id: str, block: int | None, timestamp: int | None, network: Network
) -> Trc20Transfer | None:
    """A receipt log as a TRC-20 Transfer, or None when it is another event (or an NFT
    Transfer, which has a fourth topic). The log address is 20-byte hex without 41."""
    entry = _mapping(log, "log entry")
    topics = _sequence(entry.get("topics", []), "log.topics")
    first = topics[0] if topics else None
    if not isinstance(first, str) or first.lower().removeprefix("0x") != TRANSFER_TOPIC or len(topics) != 3:
        return None
    raw = _text(entry.get("address"), "log.address").removeprefix("0x")
    contract = _address(raw if len(raw) == 42 else "41" + raw, "log.address")

    def decode() -> Trc20Transfer:
        return Trc20Transfer(
            tx_id=tx_id,
            contract=contract,
            from_=_topic_address(topics[1]),
            to=_topic_address(topics[2]),
            amount=int(_word(entry.get("data"), "log.data"), 16),
            block_timestamp=timestamp,
            index=position,
            block=block,
        )

    return _decode(contract, network, decode)


def _decode(contract: str, network: Network, build: Callable[[], Trc20Transfer]) -> Trc20Transfer | None:
    genuine = is_usdt(contract, network)
    try:
        transfer = build()
    except MalformedResponse:
        if genuine:
            raise
        return None  # a counterfeit token's garbage: nothing to record
    return transfer if genuine else replace(transfer, counterfeit=True)


# --- shapes --------------------------------------------------------------------------------


def _page(body: object) -> tuple[Sequence[object], str | None]:
    page = _mapping(body, "TronGrid response")
    if page.get("success") is False:
        raise MalformedResponse(f"TronGrid reported an error: {page.get('error', page)!r}")
    rows = _sequence(page.get("data"), "data")
    meta = page.get("meta")
    fingerprint = _mapping(meta, "meta").get("fingerprint") if meta is not None else None
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise MalformedResponse(f"meta.fingerprint should be a string, got {fingerprint!r}")
    return rows, fingerprint or None


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise MalformedResponse(f"{what} should be a JSON object, got {type(value).__name__}")
    return value


def _sequence(value: object, what: str) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise MalformedResponse(f"{what} should be a JSON array, got {type(value).__name__}")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedResponse(f"{what} should be a string, got {value!r}")
    return value


def _uint(value: object, what: str) -> int:
    """A non-negative integer given as a JSON number or a decimal string (never a float)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _UINT.fullmatch(value):
        return int(value)
    raise MalformedResponse(f"{what} should be a non-negative integer, got {value!r}")


def _optional_uint(value: object, what: str) -> int | None:
    return None if value is None else _uint(value, what)


def _address(value: object, what: str) -> str:
    try:
        return address.normalise(_text(value, what))
    except address.InvalidAddress as exc:
        raise MalformedResponse(f"{what}: {exc.message}") from None


def _tx_id(value: object) -> str:
    text = _text(value, "transaction id")
    if not _TX_ID.fullmatch(text):
        raise MalformedResponse(f"transaction id should be 64 hex digits, got {text!r}")
    return text.lower()


def _word(value: object, what: str) -> str:
    match = _WORD.fullmatch(_text(value, what))
    if match is None:
        raise MalformedResponse(f"{what} should be one 32-byte hex word, got {value!r}")
    return match.group(1)


def _topic_address(value: object) -> str:
    word = _word(value, "log topic")
    if word[:24].strip("0"):
        raise MalformedResponse(f"log topic {word} is not a padded 20-byte address")
    return address.from_bytes(bytes.fromhex(word[24:]))
