"""What an API key may do: each merchant-API route needs one scope."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    INVOICES_READ = "invoices:read"
    INVOICES_WRITE = "invoices:write"
    PAYMENTS_READ = "payments:read"
    SETTLEMENTS_READ = "settlements:read"
    BALANCES_READ = "balances:read"
    EVENTS_READ = "events:read"
    WEBHOOKS_WRITE = "webhooks:write"
    REFUNDS_WRITE = "refunds:write"
    PAYOUTS_WRITE = "payouts:write"
