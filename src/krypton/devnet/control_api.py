"""The devnet's own control API (mounted at /control): make payments, produce blocks,
reorganise, inject provider faults and read the state.

    POST   /control/pay     {asset: ton|usdt_ton|usdt_trc20, to, amount, from?, comment?,
                             counterfeit?, result?, bounce?, forward_ton_amount?}
    POST   /control/ton/deploy  {state_init: <base64 BOC>, amount?: nanotons, default 60000000}
    POST   /control/blocks  {chain: ton|tron, count?}
    POST   /control/reorg   {n, chain?: tron}
    POST   /control/faults  {provider: toncenter|trongrid, kind: status|latency|timeout|lie,
                             status?, retry_after?, latency_ms?, count?,
                             lie?: amount|omit|stale_head, delta?, name?}
                            (a lie may be aimed at one named provider of the chain: `name`)
    DELETE /control/faults?provider=
    GET    /control/state
    POST   /control/stars/pay  {invoice: inv_…, amount?: Stars}  (served beside the fake Bot API)

Amounts are whole numbers of the smallest unit (nanotons, jetton or token units), as JSON
numbers or decimal strings. Every refusal is a 4xx {"error": {code, message, field}} with
a sentence that says what to fix; nothing is changed by a refused request.

TON `bounce: true` sends a bounceable message that the recipient refuses, so it comes back.
To a deployed fee collector it only makes the message bounceable: the contract decides,
and `bounced` in the answer says whether it did bounce (a payment below its minimum).
/control/ton/deploy deploys a fee collector from the StateInit Krypton builds
(fee_collector.state_init_boc) and answers {address, address_bounceable, balance}; its
stats are listed under ton.collectors in /control/state.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from krypton.adapters.chains.ton import fee_collector
from krypton.adapters.chains.ton.address import InvalidAddress, TonAddress, parse
from krypton.adapters.chains.ton.cells import CellFormatError, cell_from_boc
from krypton.devnet.common import InvalidInput
from krypton.devnet.devnet import Devnet
from krypton.devnet.faults import Fault, LieKind, fault_kind
from krypton.devnet.requests import read_object, text
from krypton.devnet.telegram_api import Deliver, FakeBotApi
from krypton.devnet.ton import COUNTERFEIT_MASTER, USDT_MASTER
from krypton.devnet.tron import COUNTERFEIT_CONTRACT, RESULTS, USDT_CONTRACT, Result

ASSETS = ("ton", "usdt_ton", "usdt_trc20")
# Which payment options make sense for which asset.
APPLIES_TO: Mapping[str, tuple[str, ...]] = {
    "comment": ("ton", "usdt_ton"),
    "bounce": ("ton",),
    "forward_ton_amount": ("usdt_ton",),
    "counterfeit": ("usdt_ton", "usdt_trc20"),
    "result": ("usdt_trc20",),
}
PAY_FIELDS = {"asset", "to", "amount", "from", *APPLIES_TO}
_DIGITS = re.compile(r"[0-9]{1,80}")


def routes(devnet: Devnet) -> list[Route]:
    async def pay(request: Request) -> JSONResponse:
        return JSONResponse(send_payment(devnet, await read_object(request, PAY_FIELDS)), status_code=201)

    async def blocks(request: Request) -> JSONResponse:
        body = await read_object(request, {"chain", "count"})
        chain = text(body, "chain", required=True)
        devnet.produce(chain or "", _whole(body, "count", default=1))
        return JSONResponse(_heads(devnet)[chain or ""])

    async def reorg(request: Request) -> JSONResponse:
        body = await read_object(request, {"n", "chain"})
        if text(body, "chain") not in (None, "tron"):
            raise InvalidInput("Only Tron reorganises: a TON transaction in a masterchain block is final.",
                               field="chain")
        dropped = devnet.tron.reorg(_whole(body, "n", required=True))
        return JSONResponse({**_heads(devnet)["tron"], "dropped_transactions": [tx.tx_id for tx in dropped]})

    async def add_fault(request: Request) -> JSONResponse:
        body = await read_object(request, {"provider", "kind", "status", "retry_after",
                                           "latency_ms", "count", "lie", "delta", "name"})
        fault = Fault(fault_kind(text(body, "kind", required=True) or ""), _optional_whole(body, "status"),
                      _optional_whole(body, "retry_after"), _optional_whole(body, "latency_ms"),
                      cast(LieKind | None, text(body, "lie")), _optional_whole(body, "delta"))
        provider = text(body, "provider", required=True) or ""
        devnet.faults.inject(provider, fault, _whole(body, "count", default=1), name=text(body, "name"))
        return JSONResponse({"faults": devnet.faults.armed()}, status_code=201)

    async def clear_faults(request: Request) -> JSONResponse:
        devnet.faults.clear(request.query_params.get("provider"))
        return JSONResponse({"faults": devnet.faults.armed()})

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(_state(devnet))

    async def deploy(request: Request) -> JSONResponse:
        return JSONResponse(_deploy(devnet, await read_object(request, {"state_init", "amount"})))

    return [
        Route("/pay", pay, methods=["POST"]),
        Route("/blocks", blocks, methods=["POST"]),
        Route("/reorg", reorg, methods=["POST"]),
        Route("/faults", add_fault, methods=["POST"]),
        Route("/faults", clear_faults, methods=["DELETE"]),
        Route("/state", state, methods=["GET"]),
        Route("/ton/deploy", deploy, methods=["POST"]),
    ]


def stars_routes(fake: FakeBotApi, link_of: Callable[[str], Awaitable[str]],
                 deliver: Deliver) -> list[Route]:
    """POST /pay, mounted at /control/stars beside the routes above: a payer opens the
    invoice's Stars link (`link_of`, the server's own
    invoice_link) and pays through the fake Bot API, whose updates `deliver` posts to the
    server's own webhook: the real handler answers the pre-checkout query and credits it.
    `amount` overrides what Telegram charges (a stale link); the answer says what the bot
    said, and the charge id when it let the payer pay."""

    async def pay(request: Request) -> JSONResponse:
        body = await read_object(request, {"invoice", "amount"})
        invoice_id = text(body, "invoice", required=True) or ""
        link = await link_of(invoice_id)
        outcome = await fake.pay(link, deliver, total_amount=_optional_whole(body, "amount"))
        answer = outcome.answer
        if outcome.charge_id is None:
            why = answer.error_message if answer is not None and answer.error_message \
                else "the bot never answered the pre-checkout query."
            return JSONResponse({"error": {"code": "payment_refused", "field": None,
                                           "message": f"Telegram did not charge the payer: {why}"}},
                                status_code=409)
        return JSONResponse({"invoice": invoice_id, "link": link, "charge_id": outcome.charge_id},
                            status_code=201)

    return [Route("/pay", pay, methods=["POST"])]


def send_payment(devnet: Devnet, body: dict[str, Any]) -> dict[str, Any]:
    """Pay from a funded devnet wallet (the control API's POST /pay; the checkout's devnet
    buttons): TON, USDT on TON or USDT on Tron, `amount` in smallest units."""
    asset = (text(body, "asset", required=True) or "").lower()
    if asset not in ASSETS:
        raise InvalidInput(f"asset must be one of {', '.join(ASSETS)}, not {asset!r}.", field="asset")
    for option, assets in APPLIES_TO.items():
        if body.get(option) is not None and asset not in assets:
            raise InvalidInput(_not_for(option, asset, assets), field=option)
    payer = text(body, "from") or devnet.default_payer
    target = text(body, "to", required=True) or ""
    amount = _whole(body, "amount", required=True)
    comment = text(body, "comment")
    counterfeit = _flag(body, "counterfeit")
    if asset == "usdt_trc20":
        result = text(body, "result") or "SUCCESS"
        if result not in RESULTS:
            raise InvalidInput(f"result must be one of {', '.join(RESULTS)}, not {result!r}.", field="result")
        contract = COUNTERFEIT_CONTRACT if counterfeit else USDT_CONTRACT
        chosen: Result = next(r for r in RESULTS if r == result)
        sent = devnet.tron.transfer(payer, target, amount, contract=contract, result=chosen)
        return {"chain": "tron", "asset": asset, "tx_id": sent.tx_id, "from": sent.from_, "to": sent.to,
                "amount": str(amount), "contract": contract, "counterfeit": counterfeit,
                "result": sent.result, "status": "pending"}
    to = _ton_address(target)
    if asset == "ton":
        bounce = _flag(body, "bounce")
        tx = devnet.ton.pay_ton(payer, to, amount, comment, bounceable=bounce, undeliverable=bounce)
        extra: dict[str, Any] = {"bounced": tx.aborted and any(m.bounced for m in tx.out_msgs)}
    else:
        forward = _whole(body, "forward_ton_amount", default=1, minimum=0)
        tx = devnet.ton.pay_jetton(payer, to, amount, comment, counterfeit=counterfeit,
                                   forward_ton_amount=forward)
        master = COUNTERFEIT_MASTER if counterfeit else USDT_MASTER
        extra = {"counterfeit": counterfeit, "notified": forward > 0,
                 "jetton_wallet": devnet.ton.jetton_wallet_of(to, master).raw}
    return {"chain": "ton", "asset": asset, "tx_hash": tx.hash, "lt": str(tx.lt), "account": tx.account.raw,
            "from": devnet.ton.payer(payer).raw, "to": to.raw, "amount": str(amount), "status": "pending",
            **extra}


def _deploy(devnet: Devnet, body: dict[str, Any]) -> dict[str, Any]:
    boc = text(body, "state_init", required=True) or ""
    try:
        state_init = cell_from_boc(boc)
    except CellFormatError as exc:
        raise InvalidInput(f"state_init must be a StateInit as a standard base64 BOC: {exc}.",
                           field="state_init") from None
    amount = _whole(body, "amount", default=fee_collector.MIN_DEPLOY_AMOUNT)
    address = devnet.ton.deploy_collector(state_init, amount)
    return {"address": address.raw, "address_bounceable": address.friendly(bounceable=True),
            "balance": str(devnet.ton.balance(address))}


def _collectors(devnet: Devnet) -> list[dict[str, Any]]:
    rows = []
    for address, state in sorted(devnet.ton.collectors().items(), key=lambda kv: kv[0].raw):
        rows.append({
            "address": address.raw, "address_bounceable": address.friendly(bounceable=True),
            "balance": str(devnet.ton.balance(address)), "owner": state.owner.raw,
            "destination": state.destination.raw, "fee_bps": state.fee_bps,
            "min_withdrawal": str(state.min_withdrawal),
            "stats": {"accumulated": str(state.accumulated), "total_collected": str(state.total_collected),
                      "total_withdrawn": str(state.total_withdrawn), "payment_count": state.payment_count,
                      "last_withdrawal_time": state.last_withdrawal_time},
        })
    return rows


def _heads(devnet: Devnet) -> dict[str, dict[str, Any]]:
    ton, tron = devnet.ton, devnet.tron
    return {
        "ton": {"chain": "ton", "head": ton.head.seqno, "pending": len(ton.pending)},
        "tron": {"chain": "tron", "head": tron.head.number, "solid_head": tron.solid_head.number,
                 "pending": len(tron.pending)},
    }


def _state(devnet: Devnet) -> dict[str, Any]:
    ton, tron = devnet.ton, devnet.tron
    heads = _heads(devnet)
    return {
        "ton": {
            **heads["ton"],
            "usdt_master": USDT_MASTER.raw,
            "counterfeit_master": COUNTERFEIT_MASTER.raw,
            "payers": [{"name": name, "address": a.raw, "friendly": a.friendly(bounceable=False),
                        "balance": str(ton.balance(a)), "usdt": str(ton.jetton_balance(a, USDT_MASTER)),
                        "counterfeit": str(ton.jetton_balance(a, COUNTERFEIT_MASTER)),
                        "usdt_wallet": ton.jetton_wallet_of(a).raw} for name, a in ton.payers.items()],
            "balances": {a.raw: str(b) for a, b in sorted(ton.balances().items(), key=lambda kv: kv[0].raw)},
            "jetton_balances": {w.address.raw: {"owner": w.owner.raw, "master": w.master.raw,
                                                "balance": str(w.balance)} for w in ton.jetton_wallets()},
            "collectors": _collectors(devnet),
        },
        "tron": {
            **heads["tron"],
            "usdt_contract": USDT_CONTRACT,
            "counterfeit_contract": COUNTERFEIT_CONTRACT,
            "payers": [{"name": name, "address": a, "usdt": str(tron.balance(a)),
                        "counterfeit": str(tron.balance(a, COUNTERFEIT_CONTRACT))}
                       for name, a in tron.payers.items()],
            "balances": {f"{contract}/{owner}": str(b)
                         for (contract, owner), b in sorted(tron.balances().items())},
        },
        "faults": devnet.faults.armed(),
    }


# -- reading the body ---------------------------------------------------------------------


def _optional_whole(body: dict[str, Any], name: str) -> int | None:
    # Ranges are the simulator's to check (faults.py): here only "a whole number".
    return None if body.get(name) is None else _whole(body, name, minimum=0)


def _whole(body: dict[str, Any], name: str, *, required: bool = False, default: int = 0,
           minimum: int = 1) -> int:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required.", field=name)
        return default
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{name} must be a whole number, {minimum} or more (a JSON number or a string of "
                           f"digits), not {body.get(name)!r}.", field=name)
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false.", field=name)
    return value


def _ton_address(text: str) -> TonAddress:
    try:
        return parse(text, network="testnet")  # the devnet takes both mainnet and testnet forms
    except InvalidAddress as exc:
        raise InvalidInput(exc.message, field="to") from None


def _not_for(option: str, asset: str, assets: tuple[str, ...]) -> str:
    if option == "comment" and asset == "usdt_trc20":
        return ("TRC-20 transfers carry no comment (Tron uses one deposit address per invoice); "
                "leave comment out.")
    return f"{option} applies to {' and '.join(assets)} payments only, not {asset}."
