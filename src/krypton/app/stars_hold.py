"""Telegram's hold on Stars: a bot may withdraw Stars only some days after it received them
(KRYPTON_STARS_HOLD_DAYS, 21 by default). A Stars settlement's net therefore goes to the
merchant's held account (`ledger.merchant_held`), shown as pending, and this job moves it to
the available account once the hold has passed: one journal entry per settlement, with the
settlement id as reference (unique: a settlement is never released twice). A refund made
while the money is still held took its part from there already, so only the rest moves."""

from __future__ import annotations

from datetime import timedelta

from krypton.app.deps import Deps
from krypton.app.stars_book import StarsBooks
from krypton.domain import events, ledger
from krypton.domain.assets import XTR

DEFAULT_HOLD = timedelta(days=21)


async def release_held(deps: Deps, books: StarsBooks, hold: timedelta, *, limit: int = 200) -> int:
    """Release every Stars settlement whose hold has passed; how many were released."""
    now = deps.clock.now()
    released = 0
    async with deps.uow() as uow:
        book = books(uow)
        for due in await book.due_releases(XTR.code, now - hold, limit):
            held = await book.held_settlement(due.id, for_update=True)  # a refund may race us
            if held is None:
                continue
            amount = await book.held_left(held)
            await uow.ledger.post(ledger.released(held.id, held.merchant_id, held.asset, amount),
                                  now)
            await uow.events.append(events.Event(
                events.SETTLEMENT_RELEASED, held.merchant_id, held.id, {
                    "invoice_id": held.invoice_id, "asset": held.asset, "net": str(held.net),
                    "released": str(amount), "held_since": held.created_at.isoformat()}), now)
            released += 1
        await uow.commit()
    return released
