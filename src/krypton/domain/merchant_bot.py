"""The merchant Telegram bot's rules: one-time link codes, the commands a merchant sends, what
each notification says, and when a failed message is tried again.

Texts are Telegram HTML (parse_mode "HTML"): everything that comes from outside (an order
id, a merchant's name, an amount) is escaped here, where the text is made.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from krypton.domain import money
from krypton.domain.assets import ASSETS, PRICING_DECIMALS, XTR

# A link code: 10 characters of Crockford's base32 (no I, L, O, U to misread), 50 bits. It
# lives a few minutes and is spent by the first chat that sends it, so guessing one through
# Telegram (a few dozen messages a second at most) is hopeless.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
CODE_TTL = timedelta(minutes=10)
# What a chat may send as a command: Telegram caps a message at 4096 characters.
MAX_COMMAND_TEXT = 4096
# Telegram's own cap on a message's text.
MAX_MESSAGE = 4096

# A failed notification is tried again after these delays, then given up: an hour and a half
# in all, past which "invoice paid" is old news better read on the dashboard.
RETRY_DELAYS: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (5, 30, 120, 600, 1800, 3600))

# The invoice events a linked chat is told about.
PAID = "invoice.paid"
UNDERPAID = "invoice.underpaid"
EXPIRED = "invoice.expired"
NOTIFIED_EVENTS = frozenset({PAID, UNDERPAID, EXPIRED})

LINK_HOWTO = ("This chat is not linked to a Krypton merchant yet. In the dashboard (or with "
              "<code>krypton merchant telegram-link MERCHANT</code>) create a link code, then "
              "send <code>/link CODE</code> here.")
HELP = ("<b>Krypton merchant bot</b>\n"
        "/balance: your balances (available and pending)\n"
        "/invoice AMOUNT ASSET: a new invoice and its payment link, e.g. "
        "<code>/invoice 12.50 USD</code> or <code>/invoice 5 TON</code>\n"
        "/unlink: stop notifications and commands in this chat\n"
        "/help: this list\n"
        "Paid, underpaid and expired invoices are reported here as they happen.")


def escape(text: str) -> str:
    """Text for Telegram's HTML: only <, > and & need entities (quotes stay readable)."""
    return html.escape(text, quote=False)


def new_code(random: bytes) -> str:
    """A link code from CODE_LENGTH random bytes (each picks one character)."""
    if len(random) < CODE_LENGTH:
        raise ValueError(f"a link code needs {CODE_LENGTH} random bytes")
    # 256 is a multiple of 32: every character is equally likely.
    return "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in random[:CODE_LENGTH])


def normalise_code(text: str) -> str | None:
    """The code a person typed (any case, spaces or dashes between groups, O for 0 and I or
    L for 1, as Crockford's base32 reads them), or None when it cannot be one."""
    cleaned = text.strip().upper().replace("-", "").replace(" ", "")
    cleaned = cleaned.replace("O", "0").replace("I", "1").replace("L", "1")
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        return None
    return cleaned


