"""Property tests of the pure domain rules: money, fees, pricing, confirmations and the
transition tables. No database, no clock: every input is drawn by hypothesis or listed."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from krypton.domain import confirmations, fees
from krypton.domain.assets import ASSETS, TON, USDT_TON, USDT_TRC20, XTR, Asset, Chain
from krypton.domain.errors import DomainError, IllegalTransition, InvalidAmount
from krypton.domain.invoice import Invoice, InvoiceStatus, PaymentOption
from krypton.domain.money import MAX_UNITS, convert_price, format_units, parse_units, value_in
from krypton.domain.payment import Payment, PaymentStatus

DECIMALS = (0, 2, 6, 9)
decimals = st.sampled_from(DECIMALS)
units = st.integers(min_value=0, max_value=MAX_UNITS)
# What a formatted amount may look like: digits, an optional dot and a fraction that does
# not end in zero. No sign, exponent, spaces, "nan" or "inf".
CANONICAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")
STRICT_INPUT = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


# --- money -----------------------------------------------------------------------------


@given(units, decimals)
@example(0, 0)
@example(MAX_UNITS, 0)
@example(MAX_UNITS, 9)
@example(1, 9)
@example(10**9, 9)
def test_format_then_parse_round_trips(u: int, d: int) -> None:
    text = format_units(u, d)
    assert parse_units(text, d, positive=False) == u


@given(units, decimals)
@example(10**30 % MAX_UNITS, 9)
def test_format_is_a_plain_canonical_decimal(u: int, d: int) -> None:
    text = format_units(u, d)
    assert CANONICAL.fullmatch(text), text
    assert "e" not in text.lower() and "inf" not in text.lower() and "nan" not in text.lower()
    _, _, frac = text.partition(".")
    assert len(frac) <= d
    # Exact: the string denotes precisely u smallest units.
    assert Decimal(text).scaleb(d) == u


@given(st.integers(min_value=-MAX_UNITS, max_value=-1), decimals)
def test_format_of_a_negative_amount_keeps_its_sign_and_digits(u: int, d: int) -> None:
    assert format_units(u, d) == "-" + format_units(-u, d)


@given(st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.fractions(),
    st.booleans(),
    st.none(),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=2),
), decimals, st.booleans())
@example(9.99, 2, True)
@example(10, 0, True)
@example(Decimal("9.99"), 2, True)
@example(b"1", 0, True)
def test_parse_refuses_anything_but_a_string(value: object, d: int, positive: bool) -> None:
    with pytest.raises(InvalidAmount) as info:
        parse_units(value, d, positive=positive)
    assert info.value.field == "amount"


@given(units, decimals, st.integers(min_value=1, max_value=5), st.data())
def test_parse_refuses_more_decimals_than_allowed(u: int, d: int, extra: int, data: st.DataObject) -> None:
    whole = format_units(u // 10**d, 0)
    frac = data.draw(st.text("0123456789", min_size=d + extra, max_size=d + extra))
    with pytest.raises(InvalidAmount, match="decimal places"):
        parse_units(f"{whole}.{frac}", d, positive=False)


@given(units, decimals, st.booleans())
@example(0, 2, False)
def test_parse_refuses_negatives(u: int, d: int, positive: bool) -> None:
    with pytest.raises(InvalidAmount):
        parse_units("-" + format_units(u, d), d, positive=positive)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["e", "E"]),
       st.sampled_from(["", "+", "-"]), st.integers(min_value=0, max_value=30), decimals)
@example(1, "e", "", 5, 0)
@example(15, "E", "-", 1, 2)
def test_parse_refuses_exponents(mantissa: int, e: str, sign: str, exp: int, d: int) -> None:
    with pytest.raises(InvalidAmount):
        parse_units(f"{mantissa}{e}{sign}{exp}", d, positive=False)
    with pytest.raises(InvalidAmount):
        parse_units(f"{mantissa}.5{e}{sign}{exp}", d, positive=False)


@pytest.mark.parametrize("text", [
    "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "+Infinity", "inf", "-inf", "INF",
    "", ".", ".5", "5.", "+1", "01", "00.1", "1_000", "1,5", "0x10", "١", "１", "1.2.3",
    "--1", "1-", "½",
])
@pytest.mark.parametrize("d", DECIMALS)
def test_parse_refuses_non_plain_numbers(text: str, d: int) -> None:
    with pytest.raises(InvalidAmount):
        parse_units(text, d, positive=False)


@given(units, decimals, st.text(" \t\n\r\x0b\x0c\u00a0\u2003", min_size=1, max_size=3),
       st.sampled_from(["lead", "trail", "both"]))
def test_parse_refuses_surrounding_whitespace(u: int, d: int, ws: str, where: str) -> None:
    text = format_units(u, d)
    padded = {"lead": ws + text, "trail": text + ws, "both": ws + text + ws}[where]
    with pytest.raises(InvalidAmount):
        parse_units(padded, d, positive=False)


@given(st.integers(min_value=MAX_UNITS + 1, max_value=MAX_UNITS * 10**3), decimals)
@example(MAX_UNITS + 1, 0)
@example(MAX_UNITS + 1, 9)
def test_parse_refuses_more_than_max_units(u: int, d: int) -> None:
    with pytest.raises(InvalidAmount, match="larger than the maximum"):
        parse_units(format_units(u, d), d, positive=False)


@given(decimals, st.data())
def test_parse_refuses_zero_when_positive(d: int, data: st.DataObject) -> None:
    zeros = data.draw(st.integers(min_value=0, max_value=d))
    text = "0" if zeros == 0 else "0." + "0" * zeros
    with pytest.raises(InvalidAmount, match="greater than zero"):
        parse_units(text, d, positive=True)
    assert parse_units(text, d, positive=False) == 0


@given(st.text(max_size=25) | st.from_regex(r"-?[0-9]{1,22}(\.[0-9]{0,12})?([eE][+-]?[0-9]{1,3})?",
                                            fullmatch=True), decimals, st.booleans())
def test_parse_accepts_exactly_plain_decimals_and_never_rounds(text: str, d: int, positive: bool) -> None:
    try:
        u = parse_units(text, d, positive=positive)
    except InvalidAmount:
        return
    assert STRICT_INPUT.fullmatch(text), text
    assert Decimal(text).scaleb(d) == u  # exact, nothing rounded away
    assert 0 <= u <= MAX_UNITS and (u > 0 or not positive)


# --- fees ------------------------------------------------------------------------------

bps = st.integers(min_value=0, max_value=fees.MAX_FEE_BPS)


@given(units, bps)
@example(MAX_UNITS, fees.MAX_FEE_BPS)
@example(MAX_UNITS, 1)
@example(1, 9_999)
@example(0, 100)
def test_fee_split_is_exact_and_rounds_down(gross: int, b: int) -> None:
    s = fees.split(gross, b)
    assert s.gross == gross
    assert s.fee + s.net == gross
    assert 0 <= s.fee <= gross and 0 <= s.net <= gross
    assert s.fee == gross * b // 10_000
    # Rounds down: the fee never exceeds the exact rate, and misses it by less than one unit.
    assert Fraction(s.fee) <= Fraction(gross * b, 10_000) < s.fee + 1


@given(units, bps, bps)
def test_fee_is_monotone_in_bps(gross: int, b1: int, b2: int) -> None:
    lo, hi = sorted((b1, b2))
    assert fees.split(gross, lo).fee <= fees.split(gross, hi).fee
    assert fees.split(gross, lo).net >= fees.split(gross, hi).net


@given(units)
def test_fee_edges(gross: int) -> None:
    assert fees.split(gross, 0) == fees.FeeSplit(gross, 0, gross)
    assert fees.split(gross, fees.MAX_FEE_BPS) == fees.FeeSplit(gross, gross, 0)


@pytest.mark.parametrize("b", [-1, 10_001, True, 1.0, "100", None])
def test_fee_split_refuses_bad_bps(b: object) -> None:
    with pytest.raises(DomainError):
        fees.split(100, b)  # type: ignore[arg-type]


def test_fee_split_refuses_negative_gross() -> None:
    with pytest.raises(DomainError):
        fees.split(-1, 100)


# --- pricing ---------------------------------------------------------------------------

# A rate is a positive plain decimal with at most 6 decimal places, as the rate sources give.
rates = st.builds(lambda n, d: (n, d), st.integers(min_value=1, max_value=10**12),
                  st.integers(min_value=0, max_value=6)).map(lambda nd: format_units(*nd))


@given(st.integers(min_value=1, max_value=10**15), st.sampled_from((0, 2, 6, 9)), rates,
       st.sampled_from((0, 6, 9)))
@example(1, 2, "3", 9)  # $0.01 at $3 per TON: 0.00333... TON rounds up
@example(999, 2, "5.12", 9)
@example(1, 2, "1000000000000", 0)  # far less than one smallest unit still costs one unit
def test_convert_price_rounds_up_by_less_than_one_unit(price: int, price_d: int, rate_text: str,
                                                       asset_d: int) -> None:
    rate = Fraction(Decimal(rate_text))
    try:
        asset_units = convert_price(price, price_d, rate, asset_d)
    except InvalidAmount:
        assume(False)
        raise
    want = Fraction(price, 10**price_d)
    got = value_in(asset_units, asset_d, rate)
    one_unit = value_in(1, asset_d, rate)
    assert want <= got < want + one_unit
    assert asset_units >= 1


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from((6, 9)))
def test_convert_price_too_large_is_refused(rate_millionths: int, asset_d: int) -> None:
    # MAX_UNITS cents at a rate of at most 1 is at least MAX_UNITS * 10**(asset_d - 2) units.
    with pytest.raises(InvalidAmount):
        convert_price(MAX_UNITS, 2, Fraction(rate_millionths, 10**6), asset_d)


# --- confirmations ---------------------------------------------------------------------

usd_values = st.fractions(min_value=0, max_value=10**9, max_denominator=10**9) | st.sampled_from(
    [Fraction(0), Fraction(9_999, 100), Fraction(100), Fraction(100_01, 100),
     Fraction(999_999, 100), Fraction(10_000), Fraction(10_000_01, 100)])


def expected_tier(usd: Fraction) -> int:
    if usd < 100:
        return 1
    if usd < 10_000:
        return 12
    return 19


@pytest.mark.parametrize(("usd", "count"), [
    (Fraction(0), 1), (Fraction(9_999, 100), 1), (Fraction(100), 12), (Fraction(9_999_99, 100), 12),
    (Fraction(10_000), 19), (Fraction(10**12), 19)])
def test_confirmation_tiers_on_tron(usd: Fraction, count: int) -> None:
    assert confirmations.required(USDT_TRC20, usd) == count


@given(st.sampled_from(list(ASSETS.values())), usd_values,
       st.none() | st.integers(min_value=-5, max_value=200))
def test_confirmations_follow_tier_or_override_capped_by_finality(asset: Asset, usd: Fraction,
                                                                  override: int | None) -> None:
    n = confirmations.required(asset, usd, override)
    wanted = expected_tier(usd) if override is None else override
    assert n == max(1, min(wanted, asset.finality_depth))
    assert 1 <= n <= asset.finality_depth


@given(usd_values, st.none() | st.integers(min_value=1, max_value=100))
def test_ton_is_final_after_one_confirmation(usd: Fraction, override: int | None) -> None:
    assert confirmations.required(TON, usd, override) == 1
    assert confirmations.required(USDT_TON, usd, override) == 1
    assert confirmations.required(XTR, usd, override) == 1


@given(usd_values, st.integers(min_value=1, max_value=100))
def test_tron_override_is_capped_at_solidification(usd: Fraction, override: int) -> None:
    assert confirmations.required(USDT_TRC20, usd, override) == min(override, 19)


@given(usd_values, st.none() | st.integers(min_value=-5, max_value=200))
def test_a_payment_shows_what_it_really_waits_for(usd: Fraction, override: int | None) -> None:
    # Tron: solidification, 19 blocks, whatever the policy says; elsewhere the policy's count.
    assert confirmations.waits_for(USDT_TRC20, usd, override) == 19
    for asset in (TON, USDT_TON, XTR):
        assert confirmations.waits_for(asset, usd, override) == confirmations.required(asset, usd, override)


@given(usd_values, usd_values)
def test_confirmations_monotone_in_value(a: Fraction, b: Fraction) -> None:
    lo, hi = sorted((a, b))
    assert confirmations.required(USDT_TRC20, lo) <= confirmations.required(USDT_TRC20, hi)


# --- transition tables (listed here by hand, from the documented life cycles) -----------

IS = InvoiceStatus
INVOICE_ALLOWED = {
    (IS.PENDING, IS.CONFIRMING), (IS.PENDING, IS.EXPIRED), (IS.PENDING, IS.CANCELLED),
    (IS.CONFIRMING, IS.PAID), (IS.CONFIRMING, IS.PENDING), (IS.CONFIRMING, IS.EXPIRED),
    (IS.EXPIRED, IS.CONFIRMING), (IS.PAID, IS.REFUNDED),
}
PS = PaymentStatus
PAYMENT_ALLOWED = {
    (PS.DETECTED, PS.CONFIRMING), (PS.DETECTED, PS.FAILED),
    (PS.CONFIRMING, PS.CONFIRMED), (PS.CONFIRMING, PS.FAILED), (PS.CONFIRMING, PS.ORPHANED),
    (PS.ORPHANED, PS.DETECTED), (PS.CONFIRMED, PS.REFUNDED),
}
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def make_invoice(status: InvoiceStatus) -> Invoice:
    return Invoice(
        id="inv_1", merchant_id="mer_1", price_currency="TON", price_amount=10**10,
        options=(PaymentOption("ton", "TON", 10**10, "1", "5"),), fee_bps=100,
        underpayment_tolerance_bps=0, created_at=NOW, expires_at=NOW + timedelta(minutes=15),
        monitor_until=NOW + timedelta(days=1), status=status)


def make_payment(status: PaymentStatus, *, amount: int = 10**10, asset: str = "TON",
                 dust: bool = False) -> Payment:
    return Payment(
        id="pay_1", invoice_id="inv_1", merchant_id="mer_1", chain=Chain.TON, tx_id="tx",
        index=0, asset=asset, amount=amount, destination="addr", memo=None, block=1,
        confirmations=0, required_confirmations=1, dust=dust, detected_at=NOW, status=status)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(InvoiceStatus, repeat=2)))
def test_invoice_transition_table(source: InvoiceStatus, target: InvoiceStatus) -> None:
    invoice = make_invoice(source)
    if (source, target) in INVOICE_ALLOWED:
        invoice.move(target)
        assert invoice.status is target
        assert invoice.changes == [(source, target)]
    else:
        with pytest.raises(IllegalTransition) as info:
            invoice.move(target)
        assert info.value.code == "illegal_transition"
        assert invoice.status is source and invoice.changes == []


@pytest.mark.parametrize(("source", "target"), list(itertools.product(PaymentStatus, repeat=2)))
def test_payment_transition_table(source: PaymentStatus, target: PaymentStatus) -> None:
    payment = make_payment(source)
    if (source, target) in PAYMENT_ALLOWED:
        payment.move(target)
        assert payment.status is target
        assert payment.changes == [(source, target)]
    else:
        with pytest.raises(IllegalTransition):
            payment.move(target)
        assert payment.status is source and payment.changes == []


def test_transition_tables_cover_every_status() -> None:
    assert {s for pair in INVOICE_ALLOWED for s in pair} == set(InvoiceStatus)
    assert {s for pair in PAYMENT_ALLOWED for s in pair} == set(PaymentStatus)


# --- folding payments into an invoice ---------------------------------------------------

payment_states = st.lists(st.tuples(
    st.integers(min_value=0, max_value=3 * 10**10),
    st.sampled_from(list(PaymentStatus)),
    st.booleans(),
), min_size=1, max_size=5)


@given(payment_states, st.integers(min_value=0, max_value=fees.MAX_FEE_BPS),
       st.sampled_from([IS.PENDING, IS.CONFIRMING, IS.EXPIRED]))
@example([(2_000_000, PS.DETECTED, False)], 10_000, IS.PENDING)
def test_an_invoice_is_paid_only_by_confirmed_money(states: list[tuple[int, PaymentStatus, bool]],
                                                    tolerance: int, start: InvoiceStatus) -> None:
    """PAID means confirmed money at least the amount due less the tolerance, and some money.

    Even at a tolerance of 10,000 bps (which Merchant refuses) nothing confirmed never pays.
    """
    invoice = make_invoice(start)
    invoice.underpayment_tolerance_bps = tolerance
    invoice.asset = "TON"
    due = invoice.price_amount
    payments = []
    for n, (amount, status, dust) in enumerate(states):
        p = make_payment(status, amount=amount, dust=dust)
        p.id, p.tx_id = f"pay_{n}", f"tx{n}"
        payments.append(p)
    invoice.apply(payments, NOW)
    counted = [p for p in payments if not p.dust and p.status in (PS.DETECTED, PS.CONFIRMING, PS.CONFIRMED)]
    assert invoice.amount_detected == sum(p.amount for p in counted)
    assert invoice.amount_paid == sum(p.amount for p in counted if p.status is PS.CONFIRMED)
    if invoice.status is IS.PAID:
        assert invoice.amount_paid > 0, "paid with no confirmed money"
        assert invoice.amount_paid >= due - due * tolerance // 10_000
        assert invoice.paid_at == NOW
