"""Logging (web/logs.py): one redacted JSON line per event, a stack trace without local
variables, and the writing done off the event loop."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import Request

from krypton.app.merchants import IssuedKey
from krypton.bootstrap import Container
from krypton.web import logs
from krypton.web.app import create_app
from tests.conftest import auth
from tests.web.helpers import error_of


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The server's logging configuration, writing into a string instead of stderr."""
    stream = io.StringIO()
    running = logs.configure("info", stream)
    try:
        yield stream
    finally:
        running.stop()
        structlog.reset_defaults()


def crashing_app(container: Container) -> Any:
    app = create_app(container, run_workers=False)

    @app.get("/crash")
    async def crash(request: Request) -> None:
        # A local variable and the exception's own message both hold the key: the two ways a
        # secret reached the log before.
        presented = request.headers["authorization"]
        raise RuntimeError(f"failed while handling {presented}")

    return app


async def test_a_500_logs_one_line_without_the_key_or_local_variables(
        container: Container, merchant: IssuedKey, captured: io.StringIO) -> None:
    transport = httpx.ASGITransport(app=crashing_app(container), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/crash", headers=auth(merchant))
    error_of(response, 500, "internal_error")
    text = _drain(captured)
    assert merchant.secret not in text
    assert merchant.secret[3:20] not in text  # not even a part of it
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    (error,) = [line for line in lines if line.get("event") == "unhandled_error"]
    assert error["level"] == "error" and error["path"] == "/crash"
    assert "Traceback" in error["exception"] and "RuntimeError: failed while handling Bearer " \
        "[redacted]" in error["exception"]
    # No frame's local variables: rich's "locals" panel, or a `name = value` dump of them.
    assert "locals" not in error["exception"] and "presented =" not in error["exception"]
    assert len(text) < 20_000, len(text)


def _drain(stream: io.StringIO) -> str:
    """What the writer thread has written once it has handled everything queued so far."""
    handler = next(h for h in logging.getLogger().handlers
                   if isinstance(h, logging.handlers.QueueHandler))
    done = threading.Event()
    # A record whose write sets `done`: everything queued before it has been written then.
    record = logging.LogRecord("drain", logging.CRITICAL, __file__, 0, "drained", None, None)
    queue: Any = handler.queue
    queue.put(_Marker(record, done))
    assert done.wait(10), "the log writer thread did not drain its queue"
    return stream.getvalue()


class _Marker(logging.LogRecord):
    def __init__(self, record: logging.LogRecord, done: threading.Event) -> None:
        self.__dict__.update(record.__dict__)
        self._done = done

    def getMessage(self) -> str:  # the writer's formatter calls this on the writer's thread
        self._done.set()
        return ""


@pytest.mark.parametrize(("event", "secret"), [
    ({"event": "x", "authorization": "Bearer kr_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}, "kr_abc"),
    ({"event": "x", "headers": {"Authorization": "Bearer tok123456"}}, "tok123456"),
    ({"event": "x", "headers": [(b"authorization", b"Bearer tok123456")]}, "tok123456"),
    ({"event": "calling kr_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}, "kr_abc"),
    ({"event": "x", "url": "postgresql+asyncpg://app:hunter2@db/krypton"}, "hunter2"),
    ({"event": "x", "operator_token": "op-secret-value"}, "op-secret-value"),
    ({"event": "x", "TRON-PRO-API-KEY": "3f2a9b"}, "3f2a9b"),
    ({"event": "x", "error": "request failed: {'X-API-Key': 'abc123secret'}"}, "abc123secret"),
], ids=["authorization", "nested header", "raw ASGI header", "key in text", "url password",
        "operator token", "provider key", "quoted header"])
def test_redact_removes_secrets_everywhere(event: dict[str, Any], secret: str) -> None:
    rendered = json.dumps(logs.redact(None, "error", event), default=repr)
    assert secret not in rendered, rendered
    assert logs.REDACTED in rendered


def test_redact_keeps_what_is_no_secret() -> None:
    event = {"event": "invoice_created", "invoice_id": "inv_0123", "amount": 5, "path": "/api/v1/x"}
    assert logs.redact(None, "info", dict(event)) == event


async def test_logging_never_waits_for_the_output(captured: io.StringIO) -> None:
    """A log call on the event loop returns while the output is stuck (a full pipe, a slow
    terminal): only the writer thread waits."""
    entered, release = threading.Event(), threading.Event()

    class StuckStream(io.StringIO):
        def write(self, text: str) -> int:
            entered.set()
            release.wait(30)
            return super().write(text)

    stuck = StuckStream()
    running = logs.configure("info", stuck)
    try:
        log = structlog.get_logger()
        log.info("first")
        assert entered.wait(10), "the writer thread never wrote"
        # The writer is now blocked inside write(): these calls must still return.
        for n in range(100):
            log.error("while_stuck", n=n)
        assert not release.is_set()
        release.set()
    finally:
        release.set()
        running.stop()
    assert stuck.getvalue().count("while_stuck") == 100
