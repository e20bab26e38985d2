"""`krypton stars reconcile|refunds` against a fresh data folder and the fake Bot API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.cli import app
from krypton.devnet.telegram_api import FakeBotApi, StarsInvoice
from tests.web.live_server import LiveServer

runner = CliRunner()
TOKEN = "123456789:AAE-devnet-secret-token-value_0123456"


@pytest.fixture
def fake() -> FakeBotApi:
    return FakeBotApi(TOKEN)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeBotApi) -> Iterator[Path]:
    for name in [n for n in os.environ if n.startswith("KRYPTON_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")  # the whole table on one line per row
    with LiveServer(fake.app()) as server:
        monkeypatch.setenv("KRYPTON_TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("KRYPTON_TELEGRAM_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv("KRYPTON_TELEGRAM_API_URL", server.url)
        yield tmp_path / "data"


def test_reconcile_is_clean_then_shows_a_difference_with_exit_code_1(fake: FakeBotApi) -> None:
    assert runner.invoke(app, ["stars", "reconcile", "--last"]).stdout.strip() == \
        "No reconciliation has run yet."
    clean = runner.invoke(app, ["stars", "reconcile"])
    assert clean.exit_code == 0, clean.output
    assert "0 Telegram transactions, 0 differences" in clean.stdout

    fake.payment_update(StarsInvoice("", "", "", "inv_unknown", 70), "stxch_lost", 5, 70)
    found = runner.invoke(app, ["stars", "reconcile"])

    assert found.exit_code == 1, found.output
    assert "stxch_lost" in found.stdout and "missing_in_ledger" in found.stdout
    last = runner.invoke(app, ["stars", "reconcile", "--last"])
    assert last.exit_code == 1 and "stxch_lost" in last.stdout


def test_refunds_needs_an_invoice_or_resolve() -> None:
    result = runner.invoke(app, ["stars", "refunds"])
    assert result.exit_code == 2
    assert "--invoice" in result.output
    resolved = runner.invoke(app, ["stars", "refunds", "--resolve"])
    assert resolved.exit_code == 0 and "0 pending refunds resolved" in resolved.stdout
