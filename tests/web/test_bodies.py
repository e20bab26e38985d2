"""Response bodies are rendered from their response models (api/bodies.py): the fields the
OpenAPI document lists, in its order, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from krypton.app import ingest
from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from krypton.web.api import schemas as s
from krypton.web.api.bodies import GIVEN, builder
from tests.conftest import auth
from tests.web.conftest import Paid
from tests.web.helpers import API


class Colour(StrEnum):
    RED = "red"


@dataclass
class Thing:
    id: str
    colour: Colour
    size: int
    made_at: datetime


class ThingOut(BaseModel):
    id: str
    object: Literal["thing"] = "thing"
    colour: str
    size: int = Field(description="No default: taken from the source.")
    doubled: int
    label: str
    made_at: datetime


WHEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_body_has_the_models_fields_in_order_from_where_it_is_told() -> None:
    render = builder(ThingOut, colour="colour.value", doubled=lambda t: t.size * 2, label=GIVEN,
                     made_at=lambda t: t.made_at.isoformat())
    body = render(Thing("thg_1", Colour.RED, 3, WHEN), label="three")
    assert list(body.items()) == [("id", "thg_1"), ("object", "thing"), ("colour", "red"), ("size", 3),
                                  ("doubled", 6), ("label", "three"),
                                  ("made_at", "2030-01-02T03:04:05+00:00")]
    assert type(body["colour"]) is str
    assert "def render(_o, *, label):" in (render.__doc__ or "")


def test_a_mapping_source_is_read_by_key() -> None:
    render = builder(ThingOut, mapping=True, colour="paint", doubled=lambda t: t["size"] * 2,
                     label=GIVEN, made_at=GIVEN)
    body = render({"id": "thg_2", "paint": "blue", "size": 1}, label="one", made_at="then")
    assert body == {"id": "thg_2", "object": "thing", "colour": "blue", "size": 1, "doubled": 2,
                    "label": "one", "made_at": "then"}


def test_a_given_field_must_be_given() -> None:
    render = builder(ThingOut, doubled=GIVEN, label=GIVEN, made_at=GIVEN, colour="colour.value")
    with pytest.raises(TypeError, match="label"):
        render(Thing("thg_3", Colour.RED, 1, WHEN), doubled=2, made_at="then")


@pytest.mark.parametrize(("sources", "message"), [
    ({"colour_name": "colour.value"}, "ThingOut has no field colour_name."),
    ({"colour": "colour.value()"}, "'colour.value()' is not an attribute name or dotted path."),
    ({"colour": "colour.class"}, "'colour.class' is not an attribute name or dotted path."),
])
def test_a_wrong_source_is_refused_when_the_builder_is_made(sources: dict[str, Any],
                                                             message: str) -> None:
    with pytest.raises(ValueError) as raised:
        builder(ThingOut, **sources)
    assert str(raised.value) == message


def test_a_mapping_key_is_one_name() -> None:
    with pytest.raises(ValueError, match=r"^'a\.b' is not an attribute name\.$"):
        builder(ThingOut, mapping=True, colour="a.b")


def test_payments_and_unmatched_transfers_share_one_declaration_of_a_transfer() -> None:
    run = list(s.TransferOut.model_fields)
    assert run == ["id", "chain", "tx_id", "index", "asset", "amount", "destination", "memo"]
    assert list(s.PaymentOut.model_fields) == ["id", "object", "invoice_id", "status", *run[1:], "sender",
                                               "block",
                                               "confirmations", "required_confirmations", "dust",
                                               "detected_at", "confirmed_at", "version"]
    assert list(s.UnmatchedOut.model_fields) == [*run, "reason", "invoice_id", "observed_at"]


def conforms(body: dict[str, Any], model: type[BaseModel]) -> None:
    """`body` has exactly `model`'s fields, in order, and validates against it."""
    assert list(body) == list(model.model_fields), model.__name__
    model.model_validate(body)


async def test_every_body_conforms_to_its_response_model(api: httpx.AsyncClient, container: Container,
                                                         merchant: IssuedKey, paid: Paid) -> None:
    async def get(path: str, key: IssuedKey | None = merchant) -> Any:
        response = await api.get(API + path, headers=auth(key) if key else None)
        assert response.status_code == 200, response.text
        return response.json()

    invoice = await get(f"/invoices/{paid.invoice_id}")
    conforms(invoice, s.InvoiceOut)
    assert invoice["payment_options"]
    for option in invoice["payment_options"]:
        conforms(option, s.PaymentOptionOut)
    conforms((await get("/invoices"))["data"][0], s.InvoiceOut)
    conforms(await get(f"/public/invoice/{paid.invoice_id}", key=None), s.PublicInvoiceOut)
    conforms(await get(f"/payments/{paid.payment_id}"), s.PaymentOut)
    conforms((await get(f"/invoices/{paid.invoice_id}/payments"))["data"][0], s.PaymentOut)
    conforms(await get(f"/settlements/{paid.settlement_id}"), s.SettlementOut)
    conforms((await get("/settlements"))["data"][0], s.SettlementOut)
    events = (await get("/events"))["data"]
    assert events
    for event in events:
        conforms(event, s.EventOut)

    await ingest.ingest_transfer(container.deps, ObservedTransfer(
        Chain.TON, "tx-stray", 0, "TON", 1_500_000_000, "0:" + "ab" * 32, "KR-AAAAAAAA", 1, 1), None)
    async with container.deps.uow(write=False) as uow:
        (row,) = await uow.unmatched.list(10)
    unmatched = s.unmatched_body(row)
    conforms(unmatched, s.UnmatchedOut)
    assert (unmatched["index"], unmatched["amount"]) == (0, "1.5")
