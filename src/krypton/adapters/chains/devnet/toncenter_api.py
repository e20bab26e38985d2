"""The TON Center API v3 subset the devnet serves (mounted at /toncenter/api/v3).

    GET  /transactions?account=&start_lt=&end_lt=&start_utime=&end_utime=&limit=&offset=&sort=
    GET  /masterchainInfo
    GET  /jetton/wallets?address=&owner_address=&jetton_address=&exclude_zero_balance=&limit=&offset=
    POST /runGetMethod {address, method, stack}   (get_wallet_address on the jetton masters)

Like the real indexer, /transactions shows only transactions already in a masterchain
block (every one it returns has mc_block_seqno set), unless the app was built with
show_pending=True to exercise a watcher's handling of mc_block_seqno = null. Bad
parameters get 422 {"error": "..."}.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from krypton.adapters.chains.devnet import toncenter_json as render
from krypton.adapters.chains.devnet.devnet import Devnet
from krypton.adapters.chains.devnet.params import QueryError, choice, flag, integer
from krypton.adapters.chains.devnet.ton import MASTERS, TonChain
from krypton.adapters.chains.ton.address import InvalidAddress, TonAddress, parse
from krypton.adapters.chains.ton.cells import CellFormatError, Reader, cell_from_boc, cell_to_boc

MAX_LIMIT = 1000
EXIT_METHOD_NOT_FOUND = 11  # TVM's exit code for an unknown get-method id
GET_WALLET_ADDRESS_GAS = 4_000


def routes(devnet: Devnet, *, show_pending: bool = False) -> list[Route]:
    chain = devnet.ton

    async def transactions(request: Request) -> JSONResponse:
        return _answer(lambda: _transactions(chain, request.query_params, show_pending))

    async def masterchain_info(request: Request) -> JSONResponse:
        return JSONResponse({"first": render.block(chain.first), "last": render.block(chain.head)})

    async def jetton_wallets(request: Request) -> JSONResponse:
        return _answer(lambda: _jetton_wallets(chain, request.query_params))

    async def run_get_method(request: Request) -> JSONResponse:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _error("The request body is not valid JSON; send {address, method, stack}.")
        return _answer(lambda: _run_get_method(chain, payload))

    return [
        Route("/transactions", transactions, methods=["GET"]),
        Route("/masterchainInfo", masterchain_info, methods=["GET"]),
        Route("/jetton/wallets", jetton_wallets, methods=["GET"]),
        Route("/runGetMethod", run_get_method, methods=["POST"]),
    ]


def _transactions(chain: TonChain, params: QueryParams, show_pending: bool) -> dict[str, Any]:
    account = _required_address(params.get("account"), "account")
    start_lt = integer(params, "start_lt", minimum=0)
    end_lt = integer(params, "end_lt", minimum=0)
    start_utime = integer(params, "start_utime", minimum=0)
    end_utime = integer(params, "end_utime", minimum=0)
    limit = integer(params, "limit", 10, minimum=1, maximum=MAX_LIMIT) or 10
    offset = integer(params, "offset", 0, minimum=0) or 0
    sort = choice(params, "sort", ("desc", "asc"), "desc")
    rows = [tx for tx in chain.transactions(account, include_pending=show_pending)
            if (start_lt is None or tx.lt >= start_lt) and (end_lt is None or tx.lt <= end_lt)
            and (start_utime is None or tx.now >= start_utime) and (end_utime is None or tx.now <= end_utime)]
    if sort == "desc":
        rows.reverse()
    page = rows[offset:offset + limit]
    return {"transactions": [render.transaction(tx) for tx in page],
            "address_book": render.address_book(chain, (a for tx in page
                                                        for a in render.transaction_addresses(tx)))}


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
    master = _required_address(payload.get("address"), "address")
    if master not in MASTERS:
        raise QueryError(f"Cannot run a get-method on {master.raw}: the devnet runs get-methods on its "
                         "jetton masters only.", "address")
    method, stack = payload.get("method"), payload.get("stack", [])
    if not isinstance(stack, list):
        raise QueryError("stack must be a list of {type, value} entries.", "stack")
    if method != "get_wallet_address":
        return {"gas_used": 0, "exit_code": EXIT_METHOD_NOT_FOUND, "stack": []}
    if len(stack) != 1:
        raise QueryError("get_wallet_address takes one stack entry: the owner's address as a slice.", "stack")
    owner = _stack_address(stack[0])
    wallet = chain.jetton_wallet_of(owner, master)
    cell = Builder().store_uint(0b100, 3).store_int(wallet.workchain, 8).store_bytes(wallet.hash).end_cell()
    return {"gas_used": GET_WALLET_ADDRESS_GAS, "exit_code": 0,
            "stack": [{"type": "cell", "value": cell_to_boc(cell)}]}


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
    except QueryError as exc:
        return _error(exc.message)
    return JSONResponse(result)


def _error(message: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
