"""Request bodies (web/request_body.py): the key is checked before the body is read; a body
past KRYPTON_MAX_BODY_BYTES is refused with 413 before anything parses it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.config import Settings
from krypton.web.app import create_app
from tests.conftest import auth
from tests.web.helpers import API, error_of, written

LIMIT = 65_536


def big_body(size: int) -> bytes:
    """A JSON invoice body of exactly `size` bytes (the padding in its description)."""
    head = {"amount": "1", "currency": "TON", "description": ""}
    padding = size - len(json.dumps(head).encode())
    return json.dumps({**head, "description": "x" * padding}).encode()


async def test_a_body_past_the_limit_is_413(api: httpx.AsyncClient, container: Container,
                                            merchant: IssuedKey) -> None:
    before = await written(container)
    response = await api.post(f"{API}/invoices", content=big_body(LIMIT + 1),
                              headers={**auth(merchant), "Content-Type": "application/json"})
    error = error_of(response, 413, "body_too_large")
    assert "65,536 bytes" in error["message"]
    assert await written(container) == before


async def test_a_body_at_the_limit_is_parsed(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    response = await api.post(f"{API}/invoices", content=big_body(LIMIT),
                              headers={**auth(merchant), "Content-Type": "application/json"})
    # Read and validated: the description is too long, which is the model's answer, not 413.
    error = error_of(response, 422, "invalid_request")
    assert error["field"] == "description"


async def test_a_streamed_body_is_counted_as_it_comes(api: httpx.AsyncClient, container: Container,
                                                      merchant: IssuedKey) -> None:
    """No Content-Length (chunked): the chunks are counted, and the 413 comes once they pass
    the limit."""
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"amount": "1", "currency": "TON", "description": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'
    before = await written(container)
    response = await api.post(f"{API}/invoices", content=chunks(),
                              headers={**auth(merchant), "Content-Type": "application/json"})
    error_of(response, 413, "body_too_large")
    assert await written(container) == before


async def test_the_limit_is_configurable(container: Container, merchant: IssuedKey) -> None:
    container.settings = Settings(**{**container.settings.model_dump(), "max_body_bytes": 2048})
    app = create_app(container, run_workers=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        response = await client.post(f"{API}/invoices", content=big_body(3000),
                                     headers={**auth(merchant), "Content-Type": "application/json"})
    assert "2,048 bytes" in error_of(response, 413, "body_too_large")["message"]


async def _call(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[list[dict[str, Any]], int]:
    """Call the app as a server would, with a body it never finishes sending: the messages it
    answers with and how many times it asked for the body."""
    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"x" * 65_536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": f"{API}/invoices", "raw_path": f"{API}/invoices".encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    await app(scope, receive, send)
    return sent, asked


@pytest.mark.parametrize("authorization", [None, b"Bearer kr_not-a-real-key"], ids=["none", "wrong"])
async def test_without_a_valid_key_the_body_is_never_read(container: Container,
                                                          authorization: bytes | None) -> None:
    app = create_app(container, run_workers=False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"1000000000")]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    sent, asked = await _call(app, headers)
    assert sent[0]["status"] == 401
    assert (b"connection", b"close") in sent[0]["headers"]
    assert asked == 0


async def test_a_declared_length_past_the_limit_is_refused_unread(container: Container,
                                                                  merchant: IssuedKey) -> None:
    app = create_app(container, run_workers=False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"1000000000"),
               (b"authorization", f"Bearer {merchant.secret}".encode())]
    sent, asked = await _call(app, headers)
    assert sent[0]["status"] == 413
    assert asked == 0


async def test_public_and_keyless_reads_are_untouched(api: httpx.AsyncClient, merchant: IssuedKey) -> None:
    created = await api.post(f"{API}/invoices", json={"amount": "1", "currency": "TON"},
                             headers=auth(merchant))
    assert created.status_code == 201
    public = await api.get(f"{API}/public/invoice/{created.json()['id']}")
    assert public.status_code == 200
