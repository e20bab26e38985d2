"""Request and response bodies. Amounts are decimal strings; ids carry their prefix."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    create_model,
    field_validator,
)

from krypton.app.ports import StoredEvent
from krypton.domain import events as event_types
from krypton.domain import fees, money
from krypton.domain.assets import ASSETS, METHODS, PRICING_DECIMALS, Chain, asset
from krypton.domain.invoice import MAX_EXPIRY, MIN_EXPIRY, Invoice, InvoiceException, InvoiceStatus
from krypton.domain.payment import Payment, PaymentStatus
from krypton.domain.settlement import Settlement, SettlementStatus
from krypton.domain.webhooks import Attempt, Delivery, Endpoint
from krypton.web.api import bodies, instructions

MAX_METADATA_BYTES = 4096
# Objects and lists nest at most this deep in metadata (the metadata object is level 1): deeper
# documents broke the renderer of every list holding the invoice.
MAX_METADATA_DEPTH = 16
# Integers in metadata fit in 64 signed bits: what JSON parsers, PostgreSQL's bigint and the
# response renderer all take.
METADATA_INT_RANGE = (-(2**63), 2**63 - 1)
# Far more than the largest amount (19 digits of smallest units plus a dot); stops a huge string
# from reaching the integer parser.
MAX_AMOUNT_CHARS = 64


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_nul(value: str, info: ValidationInfo) -> str:
    if "\x00" in value:
        raise ValueError(f"{info.field_name} must not contain the NUL character (\\u0000); remove it.")
    return value


def _has_surrogate(text: str) -> bool:
    # A JSON escape such as "\udfff" decodes to half of a UTF-16 pair: not a character, so it
    # can be neither stored nor sent back as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _spot(where: str) -> str:
    # A path into metadata quoted in an error: a 4 KB key need not come back whole.
    return where if len(where) <= 120 else where[:120] + "…"


def _surrogate_error(where: str) -> ValueError:
    return ValueError(f"{_spot(where)} contains a lone UTF-16 surrogate (an escape such as \\udfff "
                      "without its pair), which is not a character; send valid Unicode text.")


def _check_metadata(value: Any, where: str, depth: int) -> None:
    """Refuse what cannot be stored or rendered back: nesting deeper than MAX_METADATA_DEPTH,
    integers outside 64 bits, lone surrogates in keys or strings. `where` names the spot."""
    if isinstance(value, dict | list):
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"metadata must nest at most {MAX_METADATA_DEPTH} levels of objects "
                             f"and lists; {_spot(where)} is nested deeper.")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and _has_surrogate(key):
                raise _surrogate_error(f"A key in {where}")
            _check_metadata(item, f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]",
                            depth + 1)
    elif isinstance(value, str):
        if _has_surrogate(value):
            raise _surrogate_error(where)
    elif isinstance(value, int) and not isinstance(value, bool):
        low, high = METADATA_INT_RANGE
        if not low <= value <= high:
            raise ValueError(f"{_spot(where)} must be a whole number from -2^63 to 2^63-1; send a larger "
                             "number as a string.")


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
    order_id: Text | None = Field(None, max_length=200, description="Your own reference, e.g. the "
                                  "order number; returned as sent, and a filter of the invoice list.")
    description: Text | None = Field(None, max_length=1000,
                                     description="What is being paid for; shown to the payer.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Your own data, returned as sent: up to 4 KB of JSON, objects and lists "
        f"nested at most {MAX_METADATA_DEPTH} levels deep, whole numbers within 64 bits "
        "(-2^63 to 2^63-1).")
    expires_in: Annotated[StrictInt, Field(json_schema_extra={"minimum": 60, "maximum": 2_592_000})] \
        | None = Field(None, description="Seconds until expiry (60 to 2,592,000).")
    redirect_url: Annotated[Text, Field(json_schema_extra={"pattern": "^https?://"})] | None = Field(
        None, max_length=2000, description="Where to send the payer once the invoice is paid.")
    confirmations: Annotated[StrictInt, Field(json_schema_extra={"minimum": 1, "maximum": 100})] \
        | None = Field(None, description="Override the confirmation policy (1-100).")
    stars_subscription: bool = Field(False, description="A Telegram Stars subscription: the "
                                     "payer is charged again every 30 days (Stars only, priced "
                                     "in XTR, at most 10,000 Stars).")
    subscription_period: StrictInt | None = Field(
        None, description="Seconds between charges of a Stars subscription: 2592000 (30 days), "
        "the only period Telegram allows; the same as stars_subscription: true.")

    @field_validator("amount", "currency", "methods", "order_id", "description", "redirect_url",
                     mode="before")
    @classmethod
    def _valid_unicode(cls, value: Any, info: ValidationInfo) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and _has_surrogate(text) for text in texts):
            raise _surrogate_error(str(info.field_name))
        return value

    @field_validator("currency")
    @classmethod
    def _currency_not_asset(cls, value: str) -> str:
        # An asset code names what the payer sends, not what the price is in: say how to ask
        # for it (the domain checks every other currency and words that error).
        chosen = ASSETS.get(value)
        if chosen is not None and value not in PRICING_DECIMALS:
            raise ValueError(
                f"{value} is an asset, not a currency: price in {chosen.currency} and choose the "
                f'asset with "methods": ["{chosen.method}"].')
        return value

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

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_shape(cls, value: Any) -> Any:
        # Before pydantic walks it: its own recursion would fail first on deep nesting.
        if isinstance(value, dict):
            _check_metadata(value, "metadata", 1)
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


Id = Annotated[str, Field(description="The object's id; its prefix names its kind.")]
Amount = Annotated[str, Field(description='A decimal string in whole units of `asset`, e.g. "9.99".')]
AssetCode = Annotated[str, Field(description="TON, USDT_TON, USDT_TRC20 or XTR.")]
Moment = Annotated[datetime, Field(description="ISO 8601 time, UTC.")]
InvoiceId = Annotated[str, Field(description="The invoice (inv_…).")]


class PaymentOptionOut(BaseModel):
    method: str = Field(description="ton, usdt_ton, usdt_trc20 or stars: what the payer picks.")
    asset: AssetCode
    amount: str = Field(description="What to send now, in whole units of the asset: the whole "
                        "price, or after a partial payment what remains.")
    rate: str = Field(description="Price currency per whole unit of the asset, locked at creation "
                      '("1" when priced in the asset itself).')
    address: str | None = Field(description="Where to send: TON (UQ…) or Tron deposit address.")
    memo: str | None = Field(description="TON only: put exactly this in the transfer comment.")
    deep_link: str | None = Field(description="ton://transfer/… link for TON wallets.")
    qr_url: str | None = Field(description="SVG QR code of the deep link (or Tron address).")


class InvoiceOut(BaseModel):
    id: str = Field(description="The invoice's id (inv_…).")
    object: Literal["invoice"] = Field("invoice", description="The kind of object.")
    status: InvoiceStatus = Field(description="pending → confirming → paid; or expired, cancelled.")
    exception: InvoiceException | None = Field(
        description="What was unusual about the payments: underpaid, overpaid or paid_late.")
    amount: str = Field(description="The price, a decimal string in `currency`.")
    currency: str = Field(description="What the price is in: USD, TON, USDT or XTR.")
    asset: str | None = Field(description="The asset the payer chose with the first payment; "
                              "null until then.")
    amount_due: str | None = Field(description="The whole price in `asset`; null until it is chosen.")
    amount_paid: str = Field(description="Confirmed so far, in `asset`.")
    payment_options: list[PaymentOptionOut] = Field(
        description="How the payer can pay now: every method until a payment picks one, then "
        "that one for what remains.")
    platform_fee_percentage: str = Field(description="The platform fee taken from each payment.")
    order_id: str | None = Field(description="Your own reference, as sent.")
    description: str | None = Field(description="What is being paid for, as sent.")
    metadata: dict[str, Any] = Field(description="Your own data, as sent.")
    redirect_url: str | None = Field(description="Where the payer goes once the invoice is paid.")
    confirmations: int | None = Field(description="This invoice's own confirmation count, if set.")
    created_at: Moment
    expires_at: datetime = Field(description="After this a payment still counts, but is paid_late.")
    monitor_until: datetime = Field(description="Payments arriving after this are not credited "
                                    "(they are kept as unmatched transfers).")
    paid_at: datetime | None = Field(description="When the invoice became paid.")
    rate_source: str | None = Field(
        description="Where the USD rates of the payment options came from: coingecko, binance "
        "(with usdt-peg: USDT at 1 USD), or static (the configured table); several joined by "
        "+. Null on invoices created before it was recorded.")
    rate_at: datetime | None = Field(
        description="When the oldest of those rates was quoted; null for the static table.")
    version: int = Field(description="One more with every change: of two webhooks about this "
                         "invoice, the one with the higher version is the newer state.")
    checkout_url: str = Field(description="The hosted checkout page to send the payer to "
                              "(KRYPTON_PUBLIC_URL/pay/{id}).")


class ProgressOut(BaseModel):
    chain: Chain = Field(description="The chain of the payment being confirmed.")
    seen: int = Field(description="Confirmations so far.")
    required: int = Field(description="Confirmations it waits for (and the chain's finality).")


class PublicInvoiceOut(BaseModel):
    id: str = Field(description="The invoice's id (inv_…).")
    status: InvoiceStatus = Field(description="pending → confirming → paid; or expired, cancelled.")
    exception: InvoiceException | None = Field(
        description="underpaid (part is still due: see payment_options), overpaid or paid_late.")
    amount: str = Field(description="The price, a decimal string in `currency`.")
    currency: str = Field(description="What the price is in: USD, TON, USDT or XTR.")
    description: str | None = Field(description="What is being paid for.")
    payment_options: list[PaymentOptionOut] = Field(
        description="How to pay now: every method until a payment picks one, then that one for "
        "what remains.")
    amount_paid: str = Field(description="Confirmed so far, in `asset`.")
    asset: str | None = Field(description="The asset being paid in; null until the first payment.")
    amount_due: str | None = Field(description="The whole price in `asset`; null until it is chosen.")
    confirming: ProgressOut | None = Field(
        description="The newest payment still waiting for confirmations, if any.")
    expires_at: datetime = Field(description="Pay before this to be on time.")
    redirect_url: str | None = Field(description="Where to go once the invoice is paid.")


class TransferOut(BaseModel):
    # A transfer as its chain shows it: the run of fields PaymentOut and UnmatchedOut share
    # (not a response of its own).
    id: Id
    chain: Chain = Field(description="The chain the transfer is on.")
    tx_id: str = Field(description="The transaction's hash as the chain's explorers show it.")
    index: int = Field(description="Which transfer of that transaction (0 for the first).")
    asset: str = Field(description="TON, USDT_TON or USDT_TRC20; COUNTERFEIT or UNSUPPORTED for "
                       "a token that is not the real one.")
    amount: Amount
    destination: str = Field(description="The address it was sent to.")
    memo: str | None = Field(description="The TON comment it carried (cut to 200 characters).")


class _PaymentHead(BaseModel):
    id: str = Field(description="The payment's id (pay_…).")
    object: Literal["payment"] = Field("payment", description="The kind of object.")
    invoice_id: InvoiceId
    status: PaymentStatus = Field(description="detected → confirming → confirmed; failed; or "
                                  "orphaned when a reorganisation dropped it.")


# Pydantic orders fields base-most first along the MRO: _PaymentHead's, TransferOut's, then these.
class PaymentOut(TransferOut, _PaymentHead):
    sender: str | None = Field(description="The address the payer paid from (TON: the wallet, raw; "
                               "USDT on TON: the jetton's sender, not its jetton wallet; Tron: the "
                               "`from` address); null for payments recorded before Krypton kept it.")
    block: int | None = Field(description="The block (TON: masterchain seqno) holding it.")
    confirmations: int = Field(description="Confirmations so far.")
    required_confirmations: int = Field(description="Confirmations it waits for; it is also "
                                        "never confirmed before its chain calls it final.")
    dust: bool = Field(description="Too small to count towards the invoice.")
    detected_at: datetime = Field(description="When Krypton first saw it.")
    confirmed_at: datetime | None = Field(description="When it became confirmed.")
    version: int = Field(description="One more with every change (drop older webhook updates).")


class UnmatchedOut(TransferOut):
    reason: str = Field(description="Why it paid nothing, e.g. no_matching_invoice, wrong_asset, "
                        "invoice_paid, invoice_expired, ambiguous_memo, counterfeit_token.")
    invoice_id: str | None = Field(description="The invoice it named, if any.")
    observed_at: str = Field(description="When Krypton saw it (ISO 8601).")


class SettlementOut(BaseModel):
    id: str = Field(description="The settlement's id (set_…).")
    object: Literal["settlement"] = Field("settlement", description="The kind of object.")
    invoice_id: InvoiceId
    status: SettlementStatus = Field(description="The settlement's state.")
    asset: AssetCode
    gross_amount: str = Field(description="What the payer paid: platform_fee_amount + net_amount.")
    platform_fee_amount: str = Field(description="The platform's fee.")
    platform_fee_percentage: str = Field(description="The fee rate applied.")
    net_amount: str = Field(description="What the merchant gets.")
    payout: Literal["balance", "on_chain", "mixed"] = Field(
        description="Where the net went: the merchant's balance with Krypton, or forwarded on "
        "chain by the merchant's fee-collector contract (mixed: some of each).")
    net_forwarded_amount: str = Field(
        description="Part of net_amount the fee collector already sent to the merchant's wallet; "
        "the chain's forwarding fee (about 0.003 TON) came out of it.")
    collector_fee_amount: str = Field(
        description="Part of platform_fee_amount kept by the fee-collector contract.")
    collector_address: str | None = Field(description="The fee-collector contract, if one took it.")
    created_at: Moment


class BalanceOut(BaseModel):
    asset: AssetCode
    available: str = Field(description="Settled: the merchant's to withdraw.")
    pending: str = Field(description="Received, not yet withdrawable: not yet settled, or "
                         "held by the rail (Telegram Stars, for its hold period).")
    held: str | None = Field(None, description="Of `pending`: settled but held by the rail "
                             "until its hold period passes (Telegram Stars only, XTR).")


class BalancesOut(BaseModel):
    object: Literal["balances"] = Field("balances", description="The kind of object.")
    balances: list[BalanceOut] = Field(description="One entry per asset ever received.")


class EventOut(BaseModel):
    id: str = Field(description="The event's id (evt_…); `after` in the event list.")
    object: Literal["event"] = Field("event", description="The kind of object.")
    type: str = Field(description="What happened, e.g. invoice.paid, payment.confirmed.")
    subject_id: str = Field(description="The object it happened to.")
    data: dict[str, Any] = Field(description="The object's state then; amounts are decimal strings.")
    created_at: Moment


@functools.cache  # one list model per item model: OpenAPI names each schema once
def listing(model: type[BaseModel]) -> type[BaseModel]:
    """A page of `model`s, named for them (InvoiceList): a class made here has its own name,
    where one defined in this function would share one and come out mangled in OpenAPI."""
    fields: dict[str, Any] = {
        "object": (Literal["list"], Field("list", description="A page of a list.")),
        "data": (list[model], Field(description="This page, in the list's order.")),  # type: ignore[valid-type]
        "has_more": (bool, Field(description="Whether another page follows."))}
    return create_model(f"{model.__name__.removesuffix('Out')}List", **fields)


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
    for o in invoice.open_options():
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
    platform_fee_percentage=lambda i: fees.percentage(i.fee_bps),
    created_at=lambda i: i.created_at.isoformat(), expires_at=lambda i: i.expires_at.isoformat(),
    monitor_until=lambda i: i.monitor_until.isoformat(), paid_at=lambda i: _iso(i.paid_at),
    rate_at=lambda i: _iso(i.rate_at), checkout_url=bodies.GIVEN)
_public_invoice = bodies.builder(
    PublicInvoiceOut, status="status.value", amount=_price, currency="price_currency",
    exception=lambda i: i.exception.value if i.exception else None,
    amount_due=lambda i: fmt(due, i.asset) if i.asset and (due := i.amount_due) is not None else None,
    payment_options=bodies.GIVEN, amount_paid=_paid, confirming=bodies.GIVEN,
    expires_at=lambda i: i.expires_at.isoformat())


def invoice_body(i: Invoice, public_url: str, testnet: bool = False) -> dict[str, Any]:
    return _invoice(i, payment_options=_options(i, public_url, testnet),
                    checkout_url=f"{public_url.rstrip('/')}/pay/{i.id}")


def public_invoice_body(i: Invoice, public_url: str, testnet: bool = False,
                        payments: Sequence[Payment] = ()) -> dict[str, Any]:
    """`payments`: the invoice's, for the confirmation progress of the newest unconfirmed one."""
    waiting = [p for p in payments if p.status in (PaymentStatus.DETECTED, PaymentStatus.CONFIRMING)
               and not p.dust]
    newest = max(waiting, key=lambda p: (p.detected_at, p.id)) if waiting else None
    confirming = None if newest is None else {
        "chain": newest.chain.value, "seen": min(newest.confirmations, newest.required_confirmations),
        "required": newest.required_confirmations}
    return _public_invoice(i, payment_options=_options(i, public_url, testnet), confirming=confirming)


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


