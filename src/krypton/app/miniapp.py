"""The Telegram Mini App checkout: binding a verified Telegram user to an invoice, and that
user's purchases.

The first Telegram user who opens an invoice in the Mini App (with initData the web layer
has verified) owns it: it is listed in their purchases from then on. Anyone else who opens
it later may still pay it (a link forwarded to a friend who pays for you), but is not its
owner; the history is only ever a user's own invoices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from krypton.app.deps import Deps
from krypton.domain.errors import DomainError, NotFound

MAX_PAGE = 50
DEFAULT_PAGE = 10


@dataclass(frozen=True, slots=True)
class Purchase:
    """One invoice in a Telegram user's purchases, as the payer may see it."""

    id: str
    status: str
    exception: str | None
    price_amount: int  # smallest units of price_currency
    price_currency: str
    asset: str | None  # what it was (being) paid in, once a payment chose one
    amount_paid: int  # smallest units of `asset`
    description: str | None
    created_at: datetime
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class Binding:
    invoice_id: str
    telegram_user_id: int
    owner: bool  # this user is the one the invoice is bound to


class Bindings(Protocol):
    """Where invoices' Telegram owners are kept (table miniapp_bindings)."""

    async def bind(self, invoice_id: str, telegram_user_id: int, now: datetime) -> int:
        """Bind the invoice to the user unless it has an owner already; return the owner."""

    async def owner(self, invoice_id: str) -> int | None: ...

    async def purchases(self, telegram_user_id: int, limit: int,
                        starting_after: str | None) -> tuple[list[Purchase], bool]:
        """The user's invoices, newest first (by creation), and whether more follow."""


async def bind(deps: Deps, bindings: Bindings, invoice_id: str, telegram_user_id: int) -> Binding:
    """Bind a verified Telegram user to an existing invoice (first come, first owner)."""
    if telegram_user_id <= 0:
        raise DomainError("A Telegram user id is a positive integer.", field="user")
    async with deps.uow(write=False) as uow:
        invoice = await uow.invoices.get(invoice_id)
    if invoice is None:
        raise NotFound(f"No invoice '{invoice_id}'.", field="id")
    owner = await bindings.bind(invoice_id, telegram_user_id, deps.clock.now())
    return Binding(invoice_id, telegram_user_id, owner=owner == telegram_user_id)


async def purchases(bindings: Bindings, telegram_user_id: int, *, limit: int = DEFAULT_PAGE,
                    starting_after: str | None = None) -> tuple[list[Purchase], bool]:
    if not 1 <= limit <= MAX_PAGE:
        raise DomainError(f"limit must be between 1 and {MAX_PAGE}.", field="limit")
    return await bindings.purchases(telegram_user_id, limit, starting_after)
