"""Request and response bodies. Amounts are decimal strings; ids carry their prefix."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from krypton.domain import fees, money
from krypton.domain.assets import METHODS, PRICING_DECIMALS, asset
from krypton.domain.invoice import MAX_EXPIRY, MIN_EXPIRY, Invoice
from krypton.domain.payment import Payment
from krypton.domain.settlement import Settlement
from krypton.web.api import instructions

MAX_METADATA_BYTES = 4096
# Far more than the largest amount (19 digits of smallest units plus a dot); stops a huge string
# from reaching the integer parser.
MAX_AMOUNT_CHARS = 64


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_nul(value: str, info: ValidationInfo) -> str:
    if "\x00" in value:
        raise ValueError(f"{info.field_name} must not contain the NUL character (\\u0000); remove it.")
    return value


# Free text that is stored: PostgreSQL cannot store NUL in a text column.
Text = Annotated[str, AfterValidator(_no_nul)]


class InvoiceCreate(Strict):
    # `json_schema_extra` documents the accepted values in the OpenAPI schema (for clients and
    # the schemathesis tests) while the domain still checks them and words the errors.
    amount: str = Field(description='Price as a decimal string, e.g. "9.99". Never a JSON number.',
                        examples=["9.99"], max_length=MAX_AMOUNT_CHARS,
                        json_schema_extra={"pattern": r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"})
    currency: str = Field(description=f"One of {', '.join(PRICING_DECIMALS)}.", examples=["USD"],
                          json_schema_extra={"enum": list(PRICING_DECIMALS)})
    methods: list[Annotated[str, Field(json_schema_extra={"enum": list(METHODS)})]] | None = Field(
        None, description=f"Payment methods to offer ({', '.join(METHODS)}); default: the "
        "merchant's enabled methods.", max_length=len(METHODS))
    order_id: Text | None = Field(None, max_length=200)
    description: Text | None = Field(None, max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Up to 4 KB of JSON.")
    expires_in: Annotated[StrictInt, Field(json_schema_extra={"minimum": 60, "maximum": 2_592_000})] \
        | None = Field(None, description="Seconds until expiry (60 to 2,592,000).")
    redirect_url: Annotated[Text, Field(json_schema_extra={"pattern": "^https?://"})] | None = Field(
        None, max_length=2000)
    confirmations: Annotated[StrictInt, Field(json_schema_extra={"minimum": 1, "maximum": 100})] \
        | None = Field(None, description="Override the confirmation policy (1-100).")

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError('amount must be a decimal string such as "9.99", not a JSON number.')
        return value

    @field_validator("expires_in")
    @classmethod
    def _expiry_range(cls, value: int | None) -> int | None:
        # Checked here too: a huge value would overflow timedelta before the domain sees it.
        if value is not None and not MIN_EXPIRY.total_seconds() <= value <= MAX_EXPIRY.total_seconds():
            raise ValueError("expires_in must be between 60 and 2,592,000 seconds (1 minute to 30 days).")
        return value

    @field_validator("redirect_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("redirect_url must be an http:// or https:// URL.")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        import json
        try:
            text = json.dumps(value, allow_nan=False)
        except ValueError:
            raise ValueError("metadata must be plain JSON; NaN and Infinity are not allowed.") from None
        if len(text) > MAX_METADATA_BYTES:
            raise ValueError("metadata must be at most 4 KB of JSON.")
        return value


class PaymentOptionOut(BaseModel):
    method: str
    asset: str
    amount: str
    rate: str
    address: str | None = Field(description="Where to send: TON (UQ…) or Tron deposit address.")
    memo: str | None = Field(description="TON only: put exactly this in the transfer comment.")
    deep_link: str | None = Field(description="ton://transfer/… link for TON wallets.")
    qr_url: str | None = Field(description="SVG QR code of the deep link (or Tron address).")


class InvoiceOut(BaseModel):
    id: str
    object: Literal["invoice"] = "invoice"
    status: str
    exception: str | None
    amount: str
    currency: str
    asset: str | None
    amount_due: str | None
    amount_paid: str
    payment_options: list[PaymentOptionOut]
    platform_fee_percentage: str
    order_id: str | None
    description: str | None
    metadata: dict[str, Any]
    redirect_url: str | None
    confirmations: int | None
    checkout_url: str
    created_at: datetime
    expires_at: datetime
    monitor_until: datetime
    paid_at: datetime | None


class PublicInvoiceOut(BaseModel):
    id: str
    status: str
    amount: str
    currency: str
    description: str | None
    payment_options: list[PaymentOptionOut]
    amount_paid: str
    asset: str | None
    expires_at: datetime
    redirect_url: str | None


class PaymentOut(BaseModel):
    id: str
    object: Literal["payment"] = "payment"
    invoice_id: str
    status: str
    chain: str
    tx_id: str
    index: int
    asset: str
    amount: str
    destination: str
    memo: str | None
    block: int | None
    confirmations: int
    required_confirmations: int
    dust: bool
    detected_at: datetime
    confirmed_at: datetime | None


class SettlementOut(BaseModel):
    id: str
    object: Literal["settlement"] = "settlement"
    invoice_id: str
    status: str
    asset: str
    gross_amount: str
    platform_fee_amount: str
    platform_fee_percentage: str
    net_amount: str
    payout: Literal["balance", "on_chain", "mixed"] = Field(
        description="Where the net went: the merchant's balance with Krypton, or forwarded on "
        "chain by the merchant's fee-collector contract (mixed: some of each).")
    net_forwarded_amount: str = Field(
        description="Part of net_amount the fee collector already sent to the merchant's wallet; "
        "the chain's forwarding fee (about 0.003 TON) came out of it.")
    collector_fee_amount: str = Field(
        description="Part of platform_fee_amount kept by the fee-collector contract.")
    collector_address: str | None
    created_at: datetime


class BalanceOut(BaseModel):
    asset: str
    available: str
    pending: str


class BalancesOut(BaseModel):
    object: Literal["balances"] = "balances"
    balances: list[BalanceOut]


class EventOut(BaseModel):
    id: str
    object: Literal["event"] = "event"
    type: str
    subject_id: str
    data: dict[str, Any]
    created_at: datetime


def listing(model: type[BaseModel]) -> type[BaseModel]:
    class ListOut(BaseModel):
        object: Literal["list"] = "list"
        data: list[model]  # type: ignore[valid-type]
        has_more: bool
    ListOut.__name__ = f"{model.__name__.removesuffix('Out')}List"
    return ListOut


def fmt(units: int, asset_code: str) -> str:
    return money.format_units(units, asset(asset_code).decimals)


def _options(invoice: Invoice, public_url: str, testnet: bool) -> list[dict[str, Any]]:
    out = []
    for o in invoice.options:
        where = instructions.pay_to(invoice, o, testnet=testnet)
        qr = f"{public_url.rstrip('/')}/api/v1/public/invoice/{invoice.id}/qr/{o.method}.svg" \
            if where["address"] else None
        out.append({"method": o.method, "asset": o.asset, "amount": fmt(o.amount, o.asset),
                    "rate": o.rate, **where, "qr_url": qr})
    return out


def invoice_body(i: Invoice, public_url: str, testnet: bool = False) -> dict[str, Any]:
    due = i.amount_due
    return {
        "id": i.id, "object": "invoice", "status": i.status.value,
        "exception": i.exception.value if i.exception else None,
        "amount": money.format_units(i.price_amount, PRICING_DECIMALS[i.price_currency]),
        "currency": i.price_currency, "asset": i.asset,
        "amount_due": fmt(due, i.asset) if i.asset and due is not None else None,
        "amount_paid": fmt(i.amount_paid, i.asset) if i.asset else "0",
        "payment_options": _options(i, public_url, testnet),
        "platform_fee_percentage": fees.percentage(i.fee_bps),
        "order_id": i.order_id, "description": i.description, "metadata": i.metadata,
        "redirect_url": i.redirect_url, "confirmations": i.confirmations,
        "checkout_url": f"{public_url.rstrip('/')}/pay/{i.id}",
        "created_at": i.created_at.isoformat(), "expires_at": i.expires_at.isoformat(),
        "monitor_until": i.monitor_until.isoformat(),
        "paid_at": i.paid_at.isoformat() if i.paid_at else None,
    }


def public_invoice_body(i: Invoice, public_url: str, testnet: bool = False) -> dict[str, Any]:
    return {
        "id": i.id, "status": i.status.value,
        "amount": money.format_units(i.price_amount, PRICING_DECIMALS[i.price_currency]),
        "currency": i.price_currency, "description": i.description,
        "payment_options": _options(i, public_url, testnet), "asset": i.asset,
        "amount_paid": fmt(i.amount_paid, i.asset) if i.asset else "0",
        "expires_at": i.expires_at.isoformat(), "redirect_url": i.redirect_url,
    }


def payment_body(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id, "object": "payment", "invoice_id": p.invoice_id, "status": p.status.value,
        "chain": p.chain.value, "tx_id": p.tx_id, "index": p.index, "asset": p.asset,
        "amount": fmt(p.amount, p.asset), "destination": p.destination, "memo": p.memo,
        "block": p.block, "confirmations": p.confirmations,
        "required_confirmations": p.required_confirmations, "dust": p.dust,
        "detected_at": p.detected_at.isoformat(),
        "confirmed_at": p.confirmed_at.isoformat() if p.confirmed_at else None,
    }


def settlement_body(s: Settlement) -> dict[str, Any]:
    return {
        "id": s.id, "object": "settlement", "invoice_id": s.invoice_id, "status": s.status.value,
        "asset": s.asset, "gross_amount": fmt(s.gross, s.asset),
        "platform_fee_amount": fmt(s.fee, s.asset),
        "platform_fee_percentage": fees.percentage(s.fee_bps), "net_amount": fmt(s.net, s.asset),
        "payout": s.payout.value, "net_forwarded_amount": fmt(s.forwarded, s.asset),
        "collector_fee_amount": fmt(s.collector_fee, s.asset),
        "collector_address": s.collector_address, "created_at": s.created_at.isoformat(),
    }