class RefundCreate(Strict):
    amount: str | None = Field(
        None, max_length=MAX_AMOUNT_CHARS, description="Stars: the whole payment's amount, or "
        "leave it out (Telegram refunds whole payments only). TON: left out, the rest of the "
        "payment; \"overpaid\", the overpaid surplus; or an amount up to what is left of the "
        "payment. The network fee is kept from it.")
    to: Literal["source", "claim"] | None = Field(
        None, description="Chain refunds: \"source\", the address the payment came from; "
        "\"claim\" (the default), a link (claim_url) where the payer gives an address.")
    reason: Text | None = Field(None, max_length=500, description="Why, for your records.")
    payment_id: str | None = Field(None, max_length=40, description="Which payment, when the "
                                   "invoice has several confirmed ones.")


class RefundOut(BaseModel):
    id: str = Field(description="The refund's id (ref_…).")
    object: Literal["refund"] = Field("refund", description="The kind of object.")
    invoice_id: str = Field(description="The invoice whose payment is refunded.")
    payment_id: str = Field(description="The payment given back.")
    asset: AssetCode
    amount: str = Field(description="Given back to the payer: the whole payment.")
    status: str = Field(description="pending (Telegram being asked), succeeded or failed.")
    reason: str | None = Field(description="Why, as the merchant said.")
    failure: str | None = Field(description="Why the rail refused it (Telegram's reason).")
    created_at: Moment
    completed_at: Moment | None = Field(description="When it succeeded or failed.")
    to: str | None = Field(description="Chain refunds: source or claim.")
    destination: str | None = Field(description="Chain refunds: the payer's address, once known.")
    network_fee: str | None = Field(description="Chain refunds: kept from amount for the network.")
    net_amount: str | None = Field(description="Chain refunds: what the payer receives.")
    claim_url: str | None = Field(None, description="Chain refunds to a claim: the payer's link "
                                  "(signed, single use, expiring); send it to the payer only.")
    claim_expires_at: Moment | None = Field(description="Until when the claim link works.")


