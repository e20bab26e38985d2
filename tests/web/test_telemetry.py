"""Each request: an X-Request-ID (the caller's when sane), one access line carrying it with
the route's template, and no line for probes; the console format for a person; and the line
of each change of money, from the event log."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import httpx
import pytest
import structlog

from krypton.adapters.metrics.business import BusinessMetrics
from krypton.app import ingest, invoices
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from krypton.web import logs
from tests.conftest import auth
from tests.web.test_logs import _drain


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    running = logs.configure("info", stream)
    try:
        yield stream
    finally:
        running.stop()
        structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in _drain(stream).splitlines() if line.strip()]


async def test_a_request_gets_an_id_and_one_access_line(
        api: httpx.AsyncClient, merchant: IssuedKey, captured: io.StringIO) -> None:
    mine = await api.get("/api/v1/invoices/inv_missing", headers={**auth(merchant),
                                                                   "X-Request-ID": "trace-42"})
    theirs = await api.get("/api/v1/invoices/inv_missing",
                           headers={**auth(merchant), "X-Request-ID": "bad id\n<script>"})
    assert mine.headers["x-request-id"] == "trace-42"
    new_id = theirs.headers["x-request-id"]
    assert new_id != "bad id\n<script>" and re.fullmatch(r"[0-9a-f]{22}", new_id)
    for probe in ("/livez", "/healthz", "/readyz", "/metrics"):
        await api.get(probe)
    access = [line for line in lines(captured) if line["event"] == "request"]
    assert [(a["request_id"], a["route"], a["status"]) for a in access] == [
        ("trace-42", "/api/v1/invoices/{invoice_id}", 404),
        (new_id, "/api/v1/invoices/{invoice_id}", 404)]
    assert all(a["method"] == "GET" and isinstance(a["ms"], float) for a in access)
    assert merchant.secret not in _drain(captured)


async def test_the_console_format_is_for_people(captured: io.StringIO) -> None:
    stream = io.StringIO()
    running = logs.configure("info", stream, fmt="console")
    try:
        structlog.get_logger("t").info("payment.confirmed", invoice_id="inv_1", token="s3cret")
        text = _drain(stream)
    finally:
        running.stop()
    assert "payment.confirmed" in text and "invoice_id=inv_1" in text
    assert "s3cret" not in text and not text.lstrip().startswith("{")


async def test_each_change_of_money_is_one_line(container: Container, merchant: IssuedKey,
                                                captured: io.StringIO) -> None:
    deps = container.deps
    counter = BusinessMetrics(deps)
    await counter.step()
    invoice = (await invoices.create_invoice(
        deps, merchant.merchant_id, invoices.InvoiceRequest(amount="1", currency="TON"),
        view=lambda i: {"id": i.id})).view
    await ingest.ingest_transfer(deps, ObservedTransfer(
        Chain.TON, "tx-log", 0, "TON", 1_000_000_000, "addr", "KR-SECRETMEMO", 7, 1), invoice["id"])
    await counter.step()
    money = [line for line in lines(captured) if line.get("logger") == "krypton.money"]
    events = [line["event"] for line in money]
    assert events == ["payment.detected", "payment.confirming", "payment.confirmed", "invoice.paid",
                      "settlement.created"]
    settled = money[-1]
    assert (settled["invoice_id"], settled["gross"], settled["fee"], settled["net"]) == (
        invoice["id"], "1000000000", "10000000", "990000000")
    assert all(line["merchant_id"] == merchant.merchant_id for line in money)
    assert "SECRETMEMO" not in _drain(captured)  # no memo, no address in a line
