"""`krypton merchant telegram-link` and `krypton telegram …` against a fresh devnet data
folder (no server running: the code is made without the bot's username)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.adapters.db.merchant_bot import bot_repo
from krypton.bootstrap import build
from krypton.cli import app
from krypton.config import Settings
from krypton.domain import merchant_bot as rules
from tests.support.servers import free_port

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [n for n in os.environ if n.startswith("KRYPTON_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path / "data"))
    # Nothing listens there: the bot's getMe fails at once and the code has no deep link.
    monkeypatch.setenv("KRYPTON_PORT", str(free_port()))
    return tmp_path / "data"


def test_telegram_link_prints_a_code_that_is_stored_hashed(data_dir: Path) -> None:
    made = runner.invoke(app, ["merchant", "create", "--name", "CLI shop", "--json"])
    merchant_id = json.loads(made.stdout)["id"]

    result = runner.invoke(app, ["merchant", "telegram-link", merchant_id, "--json"])

    assert result.exit_code == 0, result.output
    issued = json.loads(result.stdout)
    assert issued["merchant_id"] == merchant_id and issued["deep_link"] is None
    assert rules.normalise_code(issued["code"]) == issued["code"]

    async def stored() -> tuple[str | None, str | None]:
        container = await build(Settings(data_dir=data_dir))
        try:
            async with container.deps.uow(write=False) as uow:
                code = await bot_repo(uow).code(rules.code_hash(issued["code"]))
            return (code.merchant_id, code.created_by) if code else (None, None)
        finally:
            await container.close()
    assert asyncio.run(stored()) == (merchant_id, "cli")

    plain = runner.invoke(app, ["merchant", "telegram-link", merchant_id])
    assert plain.exit_code == 0 and "Send /link " in plain.stdout


def test_an_unknown_merchant_is_exit_2_with_a_sentence() -> None:
    result = runner.invoke(app, ["merchant", "telegram-link", "mer_nobody"])
    assert result.exit_code == 2
    assert "No merchant 'mer_nobody'." in result.output


def test_set_webhook_needs_a_real_bot() -> None:
    result = runner.invoke(app, ["telegram", "set-webhook"])
    assert result.exit_code == 2
    assert "KRYPTON_TELEGRAM_BOT_TOKEN" in result.output