refund_body: Callable[..., dict[str, Any]] = bodies.builder(
    RefundOut, status="status.value", amount=lambda r: fmt(r.amount, r.asset),
    to=lambda r: r.to.value if r.to else None, destination="destination",
    network_fee=lambda r: fmt(r.fee, r.asset) if r.to else None,
    net_amount=lambda r: fmt(r.amount - r.fee, r.asset) if r.to else None,
    claim_url=bodies.GIVEN, claim_expires_at=lambda r: _iso(r.claim_expires_at),
    created_at=lambda r: r.created_at.isoformat(), completed_at=lambda r: _iso(r.completed_at))
# The event log keeps amounts as integers of smallest units (its exact record, which the read
# models fold); the API shows them as decimal strings like everywhere else. Each amount field
# of an event's data, with the field that names its unit (None: always TON).
_EVENT_AMOUNTS: dict[str, str | None] = {
    **dict.fromkeys(("amount", "gross", "fee", "net", "forwarded", "collector_fee", "amount_paid",
                     "amount_detected", "amount_due", "amount_remaining"), "asset"),
    "price_amount": "price_currency", "min_withdrawal": None}


def _event_data(data: dict[str, Any]) -> dict[str, Any]:
    shown = dict(data)
    for name, unit_field in _EVENT_AMOUNTS.items():
        units = data.get(name)
        if not isinstance(units, str) or not units.lstrip("-").isdigit():
            continue
        unit = "TON" if unit_field is None else data.get(unit_field)
        if unit in PRICING_DECIMALS and unit_field == "price_currency":
            shown[name] = money.format_units(int(units), PRICING_DECIMALS[unit])
        elif isinstance(unit, str):
            shown[name] = _any_asset_amount(int(units), unit)
    return shown


