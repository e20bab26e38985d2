"""How a payer pays each option: address, memo, amount, wallet deep link and QR code."""

from __future__ import annotations

import functools
import io
from typing import Any
from urllib.parse import quote

import segno

from krypton.adapters.chains.ton.address import parse
from krypton.domain.assets import Chain
from krypton.domain.assets import asset as get_asset
from krypton.domain.invoice import Invoice, PaymentOption


@functools.lru_cache(maxsize=1024)  # a handful of receiving addresses, shown on every render
def _friendly(raw: str, *, bounceable: bool, testnet: bool) -> str:
    return parse(raw, network="testnet").friendly(bounceable=bounceable, testnet=testnet)


def pay_to(invoice: Invoice, option: PaymentOption, *, testnet: bool) -> dict[str, Any]:
    """The fields a wallet needs; `deep_link` is what the QR code encodes."""
    asset = get_asset(option.asset)
    if asset.chain is Chain.TRON:
        return {"address": invoice.tron_address, "memo": None, "deep_link": None}
    if asset.chain is not Chain.TON or invoice.ton_address is None:
        return {"address": None, "memo": None, "deep_link": None}
    if asset.contract is None and invoice.ton_collector is not None:
        # The merchant's fee collector: bounceable (EQ…), so a payment it refuses (too
        # small) comes back to the payer instead of staying in the contract.
        address = _friendly(invoice.ton_collector, bounceable=True, testnet=testnet)
    else:
        # Non-bounceable (UQ…) for a wallet: money sent to it is never bounced back.
        address = _friendly(invoice.ton_address, bounceable=False, testnet=testnet)
    # Built by hand (urlencode was a tenth of an invoice response's cost): addresses are
    # URL-safe base64 and the amount an integer, so only the memo needs quoting.
    query = f"amount={option.amount}&text={quote(invoice.memo or '', safe='')}"
    if asset.contract is not None:
        query = f"jetton={_friendly(asset.contract, bounceable=True, testnet=testnet)}&{query}"
    link = f"ton://transfer/{address}?{query}"
    return {"address": address, "memo": invoice.memo, "deep_link": link}


def qr_svg(data: str) -> str:
    """An SVG QR code (segno), medium error correction, scaled for a phone camera. A document
    of its own (the SVG namespace, which a browser needs to show it as an image) with a
    viewBox instead of a fixed size, so it fills whatever box the page gives it."""
    out = io.BytesIO()
    segno.make(data, error="m").save(out, kind="svg", xmldecl=False, svgns=True, nl=False, scale=5,
                                     border=2, omitsize=True)
    return out.getvalue().decode()
