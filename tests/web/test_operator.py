"""The operator API: unmatched transfers across merchants, behind its own token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from krypton.app import ingest
from krypton.bootstrap import Container
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from tests.conftest import auth
from tests.web.helpers import API

TOKEN = "operator-secret-token-for-tests"


@pytest.fixture
async def operator_api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    from krypton.web.app import create_app

    container.settings = container.settings.model_copy(update={"operator_token": SecretStr(TOKEN)})
    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        yield client


async def test_unmatched_transfers_are_listed_for_the_operator(
        container: Container, operator_api: httpx.AsyncClient) -> None:
    for n in range(3):
        await ingest.ingest_transfer(container.deps, ObservedTransfer(
            Chain.TON, f"tx{n}", 0, "TON", 1_500_000_000, "0:" + "ab" * 32, "KR-AAAAAAAA", 1, 1), None)
    first = await operator_api.get(f"{API}/operator/unmatched?limit=2", headers=auth(TOKEN))
    assert first.status_code == 200
    body = first.json()
    assert body["has_more"] is True and len(body["data"]) == 2
    assert {u["reason"] for u in body["data"]} == {"no_matching_invoice"}
    assert body["data"][0]["amount"] == "1.5" and body["data"][0]["memo"] == "KR-AAAAAAAA"


async def test_the_operator_api_needs_its_token(operator_api: httpx.AsyncClient) -> None:
    assert (await operator_api.get(f"{API}/operator/unmatched")).status_code == 401
    wrong = await operator_api.get(f"{API}/operator/unmatched", headers=auth("nope"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"


async def test_without_a_token_configured_the_operator_api_is_off(api: httpx.AsyncClient) -> None:
    off = await api.get(f"{API}/operator/unmatched", headers=auth("anything"))
    assert off.status_code == 403 and "KRYPTON_OPERATOR_TOKEN" in off.json()["error"]["message"]
