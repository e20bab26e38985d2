"""Shared helpers for the REST API tests."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from krypton.adapters.db import tables
from krypton.app import ingest
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from krypton.domain.scopes import Scope
from tests.conftest import auth

API = "/api/v1"
SCOPES = tuple(Scope)  # each checked by some endpoint


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert `response` is the house error shape with this status and code; return the error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].endswith("."), error
    return error  # type: ignore[no-any-return]


async def create_invoice(api: httpx.AsyncClient, key: IssuedKey | str, **fields: Any) -> dict[str, Any]:
    body = {"amount": "10", "currency": "TON", **fields}
    response = await api.post(f"{API}/invoices", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def count_rows(container: Container, table: sa.Table) -> int:
    async with container.db.reader.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def written(container: Container) -> tuple[int, int]:
    """(invoices, events) row counts: compare before and after a request that must write nothing."""
    return await count_rows(container, tables.invoices), await count_rows(container, tables.events)


async def events_of_type(container: Container, type_: str) -> list[str]:
    async with container.db.reader.connect() as conn:
        rows = await conn.execute(sa.select(tables.events.c.subject_id).where(
            tables.events.c.type == type_).order_by(tables.events.c.seq))
        return [r.subject_id for r in rows]


async def pay(container: Container, invoice_id: str, units: int, *, tx: str = "tx-1",
              asset: str = "TON", confirmations: int = 1) -> str:
    """Pay `invoice_id` on TON through the ingest use case; returns the payment id."""
    transfer = ObservedTransfer(Chain.TON, tx, 0, asset, units, "addr", None, 7, confirmations)
    result = await ingest.ingest_transfer(container.deps, transfer, invoice_id)
    assert result.outcome == "credited" and result.payment_id is not None, result
    return result.payment_id
