"""The TON Center API v3 subset the devnet serves (mounted at /toncenter/api/v3).

    GET  /transactions?account=&hash=&start_lt=&end_lt=&start_utime=&end_utime=&limit=&offset=&sort=
    GET  /masterchainInfo
    GET  /jetton/wallets?address=&owner_address=&jetton_address=&exclude_zero_balance=&limit=&offset=
    POST /runGetMethod {address, method, stack}   (jetton masters, fee collectors, wallets)
    POST /message {boc}                           (sendBoc: an external to a wallet contract)
    GET  /transactionsByMessage?msg_hash=&direction=in

Like the real indexer, /transactions shows only transactions already in a masterchain
block (every one it returns has mc_block_seqno set), unless the app was built with
show_pending=True to exercise a watcher's handling of mc_block_seqno = null. Bad
parameters get 422 {"error": "..."}. A request may name one of several providers of the
chain (header X-Devnet-Provider): a lie armed for that name (devnet/faults.py) changes its
answers, so one provider can lie while the others tell the truth.

runGetMethod answers {"gas_used", "exit_code", "stack"} with stack entries as TON Center
v3 writes them: {"type": "num", "value": "0x1f"} (lower-case hex, "-0x…" when negative),
{"type": "slice" | "cell", "value": <base64 BOC>}. Jetton masters run get_wallet_address;
deployed jetton wallets run get_wallet_data (balance, owner, master, a stand-in code cell);
a deployed fee collector runs get_stats, get_config and get_fee(amount) (ton_collector.py),
taking its argument from the top of the stack (the LAST entry; the entries below it stay
on the answer's stack, as in TVM): no argument is exit 2 (stack underflow), a non-number
exit 7 (type check). Any other method is exit 11, as in TVM.

POST /message answers {"message_hash", "message_hash_norm"} (standard base64); an external
the wallet contract refuses (bad signature, seqno, wallet id, expired) is 422 {"error",
"exit_code"} and changes nothing, like a liteserver refusing to apply it. Wallet contracts
(ton_wallet.py) run seqno, get_public_key and get_subwallet_id.

An account with no code (no contract deployed there) gets 409 {"error": "..."}: TON Center
does not document its answer for that case (its v2 reference lists only an HTTP error for a
failed run), and 409 keeps it apart from a malformed request (422) while saying what is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from krypton.adapters.chains.ton.address import InvalidAddress, TonAddress, parse
from krypton.adapters.chains.ton.cells import (
    CellFormatError,
    Reader,
    address_cell,
    cell_from_boc,
    cell_to_boc,
)
from krypton.adapters.chains.ton.hashes import InvalidHash, canonical
from krypton.devnet import ton_collector as collector_logic
from krypton.devnet import toncenter_json as render
from krypton.devnet.devnet import Devnet
from krypton.devnet.faults import Fault
from krypton.devnet.params import QueryError, choice, flag, integer
from krypton.devnet.ton import MASTERS, JettonWallet, TonChain
from krypton.devnet.ton_collector import CollectorState
from krypton.devnet.ton_wallet import WalletRefused, WalletState

MAX_LIMIT = 1000
EXIT_STACK_UNDERFLOW = 2
EXIT_TYPE_CHECK = 7
PROVIDER_HEADER = "X-Devnet-Provider"  # which of several providers of this chain is asked
EXIT_METHOD_NOT_FOUND = 11  # TVM's exit code for an unknown get-method id
GET_WALLET_ADDRESS_GAS = 4_000
GET_WALLET_DATA_GAS = 3_000  # a stand-in: the devnet runs no TVM
COLLECTOR_GET_GAS = 3_000  # a stand-in: the devnet runs no TVM
WALLET_GET_GAS = 1_000  # a stand-in: the devnet runs no TVM
TVM_INT_LIMIT = 1 << 256  # a TVM integer is 257-bit signed: -2**256 <= n < 2**256
_HEX = re.compile(r"-?0x[0-9a-fA-F]{1,65}")
_DECIMAL = re.compile(r"-?[0-9]{1,80}")
CELL_KINDS = {"slice": "slice", "cell": "cell", "tvm.Slice": "slice", "tvm.Cell": "cell"}  # v3 and legacy
StackEntry = tuple[str, int | str]  # ("num", value) or ("slice" | "cell", base64 BOC)


class NotAContract(QueryError):
    """A get-method on an account with no code (answered 409, not 422: the request is fine)."""


def routes(devnet: Devnet, *, show_pending: bool = False) -> list[Route]:
    chain = devnet.ton

    def lie(request: Request) -> Fault | None:
        """The lie armed for the provider the request names (devnet/faults.py), if any."""
        return devnet.faults.lie("toncenter", request.headers.get(PROVIDER_HEADER))

    async def transactions(request: Request) -> JSONResponse:
        return _answer(lambda: _transactions(chain, request.query_params, show_pending, lie(request)))

    async def masterchain_info(request: Request) -> JSONResponse:
        return JSONResponse({"first": render.block(chain.first),
                             "last": render.told_head(render.block(chain.head), lie(request))})

    async def jetton_wallets(request: Request) -> JSONResponse:
        return _answer(lambda: _jetton_wallets(chain, request.query_params))

    async def run_get_method(request: Request) -> JSONResponse:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _error("The request body is not valid JSON; send {address, method, stack}.")
        return _answer(lambda: _run_get_method(chain, payload))

    async def send_message(request: Request) -> JSONResponse:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _error("The request body is not valid JSON; send {\"boc\": <base64 BOC>}.")
        try:
            return _answer(lambda: _send_message(chain, payload))
        except WalletRefused as exc:
            return JSONResponse({"error": f"The wallet contract refused the external message (exit code "
                                 f"{exc.exit_code}): {exc.message}.", "exit_code": exc.exit_code},
                                status_code=422)

    async def by_message(request: Request) -> JSONResponse:
        return _answer(lambda: _by_message(chain, request.query_params, show_pending))

    return [
        Route("/message", send_message, methods=["POST"]),
        Route("/transactionsByMessage", by_message, methods=["GET"]),
        Route("/transactions", transactions, methods=["GET"]),
        Route("/masterchainInfo", masterchain_info, methods=["GET"]),
        Route("/jetton/wallets", jetton_wallets, methods=["GET"]),
        Route("/runGetMethod", run_get_method, methods=["POST"]),
    ]


def _transactions(chain: TonChain, params: QueryParams, show_pending: bool,
                  lie: Fault | None = None) -> dict[str, Any]:
    account = _required_address(params.get("account"), "account")
    wanted = _hash(params.get("hash"))
    start_lt = integer(params, "start_lt", minimum=0)
    end_lt = integer(params, "end_lt", minimum=0)
    start_utime = integer(params, "start_utime", minimum=0)
    end_utime = integer(params, "end_utime", minimum=0)
    limit = integer(params, "limit", 10, minimum=1, maximum=MAX_LIMIT) or 10
    offset = integer(params, "offset", 0, minimum=0) or 0
    sort = choice(params, "sort", ("desc", "asc"), "desc")
    rows = [tx for tx in chain.transactions(account, include_pending=show_pending)
            if (start_lt is None or tx.lt >= start_lt) and (end_lt is None or tx.lt <= end_lt)
            and (start_utime is None or tx.now >= start_utime) and (end_utime is None or tx.now <= end_utime)
            and (wanted is None or canonical(tx.hash) == wanted)]
    if sort == "desc":
        rows.reverse()
    page = rows[offset:offset + limit]
    return {"transactions": render.told([render.transaction(tx) for tx in page], lie),
            "address_book": render.address_book(chain, (a for tx in page
                                                        for a in render.transaction_addresses(tx)))}


def _hash(value: str | None) -> str | None:
    """The `hash` filter (one transaction, as TON Center's), canonical; None: no filter."""
    if not value:
        return None
    try:
        return canonical(value)
    except InvalidHash as exc:
        raise QueryError(f"hash: {exc}.", "hash") from None


def _send_message(chain: TonChain, payload: Any) -> dict[str, Any]:
    boc = payload.get("boc") if isinstance(payload, dict) else None
    if not isinstance(boc, str):
        raise QueryError("Send {\"boc\": <base64 BOC of the external message>}.", "boc")
    try:
        message = cell_from_boc(boc)
    except CellFormatError as exc:
        raise QueryError(f"boc: {exc}.", "boc") from None
    tx = chain.send_external(message)
    return {"message_hash": tx.in_msg.hash, "message_hash_norm": tx.in_msg.hash}


def _by_message(chain: TonChain, params: QueryParams, show_pending: bool) -> dict[str, Any]:
    wanted = params.get("msg_hash")
    if not wanted:
        raise QueryError("msg_hash is required.", "msg_hash")
    try:
        digest = canonical(wanted)
    except InvalidHash as exc:
        raise QueryError(f"msg_hash: {exc}.", "msg_hash") from None
    choice(params, "direction", ("in", "out"), "in")  # the devnet looks incoming messages up
    rows = [tx for tx in chain.by_message(digest) if show_pending or tx.mc_block_seqno is not None]
    return {"transactions": [render.transaction(tx) for tx in rows],
            "address_book": render.address_book(
                chain, (a for tx in rows for a in render.transaction_addresses(tx)))}


def _jetton_wallets(chain: TonChain, params: QueryParams) -> dict[str, Any]:
    wanted = {name: {a for a in (_address(v, name) for v in params.getlist(name)) if a is not None}
              for name in ("address", "owner_address", "jetton_address")}
    skip_empty = flag(params, "exclude_zero_balance")
    limit = integer(params, "limit", 10, minimum=1, maximum=MAX_LIMIT) or 10
    offset = integer(params, "offset", 0, minimum=0) or 0
    rows = [w for w in chain.jetton_wallets()
            if (not wanted["address"] or w.address in wanted["address"])
            and (not wanted["owner_address"] or w.owner in wanted["owner_address"])
            and (not wanted["jetton_address"] or w.master in wanted["jetton_address"])
            and not (skip_empty and w.balance == 0)]
    page = rows[offset:offset + limit]
    wallets = []
    for w in page:
        history = chain.transactions(w.address)
        wallets.append({
            "address": render.raw(w.address),
            "balance": str(w.balance),
            "owner": render.raw(w.owner),
            "jetton": render.raw(w.master),
            "last_transaction_lt": str(history[-1].lt if history else 0),
            "code_hash": render.code_hash(MASTERS[w.master]),
            "data_hash": render.code_hash(f"{w.address.raw}/{w.balance}"),
        })
    addresses = [a for w in page for a in (w.address, w.owner, w.master)]
    return {"jetton_wallets": wallets, "address_book": render.address_book(chain, addresses), "metadata": {}}


def _run_get_method(chain: TonChain, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise QueryError("The request body must be a JSON object {address, method, stack}.", "body")
    address = _required_address(payload.get("address"), "address")
    method, stack = payload.get("method"), payload.get("stack", [])
    if not isinstance(stack, list):
        raise QueryError("stack must be a list of {type, value} entries.", "stack")
    if address in MASTERS:
        return _jetton_master_method(chain, address, method, stack)
    wallet = next((w for w in chain.jetton_wallets() if w.address == address), None)
    if wallet is not None:
        return _jetton_wallet_method(wallet, method)
    state = chain.collector(address)
    if state is not None:
        return _collector_method(state, method, [_stack_entry(e) for e in stack])
    hot = chain.wallet(address)
    if hot is not None:
        return _wallet_method(hot, method)
    raise NotAContract(f"Cannot run {method!r} on {address.raw}: no contract is deployed there (the "
                       "devnet runs get-methods on its jetton masters and on deployed fee collectors).",
                       "address")


def _jetton_master_method(chain: TonChain, master: TonAddress, method: Any,
                          stack: list[Any]) -> dict[str, Any]:
    if method != "get_wallet_address":
        return {"gas_used": 0, "exit_code": EXIT_METHOD_NOT_FOUND, "stack": []}
    if len(stack) != 1:
        raise QueryError("get_wallet_address takes one stack entry: the owner's address as a slice.", "stack")
    owner = _stack_address(stack[0])
    wallet = chain.jetton_wallet_of(owner, master)
    return {"gas_used": GET_WALLET_ADDRESS_GAS, "exit_code": 0,
            "stack": [{"type": "cell", "value": _address_boc(wallet)}]}


def _jetton_wallet_method(wallet: JettonWallet, method: Any) -> dict[str, Any]:
    """get_wallet_data: balance, owner, master and the wallet's code (TEP-74 order)."""
    if method != "get_wallet_data":
        return _failed(EXIT_METHOD_NOT_FOUND)
    code = Builder().store_bytes(render.code_hash(MASTERS[wallet.master]).encode()).end_cell()
    return {"gas_used": GET_WALLET_DATA_GAS, "exit_code": 0, "stack": [
        _render_entry(("num", wallet.balance)), _render_entry(("slice", _address_boc(wallet.owner))),
        _render_entry(("slice", _address_boc(wallet.master))), _render_entry(("cell", cell_to_boc(code)))]}


def _collector_method(state: CollectorState, method: Any, stack: list[StackEntry]) -> dict[str, Any]:
    """get_stats / get_config / get_fee of a deployed fee collector, in the FunC return order."""
    results: list[StackEntry]
    if method == "get_stats":
        results = [("num", n) for n in collector_logic.stats(state)]
    elif method == "get_config":
        owner, destination, *numbers = collector_logic.config(state)
        results = [("slice", _address_boc(owner)), ("slice", _address_boc(destination)),
                   *(("num", n) for n in numbers)]
    elif method == "get_fee":
        if not stack:
            return _failed(EXIT_STACK_UNDERFLOW)
        *stack, (kind, amount) = stack  # the argument is the top of the stack: the last entry
        if kind != "num" or not isinstance(amount, int):
            return _failed(EXIT_TYPE_CHECK)
        results = [("num", n) for n in collector_logic.fee_split(state, amount)]
    else:
        return _failed(EXIT_METHOD_NOT_FOUND)
    return {"gas_used": COLLECTOR_GET_GAS, "exit_code": 0,
            "stack": [_render_entry(entry) for entry in (*stack, *results)]}


def _wallet_method(state: WalletState, method: Any) -> dict[str, Any]:
    """A wallet contract's seqno, get_public_key and get_subwallet_id."""
    values = {"seqno": state.seqno, "get_public_key": int.from_bytes(state.public_key, "big"),
              "get_subwallet_id": state.wallet_id}
    if method not in values:
        return _failed(EXIT_METHOD_NOT_FOUND)
    return {"gas_used": WALLET_GET_GAS, "exit_code": 0, "stack": [_render_entry(("num", values[method]))]}


def _failed(exit_code: int) -> dict[str, Any]:
    return {"gas_used": 0, "exit_code": exit_code, "stack": []}


def _stack_entry(entry: Any) -> StackEntry:
    """A request stack entry, {type, value} (v3) or the legacy [type, value] pair: a number as
    "0x…" hex or a decimal string (or a JSON integer), a slice or cell as a base64 BOC."""
    if isinstance(entry, dict):
        kind, value = entry.get("type"), entry.get("value")
    elif isinstance(entry, list) and len(entry) == 2:
        kind, value = entry
    else:
        raise QueryError("Each stack entry must be {\"type\": ..., \"value\": ...}.", "stack")
    if kind == "num":
        return "num", _stack_number(value)
    if kind in CELL_KINDS and isinstance(value, str):
        try:
            cell_from_boc(value)
        except CellFormatError as exc:
            raise QueryError(f"The {kind} stack entry is not a base64 BOC: {exc}.", "stack") from None
        return CELL_KINDS[kind], value
    raise QueryError(f"Unsupported stack entry type {kind!r}: use num, slice or cell.", "stack")


def _stack_number(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _HEX.fullmatch(value):
        number = int(value, 16)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    else:
        raise QueryError(f"A num stack entry must be \"0x…\" hex or a decimal string, not {value!r}.",
                         "stack")
    if not -TVM_INT_LIMIT <= number < TVM_INT_LIMIT:
        raise QueryError("The num stack entry does not fit in a 257-bit TVM integer.", "stack")
    return number


def _render_entry(entry: StackEntry) -> dict[str, str]:
    kind, value = entry
    if isinstance(value, int):
        return {"type": kind, "value": hex(value)}  # "0x1f", "-0x1f", "0x0"
    return {"type": kind, "value": value}


def _address_boc(address: TonAddress) -> str:
    """A cell holding addr_std (no anycast), as a base64 BOC: how an address sits on the stack."""
    return cell_to_boc(address_cell(address))


def _stack_address(entry: Any) -> TonAddress:
    """The owner address from a stack entry: {type: slice|cell, value: BOC} (v3) or the legacy
    ["tvm.Slice", BOC] pair."""
    if isinstance(entry, dict):
        kind, value = entry.get("type"), entry.get("value")
    elif isinstance(entry, list) and len(entry) == 2:
        kind, value = entry
    else:
        kind, value = None, None
    if kind not in ("slice", "cell", "tvm.Slice", "tvm.Cell") or not isinstance(value, str):
        raise QueryError("The stack entry must be {\"type\": \"slice\", \"value\": <base64 BOC>}.", "stack")
    try:
        cell: Cell = cell_from_boc(value)
        owner = Reader(cell).address("the owner address")
    except CellFormatError as exc:
        raise QueryError(f"The stack entry does not hold an address: {exc}.", "stack") from None
    if owner is None:
        raise QueryError("The stack entry holds addr_none; give the owner's address.", "stack")
    return owner


def _required_address(value: Any, name: str) -> TonAddress:
    address = _address(value, name)
    if address is None:
        raise QueryError(f"{name} is required.", name)
    return address


def _address(value: Any, name: str) -> TonAddress | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise QueryError(f"{name} must be an address string.", name)
    try:
        return parse(value, network="testnet")  # accepts both mainnet and testnet forms
    except InvalidAddress as exc:
        raise QueryError(f"{name}: {exc.message}", name) from None


def _answer(build: Callable[[], dict[str, Any]]) -> JSONResponse:
    try:
        result = build()
    except NotAContract as exc:
        return _error(exc.message, status=409)
    except QueryError as exc:
        return _error(exc.message)
    return JSONResponse(result)


def _error(message: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
