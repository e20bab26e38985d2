"""The `krypton` command line, run in-process against a fresh data folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from krypton.adapters.db.migrate import alembic_config
from krypton.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KRYPTON_DATABASE_URL", raising=False)
    return tmp_path


def test_every_command_has_help() -> None:
    for args in (["--help"], ["serve", "--help"], ["demo", "--help"], ["migrate", "--help"],
                 ["merchant", "create", "--help"], ["merchant", "list", "--help"],
                 ["apikey", "create", "--help"], ["apikey", "revoke", "--help"],
                 ["apikey", "list", "--help"], ["replay", "--help"], ["unmatched", "--help"],
                 ["devnet", "pay", "--help"], ["devnet", "blocks", "--help"],
                 ["devnet", "reorg", "--help"], ["devnet", "state", "--help"],
                 ["devnet", "deploy", "--help"], ["contract", "deploy-info", "--help"],
                 ["contract", "activate", "--help"], ["contract", "stats", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, args
        assert "Usage" in result.output


def test_merchant_create_json_then_list_and_keys() -> None:
    result = runner.invoke(app, ["merchant", "create", "--name", "Coffee", "--json"])
    assert result.exit_code == 0
    created = json.loads(result.output)
    assert created["id"].startswith("mer_") and created["api_key"].startswith("kr_")
    listed = runner.invoke(app, ["merchant", "list"])
    assert "Coffee" in listed.output
    key = runner.invoke(app, ["apikey", "create", "--merchant", created["id"],
                              "--scope", "invoices:read"])
    assert key.exit_code == 0 and "invoices:read" in key.output
    keys = runner.invoke(app, ["apikey", "list", "--merchant", created["id"]])
    assert keys.output.count("key_") == 2
    assert created["api_key"] not in keys.output  # secrets are never shown again


def test_bad_input_is_a_clear_error() -> None:
    empty = runner.invoke(app, ["merchant", "create", "--name", "  "])
    assert empty.exit_code == 2 and "name must be 1 to 200 characters" in empty.output
    fee = runner.invoke(app, ["merchant", "create", "--name", "X", "--fee-bps", "20000"])
    assert fee.exit_code == 2 and "fee_bps" in fee.output
    scope = runner.invoke(app, ["apikey", "create", "--merchant", "mer_nope"])
    assert scope.exit_code == 2 and "No merchant" in scope.output
    revoke = runner.invoke(app, ["apikey", "revoke", "key_nope"])
    assert revoke.exit_code == 2 and "No API key" in revoke.output
    assert "Merchant" not in runner.invoke(app, ["merchant", "list"]).output.replace("merchant", "")


def test_revoke_then_migrate_and_replay() -> None:
    created = json.loads(runner.invoke(app, ["merchant", "create", "--name", "A", "--json"]).output)
    listed = runner.invoke(app, ["apikey", "list", "--merchant", created["id"]]).output
    key_id = next(word for word in listed.split() if word.startswith("key_"))
    assert runner.invoke(app, ["apikey", "revoke", key_id]).exit_code == 0
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"revision {head}" in runner.invoke(app, ["migrate"]).output
    replay = runner.invoke(app, ["replay"])
    assert replay.exit_code == 0 and "Rebuilt read models from" in replay.output


def test_demo_prints_key_and_sample_invoice() -> None:
    result = runner.invoke(app, ["demo", "--no-serve"])
    assert result.exit_code == 0
    assert "kr_" in result.output and "inv_" in result.output


def test_demo_again_reuses_its_merchant_with_a_new_key() -> None:
    first, second = (runner.invoke(app, ["demo", "--no-serve"]).output for _ in range(2))
    merchant_of = [next(w for w in out.split() if w.startswith("mer_")) for out in (first, second)]
    key_of = [next(w for w in out.split() if w.startswith("kr_")) for out in (first, second)]
    assert merchant_of[0] == merchant_of[1] and key_of[0] != key_of[1]
    assert runner.invoke(app, ["merchant", "list"]).output.count("mer_") == 1


def test_bad_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_RATE_LIMIT_GLOBAL", "lots")
    result = runner.invoke(app, ["merchant", "list"])
    assert result.exit_code == 2
    assert "KRYPTON_RATE_LIMIT_GLOBAL" in result.output and "100/minute" in result.output


def test_devnet_pay_without_a_server_says_how_to_start_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_PUBLIC_URL", "http://127.0.0.1:9")  # nothing listens there
    demo = runner.invoke(app, ["demo", "--no-serve"])
    invoice_id = next(w for w in demo.output.split() if w.startswith("inv_"))
    result = runner.invoke(app, ["devnet", "pay", invoice_id, "--method", "usdt_trc20"])
    assert result.exit_code == 2 and "make demo" in result.output
    stars = runner.invoke(app, ["devnet", "pay", invoice_id, "--method", "stars"])  # a method now
    assert stars.exit_code == 2 and "make demo" in stars.output
    wrong = runner.invoke(app, ["devnet", "pay", invoice_id, "--method", "paypal"])
    assert wrong.exit_code == 2 and "--method must be" in wrong.output
    unknown = runner.invoke(app, ["devnet", "pay", "inv_nope"])
    assert unknown.exit_code == 2 and "make demo" in unknown.output


def test_unmatched_lists_nothing_on_a_fresh_install() -> None:
    result = runner.invoke(app, ["unmatched"])
    assert result.exit_code == 0 and "No unmatched transfers" in result.output


def test_merchant_with_its_own_ton_address() -> None:
    bad = runner.invoke(app, ["merchant", "create", "--name", "X", "--ton-address", "EQnope"])
    assert bad.exit_code == 2 and "address" in bad.output.lower()
    good = runner.invoke(app, ["merchant", "create", "--name", "X", "--json", "--ton-address",
                               "0:" + "ab" * 32])
    assert good.exit_code == 0 and json.loads(good.output)["id"].startswith("mer_")
