"""Request and response bodies. Amounts are decimal strings; ids carry their prefix."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from krypton.app.ports import StoredEvent
from krypton.domain import fees, money
from krypton.domain.assets import ASSETS, METHODS, PRICING_DECIMALS, asset
from krypton.domain.invoice import MAX_EXPIRY, MIN_EXPIRY, Invoice
from krypton.domain.payment import Payment
from krypton.domain.settlement import Settlement
from krypton.web.api import bodies, instructions

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


# Response models, each with the function rendering it (`bodies.builder`): the model is the
# one description of a body, in the OpenAPI document and in the response alike. No docstrings
# on them: Pydantic would put those in the OpenAPI document.


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


class TransferOut(BaseModel):
    # A transfer as its chain shows it: the run of fields PaymentOut and UnmatchedOut share
    # (not a response of its own).
    id: str
    chain: str
    tx_id: str
    index: int
    asset: str
    amount: str
    destination: str
    memo: str | None


class _PaymentHead(BaseModel):
    id: str
    object: Literal["payment"] = "payment"
    invoice_id: str
    status: str


# Pydantic orders fields base-most first along the MRO: _PaymentHead's, TransferOut's, then these.
class PaymentOut(TransferOut, _PaymentHead):
    block: int | None
    confirmations: int
    required_confirmations: int
    dust: bool
    detected_at: datetime
    confirmed_at: datetime | None


class UnmatchedOut(TransferOut):
    reason: str
    invoice_id: str | None
    observed_at: str


class UnmatchedList(BaseModel):
    object: str = "list"
    data: list[UnmatchedOut]
    has_more: bool


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


def _any_asset_amount(units: int, asset_code: str) -> str:
    # Counterfeit tokens have no catalogue entry: show their raw units.
    return money.format_units(units, ASSETS[asset_code].decimals) if asset_code in ASSETS else str(units)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


_option = bodies.builder(PaymentOptionOut, amount=bodies.GIVEN, address=bodies.GIVEN,
                         memo=bodies.GIVEN, deep_link=bodies.GIVEN, qr_url=bodies.GIVEN)


def _options(invoice: Invoice, public_url: str, testnet: bool) -> list[dict[str, Any]]:
    out = []
    for o in invoice.options:
        where = instructions.pay_to(invoice, o, testnet=testnet)
        qr = f"{public_url.rstrip('/')}/api/v1/public/invoice/{invoice.id}/qr/{o.method}.svg" \
            if where["address"] else None
        # Named one by one: a `**where` costs 0.2 µs an option (measured).
        out.append(_option(o, amount=fmt(o.amount, o.asset), address=where["address"],
                           memo=where["memo"], deep_link=where["deep_link"], qr_url=qr))
    return out


def _price(i: Invoice) -> str:
    return money.format_units(i.price_amount, PRICING_DECIMALS[i.price_currency])


def _paid(i: Invoice) -> str:
    return fmt(i.amount_paid, i.asset) if i.asset else "0"


_invoice = bodies.builder(
    InvoiceOut, status="status.value",
    exception=lambda i: i.exception.value if i.exception else None,
    amount=_price, currency="price_currency",
    amount_due=lambda i: fmt(due, i.asset) if i.asset and (due := i.amount_due) is not None else None,
    amount_paid=_paid, payment_options=bodies.GIVEN,
    platform_fee_percentage=lambda i: fees.percentage(i.fee_bps), checkout_url=bodies.GIVEN,
    created_at=lambda i: i.created_at.isoformat(), expires_at=lambda i: i.expires_at.isoformat(),
    monitor_until=lambda i: i.monitor_until.isoformat(), paid_at=lambda i: _iso(i.paid_at))
_public_invoice = bodies.builder(
    PublicInvoiceOut, status="status.value", amount=_price, currency="price_currency",
    payment_options=bodies.GIVEN, amount_paid=_paid, expires_at=lambda i: i.expires_at.isoformat())


def invoice_body(i: Invoice, public_url: str, testnet: bool = False) -> dict[str, Any]:
    return _invoice(i, payment_options=_options(i, public_url, testnet),
                    checkout_url=f"{public_url.rstrip('/')}/pay/{i.id}")


def public_invoice_body(i: Invoice, public_url: str, testnet: bool = False) -> dict[str, Any]:
    return _public_invoice(i, payment_options=_options(i, public_url, testnet))


payment_body: Callable[[Payment], dict[str, Any]] = bodies.builder(
    PaymentOut, status="status.value", chain="chain.value", amount=lambda p: fmt(p.amount, p.asset),
    detected_at=lambda p: p.detected_at.isoformat(), confirmed_at=lambda p: _iso(p.confirmed_at))
settlement_body: Callable[[Settlement], dict[str, Any]] = bodies.builder(
    SettlementOut, status="status.value", gross_amount=lambda s: fmt(s.gross, s.asset),
    platform_fee_amount=lambda s: fmt(s.fee, s.asset),
    platform_fee_percentage=lambda s: fees.percentage(s.fee_bps),
    net_amount=lambda s: fmt(s.net, s.asset), payout="payout.value",
    net_forwarded_amount=lambda s: fmt(s.forwarded, s.asset),
    collector_fee_amount=lambda s: fmt(s.collector_fee, s.asset),
    created_at=lambda s: s.created_at.isoformat())
event_body: Callable[[StoredEvent], dict[str, Any]] = bodies.builder(
    EventOut, created_at=lambda e: e.created_at.isoformat())
# An unmatched transfer is a row of the unmatched_transfers table (a mapping).
unmatched_body: Callable[[Mapping[str, Any]], dict[str, Any]] = bodies.builder(
    UnmatchedOut, mapping=True, index="tx_index", amount=lambda u: _any_asset_amount(u["amount"], u["asset"]),
    observed_at=lambda u: u["observed_at"].isoformat())
