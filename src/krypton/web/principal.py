"""Who is calling the merchant API: an API key, or a dashboard session standing in for one
(web/auth.py checks keys, web/sessions.py sessions; both hand this on)."""

from __future__ import annotations

from dataclasses import dataclass

from krypton.domain.merchant import Merchant


@dataclass(frozen=True, slots=True)
class Principal:
    merchant_id: str
    key_id: str  # key_…, or usr:<user id> for a session
    scopes: frozenset[str]
    # The merchant's settings, cached with the key (same lifetime): saves a query per invoice.
    merchant: Merchant | None = None
