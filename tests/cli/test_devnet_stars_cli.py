"""`krypton devnet pay --method stars`: its input checks, and the call it makes to the devnet
host's /control/stars/pay (answered here by a mock transport, not a server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from krypton.cli.main import app

runner = CliRunner()


def test_an_unknown_method_names_stars(tmp_path: Path) -> None:
    result = runner.invoke(app, ["devnet", "pay", "inv_x", "--method", "bitcoin"],
                           env={"KRYPTON_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "ton, usdt_ton, usdt_trc20 or stars" in result.output


def test_stars_posts_to_the_control_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []

    def post(url: str, json: Any = None, timeout: float = 0) -> httpx.Response:
        calls.append((url, json))
        return httpx.Response(201, json={"invoice": "inv_x", "link": "https://t.me/$x",
                                         "charge_id": "stxch_1"})
    monkeypatch.setattr(httpx, "post", post)
    env = {"KRYPTON_DATA_DIR": str(tmp_path), "KRYPTON_PORT": "8123", "COLUMNS": "250"}
    result = runner.invoke(app, ["devnet", "pay", "inv_x", "--method", "stars", "--amount", "7"],
                           env=env)
    assert result.exit_code == 0, result.output
    assert calls == [("http://127.0.0.1:8123/devnet/control/stars/pay", {"invoice": "inv_x", "amount": 7})]
    assert "stxch_1" in result.output

    bad = runner.invoke(app, ["devnet", "pay", "inv_x", "--method", "stars", "--amount", "1.5"], env=env)
    assert bad.exit_code == 2 and "--amount" in bad.output


def test_a_refusal_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def post(url: str, json: Any = None, timeout: float = 0) -> httpx.Response:
        return httpx.Response(409, json={"error": {"code": "payment_refused", "field": None,
                                                   "message": "Telegram did not charge the payer: no"}})
    monkeypatch.setattr(httpx, "post", post)
    result = runner.invoke(app, ["devnet", "pay", "inv_x", "--method", "stars"],
                           env={"KRYPTON_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "Telegram did not charge the payer" in result.output
