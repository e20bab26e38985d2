"""`krypton contract` and `krypton devnet deploy` against a real `krypton serve` process on
the devnet: prepare, deploy, activate, pay at the collector, read its statistics."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from krypton.cli import app

runner = CliRunner()
WALLET = "UQAiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIsAH"  # 0:2222…, the merchant's wallet


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KRYPTON_DATA_DIR": str(tmp_path), "KRYPTON_PUBLIC_URL": url,
           "KRYPTON_DEVNET_TON_BLOCK_SECONDS": "0.2", "KRYPTON_WATCH_INTERVAL_SECONDS": "0.2"}
    env.pop("KRYPTON_DATABASE_URL", None)
    for name in ("KRYPTON_DATA_DIR", "KRYPTON_PUBLIC_URL"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("KRYPTON_DATABASE_URL", raising=False)
    krypton = str(Path(sys.executable).parent / "krypton")
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen([krypton, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        _wait(lambda: _answers(f"{url}/livez"), "the server to start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(done: object, what: str, attempts: int = 300) -> None:
    """Poll until done() is true; the limit only stops a hung test, it measures nothing."""
    for _ in range(attempts):
        if callable(done) and done():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_deploy_activate_pay_and_stats(server: str) -> None:
    merchant = json.loads(_ok(["merchant", "create", "--name", "Shop", "--fee-bps", "250", "--json"]))
    info = json.loads(_ok(["contract", "deploy-info", "--merchant", merchant["id"], "--destination", WALLET,
                           "--min-withdrawal", "1", "--json"]))
    assert info["status"] == "pending" and info["address"].startswith("EQ")
    assert info["deploy_link"].startswith(f"ton://transfer/{info['address']}?amount=60000000&init=")
    early = runner.invoke(app, ["contract", "activate", "--merchant", merchant["id"]])
    assert early.exit_code == 2 and "Nothing is deployed" in early.output
    not_yet = runner.invoke(app, ["contract", "stats", "--merchant", merchant["id"]])
    assert not_yet.exit_code == 2 and "No fee collector is deployed" in not_yet.output

    assert "Deployed the fee collector" in _ok(["devnet", "deploy", "--merchant", merchant["id"]])
    assert "is active" in _ok(["contract", "activate", "--merchant", merchant["id"]])

    headers = {"Authorization": f"Bearer {merchant['api_key']}"}
    created = httpx.post(f"{server}/api/v1/invoices", headers=headers,
                         json={"amount": "5.05", "currency": "TON", "methods": ["ton"]}).json()
    assert created["payment_options"][0]["address"] == info["address"], created
    _ok(["devnet", "pay", created["id"], "--method", "ton"])
    _wait(lambda: httpx.get(f"{server}/api/v1/public/invoice/{created['id']}").json()["status"] == "paid",
          "the payment to be seen")

    stats = json.loads(_ok(["contract", "stats", "--merchant", merchant["id"], "--json"]))
    assert (stats["total_collected"], stats["payment_count"], stats["ledger_fees"]) == (
        "126250000", 1, "126250000")
    assert stats["ledger_forwarded"] == "4923750000"
    settlements = httpx.get(f"{server}/api/v1/settlements", headers=headers).json()["data"]
    assert [(s["payout"], s["net_forwarded_amount"], s["collector_fee_amount"]) for s in settlements] == [
        ("on_chain", "4.92375", "0.12625")]
    table = _ok(["contract", "stats", "--merchant", merchant["id"]])
    assert "0.12625" in table and "total fees collected" in table


def test_devnet_pay_works_from_any_folder(server: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`krypton devnet pay` asks the server what to pay: run elsewhere, it needs no database."""
    merchant = json.loads(_ok(["merchant", "create", "--name", "Shop", "--json"]))
    headers = {"Authorization": f"Bearer {merchant['api_key']}"}
    created = httpx.post(f"{server}/api/v1/invoices", headers=headers,
                         json={"amount": "2", "currency": "USDT", "methods": ["usdt_ton"]}).json()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("KRYPTON_DATA_DIR")
    unknown = runner.invoke(app, ["devnet", "pay", "inv_nope"])
    assert unknown.exit_code == 2 and "No invoice" in unknown.output
    wrong = runner.invoke(app, ["devnet", "pay", created["id"], "--method", "ton"])
    assert wrong.exit_code == 2 and "cannot be paid with ton; it offers usdt_ton" in wrong.output
    bad = runner.invoke(app, ["devnet", "pay", created["id"], "--method", "usdt_ton",
                              "--amount", "1.2345678"])
    assert bad.exit_code == 2 and "--amount" in bad.output
    _ok(["devnet", "pay", created["id"], "--method", "usdt_ton"])
    _wait(lambda: httpx.get(f"{server}/api/v1/public/invoice/{created['id']}").json()["status"] == "paid",
          "the payment to be seen")
    assert list(elsewhere.iterdir()) == []  # no stray ./data folder


def test_devnet_commands_reach_the_devnet_host(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With several processes only one hosts the devnet: its control API is found through
    KRYPTON_DEVNET_URL, whatever the public URL says."""
    monkeypatch.setenv("KRYPTON_PUBLIC_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("KRYPTON_DEVNET_URL", server)
    assert "alice" in _ok(["devnet", "state"])
    monkeypatch.delenv("KRYPTON_DEVNET_URL")
    lost = runner.invoke(app, ["devnet", "state"])
    assert lost.exit_code == 2 and "No Krypton server answers at http://127.0.0.1:9" in lost.output


def test_contract_commands_refuse_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KRYPTON_PUBLIC_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("KRYPTON_DATABASE_URL", raising=False)
    merchant = json.loads(_ok(["merchant", "create", "--name", "Shop", "--json"]))["id"]
    for args, message in [
        (["contract", "deploy-info", "--merchant", "mer_nope", "--destination", WALLET], "No merchant"),
        (["contract", "deploy-info", "--merchant", merchant], "Give --destination"),
        (["contract", "deploy-info", "--merchant", merchant, "--destination", "EQnope"], ""),
        (["contract", "deploy-info", "--merchant", merchant, "--destination", WALLET,
          "--min-withdrawal", "-1"], "min_withdrawal"),
        (["contract", "deploy-info", "--merchant", merchant, "--destination", WALLET,
          "--amount", "0.01"], "at least"),
        (["contract", "activate", "--merchant", merchant], "no fee collector"),
        (["devnet", "deploy", "--merchant", merchant], "Give --destination"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    _ok(["contract", "deploy-info", "--merchant", merchant, "--destination", WALLET])
    offline = runner.invoke(app, ["contract", "activate", "--merchant", merchant])
    assert offline.exit_code == 2 and "make demo" in offline.output
