"""The TON simulator's records in TON Center API v3's JSON shapes.

Field names and types follow the recorded responses in tests/fixtures/ton: `lt`,
`created_lt`, `value` and balances as strings, `now` as a number, hashes in standard
base64, addresses raw with upper-case hex, bodies as base64 BOCs with `opcode` as
"0x%08x" (null for an empty body), `decoded` a text comment or null.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any

from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import cell_to_boc
from krypton.adapters.chains.ton.comments import text_comment
from krypton.devnet import ton_bodies as bodies
from krypton.devnet.faults import Fault
from krypton.devnet.ton import MasterchainBlock, TonChain, TonMessage, TonTransaction

MASTERCHAIN_SHARD = "8000000000000000"
GLOBAL_ID = -217  # neither mainnet (-239) nor testnet (-3)


def raw(address: TonAddress) -> str:
    return f"{address.workchain}:{address.hash.hex().upper()}"


def friendly(chain: TonChain, address: TonAddress) -> str:
    return address.friendly(bounceable=chain.is_contract(address))


def address_book(chain: TonChain, addresses: Iterable[TonAddress | None]) -> dict[str, Any]:
    return {raw(a): {"user_friendly": friendly(chain, a), "domain": None}
            for a in sorted({a for a in addresses if a is not None}, key=lambda a: a.raw)}


def transaction(tx: TonTransaction) -> dict[str, Any]:
    return {
        "account": raw(tx.account),
        "hash": tx.hash,
        "lt": str(tx.lt),
        "now": tx.now,
        "mc_block_seqno": tx.mc_block_seqno,
        "trace_id": tx.hash,
        "prev_trans_hash": tx.prev_hash,
        "prev_trans_lt": str(tx.prev_lt),
        "orig_status": tx.orig_status,
        "end_status": tx.end_status,
        "total_fees": "0",
        "description": _description(tx),
        # The devnet has no shard blocks: the masterchain block stands in for one.
        "block_ref": None if tx.mc_block_seqno is None else
        {"workchain": 0, "shard": MASTERCHAIN_SHARD, "seqno": tx.mc_block_seqno},
        "in_msg": message(tx.in_msg),
        "out_msgs": [message(m) for m in tx.out_msgs],
        "account_state_before": _state(tx, "before", tx.balance_before, tx.orig_status),
        "account_state_after": _state(tx, "after", tx.balance_after, tx.end_status),
    }


def transaction_addresses(tx: TonTransaction) -> list[TonAddress | None]:
    messages = (tx.in_msg, *tx.out_msgs)
    return [tx.account, *(m.source for m in messages), *(m.destination for m in messages)]


def message(msg: TonMessage) -> dict[str, Any]:
    external = msg.source is None
    op = bodies.opcode(msg.body)
    return {
        "hash": msg.hash,
        "source": None if msg.source is None else raw(msg.source),
        "destination": raw(msg.destination),
        "value": None if msg.value is None else str(msg.value),
        "fwd_fee": None if external else "0",
        "ihr_fee": None if external else "0",
        "created_lt": None if msg.created_lt is None else str(msg.created_lt),
        "created_at": None if msg.created_at is None else str(msg.created_at),
        "opcode": None if op is None else f"0x{op:08x}",
        "ihr_disabled": None if external else True,
        "bounce": msg.bounce,
        "bounced": msg.bounced,
        "import_fee": "0" if external else None,
        "message_content": {
            "hash": _cell_hash(msg.body),
            "body": cell_to_boc(msg.body),
            "decoded": _decoded(msg.body),
        },
        "init_state": None if msg.init is None else _init_state(msg.init),
    }


def block(chain_block: MasterchainBlock) -> dict[str, Any]:
    ref = {"workchain": -1, "shard": MASTERCHAIN_SHARD, "seqno": chain_block.seqno}
    return {
        **ref,
        "root_hash": chain_block.root_hash,
        "file_hash": chain_block.file_hash,
        "global_id": GLOBAL_ID,
        "version": 0,
        "after_merge": False,
        "before_split": False,
        "after_split": False,
        "want_merge": False,
        "want_split": False,
        "key_block": chain_block.seqno == 1,
        "vert_seqno_incr": False,
        "flags": 1,
        "gen_utime": str(chain_block.gen_utime),
        "start_lt": str(chain_block.start_lt),
        "end_lt": str(chain_block.end_lt),
        "validator_list_hash_short": 0,
        "gen_catchain_seqno": 0,
        "min_ref_mc_seqno": max(1, chain_block.seqno - 1),
        "prev_key_block_seqno": 1,
        "vert_seqno": 0,
        "master_ref_seqno": 0,
        "rand_seed": chain_block.root_hash,
        "created_by": chain_block.file_hash,
        "tx_count": chain_block.tx_count,
        "masterchain_block_ref": ref,
        "prev_blocks": [] if chain_block.seqno <= 1 else [{**ref, "seqno": chain_block.seqno - 1}],
    }


def code_hash(kind: str) -> str:
    """A stable stand-in hash (the devnet runs no contract code)."""
    digest = hashlib.sha256(f"krypton-devnet/jetton-wallet-code/{kind}".encode()).digest()
    return base64.b64encode(digest).decode("ascii")


def _description(tx: TonTransaction) -> dict[str, Any]:
    internal = tx.in_msg.source is not None
    description: dict[str, Any] = {
        "type": "ord",
        "aborted": tx.aborted,
        "destroyed": False,
        "credit_first": internal and not tx.in_msg.bounce,
        "storage_ph": {"status_change": "unchanged", "storage_fees_collected": "0"},
        "compute_ph": _compute(tx),
    }
    if internal:
        description["credit_ph"] = {"credit": str(tx.credit or 0)}
    if tx.action_result_code is not None:  # a wallet's action phase that failed: nothing sent
        description["action"] = {"valid": True, "success": False, "no_funds": True,
                                 "result_code": tx.action_result_code, "tot_actions": 0, "msgs_created": 0,
                                 "status_change": "unchanged", "total_fwd_fees": "0",
                                 "total_action_fees": "0", "skipped_actions": 0, "spec_actions": 0}
    # An aborted transaction has no action phase: its only out message is the bounce.
    elif tx.out_msgs and not tx.aborted:
        count = len(tx.out_msgs)
        description["action"] = {"valid": True, "success": True, "no_funds": False, "result_code": 0,
                                 "tot_actions": count, "msgs_created": count, "status_change": "unchanged",
                                 "total_fwd_fees": "0", "total_action_fees": "0", "skipped_actions": 0,
                                 "spec_actions": 0}
    if tx.aborted and tx.out_msgs:
        description["bounce"] = {"type": "ok", "fwd_fees": "0", "msg_fees": "0"}
    return description


def _compute(tx: TonTransaction) -> dict[str, Any]:
    """The compute phase. An aborted transaction without an exit code is an account with no
    code to run (skipped, as for the undeployed account of the recorded fixture); a contract
    that refused the message (a fee collector) ran and failed with its exit code."""
    if tx.aborted and tx.exit_code is None:
        return {"type": "skipped", "skip_reason": "no_state"}
    exit_code = tx.exit_code or 0
    return {"type": "vm", "success": exit_code == 0 and not tx.aborted, "exit_code": exit_code,
            "gas_used": "0", "gas_fees": "0", "vm_steps": 0}


def _init_state(init: Cell) -> dict[str, Any]:
    """The StateInit a message carries, in the shape of message_content."""
    return {"hash": _cell_hash(init), "body": cell_to_boc(init), "decoded": None}


def _state(tx: TonTransaction, when: str, balance: int, status: str) -> dict[str, Any]:
    digest = hashlib.sha256(f"{tx.hash}/{when}".encode()).digest()
    return {"hash": base64.b64encode(digest).decode("ascii"),
            "balance": None if status == "nonexist" else str(balance),
            "account_status": None if status == "nonexist" else status,
            "frozen_hash": None, "code_hash": None, "data_hash": None}


def _decoded(body: Cell) -> dict[str, Any] | None:
    text = text_comment(body)
    return None if text is None else {"type": "text_comment", "comment": text}


def _cell_hash(body: Cell) -> str:
    untyped: Any = body
    return base64.b64encode(untyped.hash).decode("ascii")


def told(rendered: list[dict[str, Any]], lie: Fault | None) -> list[dict[str, Any]]:
    """Rendered transactions as a lying provider tells them (devnet/faults.py "lie"): "omit"
    leaves out every transaction an internal message brought in; "amount" adds the lie's delta
    to each such message's value (TON itself: a jetton's amount sits in the body's BOC)."""
    if lie is None or lie.lie not in ("omit", "amount"):
        return rendered
    if lie.lie == "omit":
        return [tx for tx in rendered if tx["in_msg"]["source"] is None]
    return [_more(tx, lie.by) if tx["in_msg"]["source"] is not None else tx for tx in rendered]


def told_head(rendered: dict[str, Any], lie: Fault | None) -> dict[str, Any]:
    """A masterchain block as a provider with a stale head tells it: `delta` blocks back."""
    if lie is None or lie.lie != "stale_head":
        return rendered
    return {**rendered, "seqno": max(1, rendered["seqno"] - lie.by)}


def _more(tx: dict[str, Any], delta: int) -> dict[str, Any]:
    in_msg = {**tx["in_msg"], "value": str(int(tx["in_msg"]["value"] or 0) + delta)}
    description = dict(tx["description"])
    if "credit_ph" in description:
        description["credit_ph"] = {"credit": str(int(description["credit_ph"]["credit"]) + delta)}
    return {**tx, "in_msg": in_msg, "description": description}