event_body: Callable[[StoredEvent], dict[str, Any]] = bodies.builder(
    EventOut, data=lambda e: _event_data(e.data), created_at=lambda e: e.created_at.isoformat())
# An unmatched transfer is a row of the unmatched_transfers table (a mapping).
unmatched_body: Callable[[Mapping[str, Any]], dict[str, Any]] = bodies.builder(
    UnmatchedOut, mapping=True, index="tx_index", amount=lambda u: _any_asset_amount(u["amount"], u["asset"]),
    observed_at=lambda u: u["observed_at"].isoformat())


# --- webhooks ---------------------------------------------------------------------------
EventFilter = list[Annotated[str, Field(max_length=64, json_schema_extra={
    "enum": ["*", *sorted(event_types.WEBHOOK_TYPES)]})]]
WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048, description=(
    "Where to POST events: https, a public host (private, loopback and link-local addresses "
    "are refused, also when a name resolves to one)."), examples=["https://shop.example/hooks/krypton"])]


class WebhookEndpointCreate(Strict):
    url: WebhookUrl
    events: EventFilter = Field(["*"], min_length=1, max_length=len(event_types.TYPES) + 1,
                                description='Event types to receive, or ["*"] for all (default).')
    description: Text | None = Field(None, max_length=500, description="Your own note.")
    enabled: bool = Field(True, description="Whether events are sent to it.")


