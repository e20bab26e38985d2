"""What the checkout says about an invoice's state, in the payer's language: one place, used
for the first render and for every update the page's script asks for."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Shown:
    state: str  # pending, underpaid, confirming, paid, expired, cancelled: the page's look
    title: str
    detail: str
    tone: str  # neutral, good, warn, bad
    paying: bool  # the payment instructions stay on the page
    progress: tuple[int, int] | None = None  # confirmations (seen, required)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def describe(invoice: dict[str, Any], t: dict[str, str]) -> Shown:
    """`invoice`: the public view (api/schemas.PublicInvoiceOut); `t`: pages/i18n.TEXT[lang]."""
    status, exception = invoice["status"], invoice["exception"]
    confirming = invoice.get("confirming")
    if status == "paid":
        detail = {"paid_late": t["paid_late"], "overpaid": t["overpaid"]}.get(exception or "", "")
        return Shown("paid", t["paid"], detail, "good", paying=False)
    if status == "expired":
        return Shown("expired", t["invoice"] + " " + invoice["id"], t["expired"], "bad", paying=False)
    if status == "cancelled":
        return Shown("cancelled", t["invoice"] + " " + invoice["id"], t["cancelled"], "bad", paying=False)
    if status == "confirming" or confirming is not None:
        progress = (confirming["seen"], confirming["required"]) if confirming else None
        detail = t["confirmations"].format(seen=progress[0], required=progress[1]) if progress else ""
        if confirming and confirming["chain"] == "tron":
            detail = f"{detail} {t['tron_wait']}".strip()
        return Shown("confirming", t["confirming"], detail, "neutral", paying=False, progress=progress)
    if exception == "underpaid":
        remaining = next((o for o in invoice["payment_options"] if o["asset"] == invoice["asset"]), None)
        title = t["underpaid"].format(remaining=remaining["amount"] if remaining else "?",
                                      asset=t.get(f"asset_{invoice['asset']}", invoice["asset"] or ""))
        return Shown("underpaid", title, "", "warn", paying=True)
    return Shown("pending", t["pending"], "", "neutral", paying=True)
