"""Reconciliation: the bot's Stars history at Telegram (`getStarTransactions`) compared with
what Krypton recorded. Incoming transactions from users are payments (their id is the
charge id), outgoing ones to users are refunds (same id as the payment refunded). Each
difference is one of:

  missing_in_ledger    Telegram moved Stars Krypton has no record of
  missing_at_telegram  Krypton recorded a payment or refund Telegram does not show
  amount_differs       both know it, with different amounts

A report is stored each run (`krypton stars reconcile` shows the last, the worker runs it).
Payments recorded just now may not be in Telegram's answer yet: those younger than
`grace` are not called missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from krypton.app.deps import Deps
from krypton.app.stars_book import Report, StarsBooks
from krypton.domain.payment import PaymentStatus

PAGE = 100  # getStarTransactions' largest page
GRACE = timedelta(minutes=5)
MAX_PAGES = 10_000  # a bound on a history that never ends (a broken server)
MISSING_IN_LEDGER = "missing_in_ledger"
MISSING_AT_TELEGRAM = "missing_at_telegram"
AMOUNT_DIFFERS = "amount_differs"
# Payments whose money Krypton counts as received (and so Telegram must show).
_RECEIVED = {PaymentStatus.CONFIRMED.value, PaymentStatus.REFUNDED.value}


@dataclass(frozen=True, slots=True)
class StarTransaction:
    id: str
    amount: int
    nanostar_amount: int
    date: datetime
    incoming: bool  # from a user (a payment) rather than to one (a refund)
    user_id: int | None
    payload: str | None

    @property
    def nanostars(self) -> int:
        return self.amount * 1_000_000_000 + self.nanostar_amount


class StarsHistory(Protocol):
    async def star_transactions(self, offset: int, limit: int) -> Sequence[StarTransaction]:
        """One page of the bot's transactions, oldest first; those with another partner than
        a user (Fragment withdrawals, ads) have no `user_id`."""


async def fetch_all(history: StarsHistory, page: int = PAGE) -> list[StarTransaction]:
    found: list[StarTransaction] = []
    for n in range(MAX_PAGES):
        batch = await history.star_transactions(n * page, page)
        found.extend(batch)
        if len(batch) < page:
            break
    return found


async def reconcile(deps: Deps, books: StarsBooks, history: StarsHistory, *,
                    grace: timedelta = GRACE) -> Report:
    """Compare, store and return the report."""
    started = deps.clock.now()
    # Withdrawals to Fragment, ads and the like are not payments: only users' count.
    transactions = [t for t in await fetch_all(history) if t.user_id is not None]
    async with deps.uow(write=False) as uow:
        book = books(uow)
        charges = await book.ledger_charges()
        refunds = await book.refunded_charges()
    recent = started - grace
    payments = {c.charge_id: c for c in charges if c.status in _RECEIVED}
    differences = [
        *_compare("payment", {t.id: t for t in transactions if t.incoming},
                  {k: c.amount for k, c in payments.items()},
                  {k for k, c in payments.items() if c.detected_at > recent}),
        *_compare("refund", {t.id: t for t in transactions if not t.incoming}, refunds, set()),
    ]
    report = Report(deps.ids.new("rec"), started, len(transactions), differences)
    async with deps.uow() as uow:
        await books(uow).add_report(report)
        await uow.commit()
    return report


async def latest(deps: Deps, books: StarsBooks) -> Report | None:
    async with deps.uow(write=False) as uow:
        return await books(uow).latest_report()


def _compare(kind: str, telegram: dict[str, StarTransaction], ours: dict[str, int],
             too_new: set[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for charge_id, tx in telegram.items():
        amount = ours.get(charge_id)
        if amount is None:
            found.append(_difference(MISSING_IN_LEDGER, kind, charge_id, tx, None))
        elif tx.nanostars != amount * 1_000_000_000:
            found.append(_difference(AMOUNT_DIFFERS, kind, charge_id, tx, amount))
    for charge_id, amount in ours.items():
        if charge_id not in telegram and charge_id not in too_new:
            found.append(_difference(MISSING_AT_TELEGRAM, kind, charge_id, None, amount))
    return found


def _difference(what: str, kind: str, charge_id: str, tx: StarTransaction | None,
                ours: int | None) -> dict[str, Any]:
    return {"difference": what, "kind": kind, "charge_id": charge_id,
            "telegram_amount": str(tx.amount) if tx else None,
            "telegram_nanostars": tx.nanostar_amount if tx else None,
            "ledger_amount": str(ours) if ours is not None else None,
            "date": tx.date.isoformat() if tx else None,
            "user_id": tx.user_id if tx else None}

