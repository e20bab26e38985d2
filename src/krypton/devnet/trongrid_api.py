"""The TronGrid / java-tron HTTP subset the devnet serves (mounted at /trongrid).

    GET      /v1/accounts/{address}/transactions/trc20?only_to=&only_from=&only_confirmed=
             &only_unconfirmed=&contract_address=&min_timestamp=&max_timestamp=&order_by=&limit=&fingerprint=
    GET      /v1/contracts/{contract}/events?event_name=&block_number=&only_confirmed=
             &only_unconfirmed=&min_block_timestamp=&max_block_timestamp=&order_by=&limit=&fingerprint=
    GET|POST /wallet[solidity]/getnowblock
    GET|POST /wallet[solidity]/gettransactioninfobyid         {"value": txid}
    GET|POST /wallet[solidity]/gettransactioninfobyblocknum   {"num": n}

TronGrid lists include unconfirmed (not yet solidified) rows unless only_confirmed=true, as
the real service does; a reorganised-away transfer disappears from every list, and a block
TronGrid has not indexed yet (`TronChain.index_lag_ms`) is in none. Paging:
when more rows follow, meta.fingerprint (and meta.links.next) name the last row returned;
the next page starts strictly after it, so new blocks never shift a page. The /walletsolidity
variants answer only for solidified blocks. Bad TronGrid parameters get 400
{"success": false, "error", "statusCode"}; the node API, like java-tron, answers bad input
with 200 {"Error": "..."} and an unknown transaction with {}. A request may name one of
several providers of the chain (header X-Devnet-Provider): a lie armed for that name
(devnet/faults.py) changes its answers, so one provider can lie while the others do not.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from krypton.adapters.chains.tron import address
from krypton.devnet import trongrid_json as render
from krypton.devnet.common import epoch_ms
from krypton.devnet.devnet import Devnet
from krypton.devnet.faults import Fault
from krypton.devnet.params import QueryError, choice, flag, integer
from krypton.devnet.tron import Inclusion, TronChain

MAX_LIMIT = 200
DEFAULT_LIMIT = 20
PROVIDER_HEADER = "X-Devnet-Provider"  # which of several providers of this chain is asked
ORDERS = ("block_timestamp,desc", "block_timestamp,asc")
Key = tuple[int, int, int]  # (block, position in block, event index)
_FINGERPRINT = re.compile(r"([0-9]+):([0-9]+):([0-9]+)")


def routes(devnet: Devnet) -> list[Route]:
    chain = devnet.tron

    def lie(request: Request) -> Fault | None:
        """The lie armed for the provider the request names (devnet/faults.py), if any."""
        return devnet.faults.lie("trongrid", request.headers.get(PROVIDER_HEADER))

    async def trc20(request: Request) -> JSONResponse:
        return _grid(lambda: _told(_trc20(chain, request, devnet), lie(request)))

    async def events(request: Request) -> JSONResponse:
        return _grid(lambda: _told(_events(chain, request, devnet), lie(request)))

    def now_block(solid: bool) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse(render.told_block(render.block(chain.solid_head if solid else chain.head),
                                                  lie(request)))
        return endpoint

    def info_by_id(solid: bool) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            value = await _argument(request, "value")
            if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
                return _node_error("value must be a transaction id: 64 hex digits.")
            found, told = chain.find(value), lie(request)
            stale = render.stale_by(told)  # a stale provider has solidified less
            if found is None or (solid and not chain.is_solid(found.block.number + stale)):
                return JSONResponse({})  # unknown, pending or not solidified yet: ask again
            return JSONResponse(render.told_info(render.tx_info(found), told))
        return endpoint

    def info_by_block(solid: bool) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            value = await _argument(request, "num")
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return _node_error("num must be a block number, 0 or more.")
            block = chain.block(value)
            if block is None or (solid and not chain.is_solid(value)):
                return JSONResponse([])
            return JSONResponse([render.tx_info(Inclusion(block, i, tx)) for i, tx in enumerate(block.txs)])
        return endpoint

    node: list[Route] = []
    for prefix, solid in (("/wallet", False), ("/walletsolidity", True)):
        node += [
            Route(f"{prefix}/getnowblock", now_block(solid), methods=["GET", "POST"]),
            Route(f"{prefix}/gettransactioninfobyid", info_by_id(solid), methods=["GET", "POST"]),
            Route(f"{prefix}/gettransactioninfobyblocknum", info_by_block(solid), methods=["GET", "POST"]),
        ]
    return [
        Route("/v1/accounts/{address}/transactions/trc20", trc20, methods=["GET"]),
        Route("/v1/contracts/{contract}/events", events, methods=["GET"]),
        *node,
    ]


def _told(answer: dict[str, Any], lie: Fault | None) -> dict[str, Any]:
    """A list answer as a lying provider tells it (its rows through trongrid_json.told_row)."""
    if lie is None:
        return answer
    rows = [told for row in answer["data"] if (told := render.told_row(row, lie)) is not None]
    return {**answer, "data": rows}


def _trc20(chain: TronChain, request: Request, devnet: Devnet) -> dict[str, Any]:
    params = request.query_params
    account = _base58(request.path_params["address"], "address")
    only_to, only_from = flag(params, "only_to"), flag(params, "only_from")
    contract = params.get("contract_address")
    token = _base58(contract, "contract_address") if contract else None
    low = integer(params, "min_timestamp", minimum=0)
    high = integer(params, "max_timestamp", minimum=0)
    confirmed = _confirmation_filter(chain, params)

    def wanted(inclusion: Inclusion) -> bool:
        tx, block = inclusion.tx, inclusion.block
        incoming, outgoing = tx.to == account, tx.from_ == account
        return (tx.succeeded and (incoming or outgoing) and not (only_to and not incoming)
                and not (only_from and not outgoing) and (token is None or tx.contract == token)
                and (low is None or block.timestamp >= low) and (high is None or block.timestamp <= high)
                and confirmed(inclusion) and chain.listed(block.number))

    rows = ((_key(i), render.trc20_row(i)) for i in chain.included() if wanted(i))
    return _page(rows, request, epoch_ms(devnet.clock))


def _events(chain: TronChain, request: Request, devnet: Devnet) -> dict[str, Any]:
    params = request.query_params
    contract = _base58(request.path_params["contract"], "contract")
    name = params.get("event_name")
    number = integer(params, "block_number", minimum=0)
    low = integer(params, "min_block_timestamp", minimum=0)
    high = integer(params, "max_block_timestamp", minimum=0)
    confirmed = _confirmation_filter(chain, params)

    def wanted(inclusion: Inclusion) -> bool:
        tx, block = inclusion.tx, inclusion.block
        return (tx.succeeded and tx.contract == contract and name in (None, "", "Transfer")
                and (number is None or block.number == number)
                and (low is None or block.timestamp >= low) and (high is None or block.timestamp <= high)
                and confirmed(inclusion) and chain.listed(block.number))

    rows = ((_key(i), render.event_row(i)) for i in chain.included() if wanted(i))
    return _page(rows, request, epoch_ms(devnet.clock))


def _confirmation_filter(chain: TronChain, params: QueryParams) -> Callable[[Inclusion], bool]:
    """"Confirmed" on TronGrid means solidified."""
    confirmed, unconfirmed = flag(params, "only_confirmed"), flag(params, "only_unconfirmed")
    if confirmed and unconfirmed:
        raise QueryError("only_confirmed and only_unconfirmed cannot both be true.", "only_confirmed")
    solid = chain.solid_head.number

    def keep(inclusion: Inclusion) -> bool:
        solidified = inclusion.block.number <= solid
        return (solidified or not confirmed) and (not solidified or not unconfirmed)
    return keep


def _page(rows: Iterable[tuple[Key, dict[str, Any]]], request: Request, now_ms: int) -> dict[str, Any]:
    params = request.query_params
    order = choice(params, "order_by", ORDERS, ORDERS[0])
    limit = integer(params, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT
    descending = order == ORDERS[0]
    ordered = sorted(rows, key=lambda row: row[0], reverse=descending)
    marker = params.get("fingerprint")
    if marker:
        after = _decode(marker)
        ordered = [row for row in ordered if (row[0] < after if descending else row[0] > after)]
    page = ordered[:limit]
    meta: dict[str, Any] = {"at": now_ms, "page_size": len(page)}
    if len(ordered) > limit:
        fingerprint = _encode(page[-1][0])
        meta["fingerprint"] = fingerprint
        meta["links"] = {"next": str(request.url.include_query_params(fingerprint=fingerprint))}
    return {"data": [row for _, row in page], "success": True, "meta": meta}


def _key(inclusion: Inclusion) -> Key:
    return (inclusion.block.number, inclusion.position, 0)


def _encode(key: Key) -> str:
    # Opaque to clients, like TronGrid's; it names the last row so paging resumes after it.
    return base64.urlsafe_b64encode(":".join(map(str, key)).encode()).decode().rstrip("=")


def _decode(fingerprint: str) -> Key:
    try:
        text = base64.urlsafe_b64decode(fingerprint + "=" * (-len(fingerprint) % 4)).decode()
    except (binascii.Error, ValueError):
        text = ""
    match = _FINGERPRINT.fullmatch(text)
    if match is None:
        raise QueryError("fingerprint is not one this server handed out; pass meta.fingerprint back "
                         "unchanged.", "fingerprint")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def _base58(value: str, name: str) -> str:
    try:
        return address.normalise(value)
    except address.InvalidAddress as exc:
        raise QueryError(f"{name}: {exc.message}", name) from None


async def _argument(request: Request, name: str) -> object:
    """A node API argument from the JSON body (POST) or the query string (GET)."""
    if request.method == "POST":
        body = await request.body()
        if body.strip():
            try:
                payload = json.loads(body)
            except ValueError:
                return None
            return payload.get(name) if isinstance(payload, dict) else None
    return request.query_params.get(name)


def _grid(build: Callable[[], dict[str, Any]]) -> JSONResponse:
    try:
        return JSONResponse(build())
    except QueryError as exc:
        return JSONResponse({"success": False, "error": exc.message, "statusCode": 400}, status_code=400)


def _node_error(message: str) -> JSONResponse:
    return JSONResponse({"Error": message})
