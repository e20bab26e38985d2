"""Telegram Stars subscriptions: an invoice that asks to be paid again every period.

pending (asked, not yet paid) -> active (paid; renewals advance `expires_at`). Telegram
allows one period, 30 days, and at most 10,000 Stars a period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from krypton.domain.errors import DomainError

PERIOD = 2_592_000  # seconds: 30 days, the only period Telegram accepts
MAX_STARS = 10_000


class SubscriptionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"


@dataclass(slots=True)
class Subscription:
    id: str
    merchant_id: str
    invoice_id: str
    period: int
    created_at: datetime
    updated_at: datetime
    status: SubscriptionStatus = SubscriptionStatus.PENDING
    payer_id: int | None = None
    expires_at: datetime | None = None
    renewals: int = 0

    def start(self, payer_id: int | None, expires_at: datetime | None, now: datetime) -> bool:
        """The first payment arrived; False if it had already."""
        if self.status is SubscriptionStatus.ACTIVE:
            return False
        self.status = SubscriptionStatus.ACTIVE
        self.payer_id = payer_id
        self.expires_at = expires_at
        self.updated_at = now
        return True

    def renew(self, expires_at: datetime | None, now: datetime) -> None:
        """A renewal was paid: the expiry only moves forward (a late-delivered older renewal
        must not shorten it); without Telegram's date, one period past the old expiry."""
        base = self.expires_at or now
        candidate = expires_at if expires_at is not None else max(base, now) + _period(self)
        self.expires_at = max(base, candidate)
        self.status = SubscriptionStatus.ACTIVE
        self.renewals += 1
        self.updated_at = now


def _period(sub: Subscription) -> timedelta:
    return timedelta(seconds=sub.period)


def validate(period: int | None, stars: bool, price_currency: str, amount: int) -> int | None:
    """The subscription period an invoice request may ask for (None: not a subscription)."""
    if period is None:
        return None
    if period != PERIOD:
        raise DomainError(f"subscription_period must be {PERIOD} (30 days), the only period "
                          "Telegram allows.", field="subscription_period")
    if not stars:
        raise DomainError("A subscription is paid in Telegram Stars only: set methods to "
                          "[\"stars\"].", field="methods")
    if price_currency != "XTR":
        raise DomainError("A Stars subscription is priced in Stars: set currency to XTR.",
                          field="currency")
    if not 1 <= amount <= MAX_STARS:
        raise DomainError(f"A Stars subscription costs 1 to {MAX_STARS} Stars a period.",
                          field="amount")
    return period
