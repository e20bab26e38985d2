"""A merchant's own unmatched transfers: money that reached its invoices or addresses and
was not credited, visible to that merchant and to no other."""

from __future__ import annotations

import httpx

from krypton.app import ingest, merchants
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from tests.conftest import auth
from tests.web.helpers import API, create_invoice, error_of, pay

OWN_WALLET = "0:" + "22" * 32


def _transfer(tx: str, asset: str, units: int, destination: str = "addr",
              memo: str | None = None) -> ObservedTransfer:
    return ObservedTransfer(Chain.TON, tx, 0, asset, units, destination, memo, 7, 1)


async def test_a_top_up_in_another_asset_is_shown_to_its_merchant_only(
        container: Container, api: httpx.AsyncClient, merchant: merchants.IssuedKey,
        other: merchants.IssuedKey) -> None:
    invoice = await create_invoice(api, merchant, amount="10", currency="USD",
                                   methods=["ton", "usdt_ton"])
    await pay(container, invoice["id"], 1_000_000_000, tx="tx-part")  # part of it, in TON
    top_up = await ingest.ingest_transfer(container.deps, _transfer("tx-usdt", "USDT_TON", 5_000_000),
                                          invoice["id"])
    assert (top_up.outcome, top_up.reason) == ("unmatched", "wrong_asset")

    mine = await api.get(f"{API}/unmatched-transfers", headers=auth(merchant))
    assert mine.status_code == 200, mine.text
    [row] = mine.json()["data"]
    assert (row["invoice_id"], row["reason"], row["asset"], row["amount"], row["tx_id"]) == (
        invoice["id"], "wrong_asset", "USDT_TON", "5", "tx-usdt")
    theirs = await api.get(f"{API}/unmatched-transfers", headers=auth(other))
    assert theirs.json() == {"object": "list", "data": [], "has_more": False}
    # Another merchant's row is not an anchor of this merchant's list either.
    error_of(await api.get(f"{API}/unmatched-transfers?starting_after={row['id']}",
                           headers=auth(other)), 422, "invalid_request")


async def test_transfers_to_its_own_wallet_and_pages(
        container: Container, api: httpx.AsyncClient) -> None:
    _, key = await merchants.create_merchant(container.deps, name="Own wallet",
                                             ton_address=OWN_WALLET)
    for n in range(3):  # unknown memos at the merchant's own wallet
        await ingest.ingest_transfer(container.deps, _transfer(f"tx{n}", "TON", 10**9, OWN_WALLET,
                                                               f"KR-AAAAAAA{n}"), None)
    # ... and one at the platform's address, which is nobody's.
    await ingest.ingest_transfer(container.deps, _transfer("tx-platform", "TON", 10**9), None)

    first = (await api.get(f"{API}/unmatched-transfers?limit=2", headers=auth(key))).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = (await api.get(f"{API}/unmatched-transfers?limit=2&starting_after={first['data'][-1]['id']}",
                          headers=auth(key))).json()
    assert rest["has_more"] is False
    seen = [u["tx_id"] for u in first["data"] + rest["data"]]
    assert sorted(seen) == ["tx0", "tx1", "tx2"]
    assert {u["reason"] for u in first["data"] + rest["data"]} == {"no_matching_invoice"}


async def test_the_list_needs_the_payments_scope(
        api: httpx.AsyncClient, container: Container, merchant: merchants.IssuedKey) -> None:
    key = await merchants.create_api_key(container.deps, merchant.merchant_id, ["invoices:read"])
    error_of(await api.get(f"{API}/unmatched-transfers", headers=auth(key)), 403, "insufficient_scope")
