"""The Tron simulator's records in TronGrid v1 and java-tron HTTP JSON shapes.

Shapes follow tests/fixtures/tron: TronGrid rows carry base58 addresses (per-account list)
or "0x" + 20-byte hex in event results, values as decimal strings and timestamps in ms;
node receipts give `log[].address` as bare 20-byte hex, topics as 64 hex digits without
0x, `contract_address` as "41" + hex, and a plain-failure flag `result: "FAILED"` beside
receipt.result on failed calls. Protobuf JSON omits zero and empty fields, so block 0
has no `number` and a block without transactions no `transactions`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from krypton.adapters.chains.tron import address
from krypton.adapters.chains.tron.transfer import TRANSFER_TOPIC
from krypton.devnet.faults import Fault
from krypton.devnet.tron import Inclusion, TronBlock, TronTx

TRANSFER_SELECTOR = "a9059cbb"  # transfer(address,uint256)
EVENT_SIGNATURE = "Transfer(address indexed from, address indexed to, uint256 value)"
ENERGY_USED = 31_895  # about what a USDT transfer to an existing holder burns
ENERGY_PRICE = 100  # sun per unit of energy
NET_USAGE = 345
NET_PRICE = 1000
FAILURES = {
    "REVERT": "REVERT opcode executed",
    "OUT_OF_ENERGY": "Not enough energy for 'SSTORE' operation executing",
}


def token_info(contract: str) -> dict[str, Any]:
    # The counterfeit token copies USDT's metadata, as real scam tokens do: only the
    # contract address tells them apart.
    return {"symbol": "USDT", "address": contract, "decimals": 6, "name": "Tether USD"}


def trc20_row(inclusion: Inclusion) -> dict[str, Any]:
    tx = inclusion.tx
    return {
        "transaction_id": tx.tx_id,
        "token_info": token_info(tx.contract),
        "block_timestamp": inclusion.block.timestamp,
        "from": tx.from_,
        "to": tx.to,
        "type": "Transfer",
        "value": str(tx.amount),
    }


def event_row(inclusion: Inclusion) -> dict[str, Any]:
    tx = inclusion.tx
    source, target = _evm(tx.from_), _evm(tx.to)
    return {
        "block_number": inclusion.block.number,
        "block_timestamp": inclusion.block.timestamp,
        "caller_contract_address": tx.contract,
        "contract_address": tx.contract,
        "event_index": 0,
        "event_name": "Transfer",
        "result": {"0": source, "1": target, "2": str(tx.amount),
                   "from": source, "to": target, "value": str(tx.amount)},
        "result_type": {"from": "address", "to": "address", "value": "uint256"},
        "event": EVENT_SIGNATURE,
        "transaction_id": tx.tx_id,
    }


def block(chain_block: TronBlock) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "txTrieRoot": _digest("trie", chain_block.block_id),
        "witness_address": chain_block.witness,
        "parentHash": chain_block.parent_id,
        "version": 31,
        "timestamp": chain_block.timestamp,
    }
    if chain_block.number:
        raw = {"number": chain_block.number, **raw}
    body: dict[str, Any] = {
        "blockID": chain_block.block_id,
        "block_header": {"raw_data": raw, "witness_signature": _digest("sig", chain_block.block_id) * 2},
    }
    if chain_block.txs:
        body["transactions"] = [_transaction(tx, chain_block) for tx in chain_block.txs]
    return body


def tx_info(inclusion: Inclusion) -> dict[str, Any]:
    tx, chain_block = inclusion.tx, inclusion.block
    energy_fee, net_fee = ENERGY_USED * ENERGY_PRICE, NET_USAGE * NET_PRICE
    info: dict[str, Any] = {
        "id": tx.tx_id,
        "fee": energy_fee + net_fee,
        "blockNumber": chain_block.number,
        "blockTimeStamp": chain_block.timestamp,
        "contractResult": ["0" * 63 + "1" if tx.succeeded else ""],
        "contract_address": "41" + address.to_hex(tx.contract),
        "receipt": {"energy_fee": energy_fee, "energy_usage_total": ENERGY_USED, "net_fee": net_fee,
                    "result": tx.result},
    }
    if tx.succeeded:
        info["log"] = [{
            "address": address.to_hex(tx.contract),
            "topics": [TRANSFER_TOPIC, _word(address.to_hex(tx.from_)), _word(address.to_hex(tx.to))],
            "data": f"{tx.amount:064x}",
        }]
    else:
        info["result"] = "FAILED"
        info["resMessage"] = FAILURES[tx.result].encode("ascii").hex()
    return info


def _transaction(tx: TronTx, chain_block: TronBlock) -> dict[str, Any]:
    data = TRANSFER_SELECTOR + _word(address.to_hex(tx.to)) + f"{tx.amount:064x}"
    return {
        "ret": [{"contractRet": tx.result}],
        "txID": tx.tx_id,
        "raw_data": {
            "contract": [{
                "parameter": {
                    "value": {"data": data, "owner_address": "41" + address.to_hex(tx.from_),
                              "contract_address": "41" + address.to_hex(tx.contract)},
                    "type_url": "type.googleapis.com/protocol.TriggerSmartContract",
                },
                "type": "TriggerSmartContract",
            }],
            "fee_limit": 100_000_000,
            "timestamp": chain_block.timestamp,
        },
    }


def _evm(base58: str) -> str:
    return "0x" + address.to_hex(base58)


def _word(hex20: str) -> str:
    return hex20.rjust(64, "0")


def _digest(label: str, block_id: str) -> str:
    return hashlib.sha256(f"{label}/{block_id}".encode()).hexdigest()


def told_row(row: dict[str, Any], lie: Fault | None) -> dict[str, Any] | None:
    """A TronGrid list row (trc20 or event) as a lying provider tells it (devnet/faults.py):
    None when it omits transfers, another value when it lies about amounts."""
    if lie is None or lie.lie == "stale_head":
        return row
    if lie.lie == "omit":
        return None
    if "result" in row:  # an event row: the value is named and numbered
        value = str(int(row["result"]["value"]) + lie.by)
        return {**row, "result": {**row["result"], "2": value, "value": value}}
    return {**row, "value": str(int(row["value"]) + lie.by)}


def told_info(info: dict[str, Any], lie: Fault | None) -> dict[str, Any]:
    """A receipt as a lying provider tells it: none at all ({}, as for an unknown transaction)
    or its Transfer logs' amounts `delta` more."""
    if lie is None or lie.lie == "stale_head":
        return info
    if lie.lie == "omit":
        return {}
    logs = [{**entry, "data": f"{int(entry['data'], 16) + lie.by:064x}"} for entry in info.get("log", [])]
    return {**info, "log": logs} if logs else info


def told_block(rendered: dict[str, Any], lie: Fault | None) -> dict[str, Any]:
    """A head block as a provider with a stale head tells it: `delta` blocks back."""
    if lie is None or lie.lie != "stale_head":
        return rendered
    raw = rendered["block_header"]["raw_data"]
    stale = {**raw, "number": max(0, raw.get("number", 0) - lie.by)}
    return {**rendered, "block_header": {**rendered["block_header"], "raw_data": stale}}


def stale_by(lie: Fault | None) -> int:
    """How many blocks behind the chain a lying provider's heads are (0: not stale)."""
    return lie.by if lie is not None and lie.lie == "stale_head" else 0