def code_hash(code: str) -> str:
    """What is stored of a code: its SHA-256. 50 random bits living ten minutes need no slow
    hash; a database reader must not be able to spend a code it sees."""
    return hashlib.sha256(f"krypton-telegram-link:{code}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Command:
    """A bot command: its name without the slash or @bot suffix, and its arguments."""

    name: str
    args: tuple[str, ...]


def parse_command(text: str | None, bot_username: str | None = None) -> Command | None:
    """The command a message holds, or None for plain text or a command addressed to another
    bot in a group (`/balance@other_bot`)."""
    if not text or not text.startswith("/") or len(text) > MAX_COMMAND_TEXT:
        return None
    head, *args = text.split()
    name, _, addressee = head[1:].partition("@")
    if addressee and bot_username and addressee.lower() != bot_username.lower():
        return None
    if not name:
        return None
    return Command(name.lower(), tuple(args))


@dataclass(frozen=True, slots=True)
class InvoiceOrder:
    """What `/invoice AMOUNT ASSET` asks for: the price and the methods offered (None: the
    merchant's defaults)."""

    amount: str
    currency: str
    methods: tuple[str, ...] | None


INVOICE_USAGE = ("Write it as <code>/invoice AMOUNT ASSET</code>, e.g. <code>/invoice 12.50 USD</code>; "
                 "ASSET is USD, USDT (priced in USDT, paid as you accept it), TON, USDT_TON, "
                 "USDT_TRC20 or XTR (Telegram Stars).")


class BadCommand(ValueError):
    """A command's arguments are wrong; the message (HTML) says what to fix."""


def invoice_order(args: tuple[str, ...]) -> InvoiceOrder:
    """`/invoice`'s arguments: an amount (a dot or a comma for decimals) and an asset or a
    pricing currency. An asset (TON, USDT_TON, USDT_TRC20, XTR) is priced in its currency
    and paid in that asset only; USD and USDT are prices, paid as the merchant accepts."""
    if len(args) != 2:
        raise BadCommand(f"I need an amount and an asset. {INVOICE_USAGE}")
    amount, code = args[0].replace(",", "."), args[1].upper()
    if code == "STARS":
        code = XTR.code
    if code in ASSETS:
        chosen = ASSETS[code]
        return InvoiceOrder(amount, chosen.currency, (chosen.method,))
    if code in PRICING_DECIMALS:
        return InvoiceOrder(amount, code, None)
    raise BadCommand(f"I don't know the asset <code>{escape(args[1][:20])}</code>. "
                     f"{INVOICE_USAGE}")


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after the `attempts`-th failed try, or None: give up."""
    return RETRY_DELAYS[attempts - 1] if 1 <= attempts <= len(RETRY_DELAYS) else None


def _units(text: Any, decimals: int) -> str:
    """Event data holds amounts as integer strings; shown as decimals (raw if not one)."""
    try:
        return money.format_units(int(str(text)), decimals)
    except ValueError:
        return escape(str(text))


def _amount(text: Any, code: str | None) -> str:
    """An amount of an asset or a pricing currency, with its code."""
    if code is None:
        return escape(str(text))
    decimals = ASSETS[code].decimals if code in ASSETS else PRICING_DECIMALS.get(code, 0)
    return f"{_units(text, decimals)} {escape(code)}"


def notification(event_type: str, invoice_id: str, data: dict[str, Any]) -> str:
    """The message a linked chat gets for an invoice event (the event log's data)."""
    order = data.get("order_id")
    about = f"Invoice <code>{escape(invoice_id)}</code>"
    if order:
        about += f" (order {escape(str(order)[:200])})"
    price = _amount(data.get("price_amount"), data.get("price_currency"))
    asset = data.get("asset")
    if event_type == PAID:
        late = " (paid after it expired)" if data.get("exception") == "paid_late" else ""
        over = " (overpaid)" if data.get("exception") == "overpaid" else ""
        return (f"✅ {about} is paid{late}{over}: {_amount(data.get('amount_paid'), asset)} "
                f"received for {price}.")
    if event_type == UNDERPAID:
        return (f"⚠️ {about} is underpaid: {_amount(data.get('amount_detected'), asset)} of "
                f"{_amount(data.get('amount_due'), asset)} received, "
                f"{_amount(data.get('amount_remaining'), asset)} still due (price {price}).")
    if event_type == EXPIRED:
        seen = data.get("amount_paid")
        got = (f" {_amount(seen, asset)} had been received."
               if asset and seen not in (None, "0") else " Nothing was paid.")
        return f"⌛ {about} expired (price {price}).{got}"
    raise ValueError(f"no notification for {event_type}")


def balances_text(balances: dict[str, tuple[int, int]]) -> str:
    """/balance's answer: per asset, (available, pending) smallest units."""
    if not balances:
        return "No balances yet: nothing has been paid to you."
    lines = ["<b>Balances</b> (available / pending)"]
    for code, (available, pending) in sorted(balances.items()):
        decimals = ASSETS[code].decimals if code in ASSETS else 0
        lines.append(f"{escape(code)}: {money.format_units(available, decimals)} / "
                     f"{money.format_units(pending, decimals)}")
    return "\n".join(lines)