class WebhookEndpointUpdate(Strict):
    url: WebhookUrl | None = Field(None, description="A new URL, checked like a new endpoint's.")
    events: EventFilter | None = Field(None, min_length=1, max_length=len(event_types.TYPES) + 1,
                                       description='Event types to receive, or ["*"] for all.')
    description: Text | None = Field(None, max_length=500, description="Your own note; null clears it.")
    enabled: bool | None = Field(None, description="Enabling a disabled endpoint forgets its "
                                 "failures; its pending deliveries go out again.")


class SecretRotation(Strict):
    expires_in: int = Field(86_400, ge=0, le=604_800, description="Seconds the old secret keeps "
                            "signing beside the new one (every delivery carries both signatures); "
                            "0 drops it at once.")


class WebhookEndpointOut(BaseModel):
    id: str = Field(description="The endpoint's id (whe_…).")
    object: Literal["webhook_endpoint"] = Field("webhook_endpoint", description="The kind of object.")
    url: str = Field(description="Where events are POSTed.")
    events: list[str] = Field(description='The event types it receives; ["*"]: all.')
    description: str | None = Field(description="Your own note.")
    enabled: bool = Field(description="Whether events are sent to it.")
    disabled_reason: str | None = Field(description="Why it was switched off, when it was: "
                                        "410 Gone, days of failures, or by you.")
    failing_since: datetime | None = Field(description="When its current run of failed attempts "
                                           "began; null while deliveries succeed.")
    old_secret_expires_at: datetime | None = Field(
        description="During a secret rotation: until when the old secret signs too.")
    created_at: Moment


