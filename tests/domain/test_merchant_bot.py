"""The merchant bot's rules: link codes, commands, /invoice's arguments, the notification
texts (escaped for Telegram's HTML) and the retry schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krypton.domain import merchant_bot as rules


@given(st.binary(min_size=rules.CODE_LENGTH, max_size=rules.CODE_LENGTH))
def test_every_code_reads_back_as_itself_however_it_is_typed(random: bytes) -> None:
    code = rules.new_code(random)
    assert len(code) == rules.CODE_LENGTH and set(code) <= set(rules.CODE_ALPHABET)
    typed = f" {code[:5].lower()}-{code[5:]} ".replace("0", "o").replace("1", "l")
    assert rules.normalise_code(typed) == code


@pytest.mark.parametrize("text", ["", "ABC", "ABCDEFGHJKM", "ABCDEFGHJ!", "ABCDEFGHJU"])
def test_what_cannot_be_a_code_is_none(text: str) -> None:
    assert rules.normalise_code(text) is None


def test_the_hash_is_not_the_code_and_differs_per_code() -> None:
    assert rules.code_hash("ABCDEFGHJK") != rules.code_hash("ABCDEFGHJM")
    assert "ABCDEFGHJK" not in rules.code_hash("ABCDEFGHJK")


@pytest.mark.parametrize(("text", "expected"), [
    ("/balance", rules.Command("balance", ())),
    ("/Invoice 5  TON", rules.Command("invoice", ("5", "TON"))),
    ("/balance@krypton_bot", rules.Command("balance", ())),
    ("/balance@KRYPTON_BOT", rules.Command("balance", ())),
    ("/balance@other_bot", None),
    ("hello /balance", None),
    ("/", None),
    (None, None),
])
def test_commands(text: str | None, expected: rules.Command | None) -> None:
    assert rules.parse_command(text, "krypton_bot") == expected


@pytest.mark.parametrize(("args", "expected"), [
    (("12,50", "usd"), rules.InvoiceOrder("12.50", "USD", None)),
    (("3", "USDT"), rules.InvoiceOrder("3", "USDT", None)),
    (("3", "usdt_trc20"), rules.InvoiceOrder("3", "USDT", ("usdt_trc20",))),
    (("5", "TON"), rules.InvoiceOrder("5", "TON", ("ton",))),
    (("100", "stars"), rules.InvoiceOrder("100", "XTR", ("stars",))),
])
def test_invoice_arguments(args: tuple[str, ...], expected: rules.InvoiceOrder) -> None:
    assert rules.invoice_order(args) == expected


def test_notifications_format_integers_and_escape_what_comes_from_outside() -> None:
    data = {"price_amount": "1250", "price_currency": "USD", "asset": "TON",
            "amount_paid": "2500000000", "order_id": "<b>#1</b> & co", "exception": "paid_late"}
    assert rules.notification(rules.PAID, "inv_1", data) == (
        "✅ Invoice <code>inv_1</code> (order &lt;b&gt;#1&lt;/b&gt; &amp; co) is paid (paid after "
        "it expired): 2.5 TON received for 12.5 USD.")
    underpaid = {"price_amount": "10000000", "price_currency": "USDT", "asset": "USDT_TRC20",
                 "amount_detected": "4000000", "amount_due": "10000000",
                 "amount_remaining": "6000000"}
    assert rules.notification(rules.UNDERPAID, "inv_2", underpaid) == (
        "⚠️ Invoice <code>inv_2</code> is underpaid: 4 USDT_TRC20 of 10 USDT_TRC20 received, "
        "6 USDT_TRC20 still due (price 10 USDT).")
    expired = {"price_amount": "5", "price_currency": "XTR", "asset": None, "amount_paid": "0"}
    assert rules.notification(rules.EXPIRED, "inv_3", expired) == (
        "⌛ Invoice <code>inv_3</code> expired (price 5 XTR). Nothing was paid.")


def test_retry_schedule_then_give_up() -> None:
    assert rules.retry_delay(1) == timedelta(seconds=5)
    assert rules.retry_delay(len(rules.RETRY_DELAYS)) == timedelta(hours=1)
    assert rules.retry_delay(len(rules.RETRY_DELAYS) + 1) is None


def test_balances_text() -> None:
    assert rules.balances_text({"TON": (1_500_000_000, 0), "USDT_TRC20": (0, 2_000_000)}) == (
        "<b>Balances</b> (available / pending)\nTON: 1.5 / 0\nUSDT_TRC20: 0 / 2")
