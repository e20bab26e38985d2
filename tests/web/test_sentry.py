"""Sentry, opt-in: a crash reaches a local server speaking Sentry's envelope format, tagged
with the request id, and the report holds no API key, header value, body or path id."""

from __future__ import annotations

import gzip
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sentry_sdk
import structlog
from fastapi import Request
from pydantic import SecretStr

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.web import logs, sentry
from krypton.web.app import create_app
from tests.conftest import auth


class FakeSentry:
    """Takes envelopes at /api/<project>/envelope/ as Sentry does: a header line, then item
    header and payload lines; gzip or plain."""

    def __init__(self) -> None:
        self.envelopes: list[list[dict[str, Any]]] = []
        self.raw: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                outer.raw.append(body)
                outer.envelopes.append([json.loads(line) for line in body.splitlines() if line.strip()])
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_port}/42"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [item for envelope in self.envelopes for item in envelope
                if isinstance(item, dict) and "exception" in item]


@pytest.fixture
def fake_sentry() -> Iterator[FakeSentry]:
    fake = FakeSentry()
    running = logs.configure("info", io.StringIO())  # errors reach Sentry as log lines
    yield fake
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: reporting off again for the other tests
    running.stop()
    structlog.reset_defaults()
    fake.server.shutdown()


async def test_a_crash_is_reported_with_its_request_id_and_nothing_secret(
        container: Container, merchant: IssuedKey, fake_sentry: FakeSentry) -> None:
    settings = container.settings.model_copy(update={"sentry_dsn": SecretStr(fake_sentry.dsn)})
    assert sentry.configure(settings)
    app = create_app(container, run_workers=False)

    @app.post("/crash/{order_id}")
    async def crash(order_id: str, request: Request) -> None:
        presented = request.headers["authorization"]
        raise RuntimeError(f"failed for {presented}")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.post("/crash/ord_77", headers={**auth(merchant), "X-Request-ID": "req-7",
                                                             "Cookie": "session=s3cr3t"},
                                   json={"card": "4111 1111 1111 1111"})
    assert answer.status_code == 500
    sentry_sdk.flush(timeout=10)
    (event,) = fake_sentry.events()
    assert event["tags"]["request_id"] == "req-7"
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert set(event["request"]) <= {"method", "url"}
    sent = b"".join(fake_sentry.raw).decode()
    for secret in (merchant.secret, merchant.secret[3:20], "s3cr3t", "4111"):
        assert secret not in sent


def test_without_a_dsn_nothing_is_configured(container: Container) -> None:
    assert not sentry.configure(container.settings)