class WebhookEndpointWithSecret(WebhookEndpointOut):
    secret: str = Field(description="The signing secret (whsec_…), shown only now: store it. "
                        "Verify each delivery's webhook-signature with it (Standard Webhooks).")


class WebhookDeliveryOut(BaseModel):
    id: str = Field(description="The delivery's id (whd_…).")
    object: Literal["webhook_delivery"] = Field("webhook_delivery", description="The kind of object.")
    endpoint_id: str = Field(description="The endpoint (whe_…).")
    event_id: str = Field(description="The event (evt_…), sent as webhook-id on every attempt.")
    event_type: str = Field(description="e.g. invoice.paid, or webhook.ping for a test.")
    status: Literal["pending", "succeeded", "failed"] = Field(
        description="pending (waiting for an attempt), succeeded (a 2xx answer) or failed "
        "(every attempt failed, or 410 Gone).")
    attempts: int = Field(description="Attempts made so far.")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due; null "
                                             "once it succeeded or failed.")
    last_status: int | None = Field(description="The HTTP status of the last attempt, if any.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    created_at: Moment
    finished_at: datetime | None = Field(description="When it succeeded or failed for good.")


class WebhookAttemptOut(BaseModel):
    number: int = Field(description="1 for the first attempt.")
    at: datetime = Field(description="When it was sent.")
    request_headers: dict[str, str] = Field(description="The headers sent, signatures included.")
    status: int | None = Field(description="The HTTP status the endpoint answered, if it did.")
    error: str | None = Field(description="Why it failed, if it did.")
    response_excerpt: str = Field(description="The start of the response body (1 KiB at most).")
    duration_ms: int = Field(description="How long it took, in milliseconds.")


class WebhookDeliveryDetailOut(WebhookDeliveryOut):
    request_body: str = Field(description="The JSON body sent, exactly (the same on every attempt).")
    attempt_log: list[WebhookAttemptOut] = Field(description="Every attempt, oldest first.")


_endpoint_fields: dict[str, Any] = dict(
    events=lambda e: list(e.events), failing_since=lambda e: _iso(e.health.failing_since),
    old_secret_expires_at=lambda e: _iso(e.old_secret_until) if e.old_secret else None,
    created_at=lambda e: e.created_at.isoformat())
endpoint_body: Callable[[Endpoint], dict[str, Any]] = bodies.builder(WebhookEndpointOut, **_endpoint_fields)
endpoint_with_secret_body: Callable[..., dict[str, Any]] = bodies.builder(
    WebhookEndpointWithSecret, secret=bodies.GIVEN, **_endpoint_fields)
_delivery_fields: dict[str, Any] = dict(
    status="status.value", next_attempt_at=lambda d: _iso(d.next_attempt_at),
    created_at=lambda d: d.created_at.isoformat(), finished_at=lambda d: _iso(d.finished_at))
delivery_body: Callable[[Delivery], dict[str, Any]] = bodies.builder(WebhookDeliveryOut, **_delivery_fields)
_attempt_body = bodies.builder(WebhookAttemptOut, at=lambda a: a.at.isoformat())
_delivery_detail = bodies.builder(WebhookDeliveryDetailOut, request_body=lambda d: d.body.decode(),
                                  attempt_log=bodies.GIVEN, **_delivery_fields)


def delivery_detail_body(d: Delivery, attempts: list[Attempt]) -> dict[str, Any]:
    return _delivery_detail(d, attempt_log=[_attempt_body(a) for a in attempts])


class WebhookObjects:
    """Objects in webhooks as the REST API shows them (app/ports.WebhookObjects)."""

    def __init__(self, public_url: str, testnet: bool) -> None:
        self.public_url, self.testnet = public_url, testnet

    def invoice(self, invoice: Invoice) -> dict[str, Any]:
        return invoice_body(invoice, self.public_url, self.testnet)

    def payment(self, payment: Payment) -> dict[str, Any]:
        return payment_body(payment)

    def settlement(self, settlement: Settlement) -> dict[str, Any]:
        return settlement_body(settlement)

    def event_data(self, event: StoredEvent) -> dict[str, Any]:
        return _event_data(event.data)
