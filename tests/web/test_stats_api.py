"""/api/v1/stats, /api/v1/invoices/{id}/events and /api/v1/merchant: what the merchant
dashboard reads; each merchant sees only its own; on both databases."""

from __future__ import annotations

import httpx

from krypton.app import merchants, relay
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.web.conftest import Paid
from tests.web.helpers import API, create_invoice, error_of, pay

ZEROS = {"pending": 0, "confirming": 0, "paid": 0, "expired": 0, "cancelled": 0, "refunded": 0}


async def test_a_new_merchant_has_zero_everywhere_and_a_window_ending_today(
        api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    response = await api.get(f"{API}/stats", headers=auth(merchant))
    assert response.status_code == 200, response.text
    assert response.json() == {"object": "stats", "invoices": ZEROS, "volume": [], "daily": [],
                               "first_day": "2026-10-26", "last_day": "2026-11-24"}
    week = (await api.get(f"{API}/stats", params={"days": 7}, headers=auth(merchant))).json()
    assert (week["first_day"], week["last_day"]) == ("2026-11-18", "2026-11-24")


async def test_stats_count_invoices_and_settled_volume_per_asset_and_day(
        api: httpx.AsyncClient, container: Container, clock: ManualClock, merchant: IssuedKey,
        other: IssuedKey, paid: Paid) -> None:
    await create_invoice(api, merchant)  # pending
    clock.advance(days=1)
    second = await create_invoice(api, merchant, amount="2.5")
    await pay(container, second["id"], 2_500_000_000, tx="tx-2")
    await create_invoice(api, other)  # another merchant's: counted for it only
    await relay.catch_up(container.deps)

    body = (await api.get(f"{API}/stats", params={"days": 2}, headers=auth(merchant))).json()
    assert body["invoices"] == {**ZEROS, "pending": 1, "paid": 2}
    (ton,) = body["volume"]
    assert (ton["asset"], ton["gross"], ton["count"]) == ("TON", "12.5", 2)
    assert 0 < float(ton["net"]) < 12.5  # the fee is taken
    assert [(d["day"], d["gross"], d["count"]) for d in body["daily"]] == [
        ("2026-11-24", "10", 1), ("2026-11-25", "2.5", 1)]
    assert body["daily"][0]["fees"] != "0"
    # The window moves with the clock: yesterday's settlement falls out of a one-day window.
    today = (await api.get(f"{API}/stats", params={"days": 1}, headers=auth(merchant))).json()
    assert [d["day"] for d in today["daily"]] == ["2026-11-25"]

    theirs = (await api.get(f"{API}/stats", headers=auth(other))).json()
    assert theirs["invoices"] == {**ZEROS, "pending": 1}
    assert theirs["volume"] == [] and theirs["daily"] == []


async def test_stats_refuse_a_window_out_of_range(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    for days in ("0", "367", "a week"):
        error = error_of(await api.get(f"{API}/stats", params={"days": days}, headers=auth(merchant)),
                         422, "invalid_request")
        assert error["field"] == "days"


async def test_an_invoice_timeline_has_its_own_its_payments_and_its_settlements_events(
        api: httpx.AsyncClient, merchant: IssuedKey, paid: Paid) -> None:
    response = await api.get(f"{API}/invoices/{paid.invoice_id}/events", headers=auth(merchant))
    assert response.status_code == 200, response.text
    events = response.json()["data"]
    types = [e["type"] for e in events]
    assert types[0] == "invoice.created"
    assert {"payment.confirmed", "invoice.paid", "settlement.created"} <= set(types)
    assert {e["subject_id"] for e in events} == {paid.invoice_id, paid.payment_id, paid.settlement_id}
    assert types.index("payment.confirmed") < types.index("settlement.created")
    assert all(e["object"] == "event" and e["id"].startswith("evt_") for e in events)
    settled = next(e for e in events if e["type"] == "settlement.created")
    assert settled["data"]["gross"] == "10"  # amounts as decimal strings, like /events


async def test_an_invoice_timeline_leaves_other_invoices_out(
        api: httpx.AsyncClient, merchant: IssuedKey, paid: Paid) -> None:
    pending = await create_invoice(api, merchant)
    events = (await api.get(f"{API}/invoices/{pending['id']}/events", headers=auth(merchant))).json()
    assert [(e["type"], e["subject_id"]) for e in events["data"]] == [("invoice.created", pending["id"])]


async def test_another_merchants_invoice_timeline_is_not_found(
        api: httpx.AsyncClient, other: IssuedKey, paid: Paid) -> None:
    for invoice_id in (paid.invoice_id, "inv_missing"):
        error = error_of(await api.get(f"{API}/invoices/{invoice_id}/events", headers=auth(other)),
                         404, "not_found")
        assert error["field"] == "invoice_id"


async def test_the_merchant_reads_its_own_settings(api: httpx.AsyncClient, container: Container,
                                                   merchant: IssuedKey) -> None:
    _, custom = await merchants.create_merchant(container.deps, name="Strict shop", fee_bps=150,
                                                confirmations_override=5, methods=["usdt_trc20"])
    mine = (await api.get(f"{API}/merchant", headers=auth(merchant))).json()
    assert mine["id"] == merchant.merchant_id and mine["object"] == "merchant"
    assert mine["name"] == "Test shop" and mine["confirmations_override"] is None
    assert mine["ton_address"] is None and mine["ton_collector"] is None
    assert mine["ton_receiving_address"]  # the platform's (the devnet's) address
    theirs = (await api.get(f"{API}/merchant", headers=auth(custom))).json()
    assert (theirs["id"], theirs["name"], theirs["fee_bps"], theirs["confirmations_override"],
            theirs["methods"]) == (custom.merchant_id, "Strict shop", 150, 5, ["usdt_trc20"])
    assert set(mine) == set(theirs)
