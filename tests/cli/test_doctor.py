"""`krypton doctor` and the Tron xpub at start-up, run in-process against a fresh data folder
(and `serve` as a real process, for what it prints before it listens)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from bip_utils import Bip32Secp256k1, Bip44, Bip44Changes, Bip44Coins
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from krypton.cli import app
from tests.adapters.chains.tron.recorded import vectors

runner = CliRunner()
VECTOR: dict[str, Any] = vectors()["bip44_tron"][0]
SEED = bytes.fromhex(VECTOR["seed_hex"])
DEVNET_FIRST = next(a["address"] for a in VECTOR["addresses"] if a["path"] == "m/44'/195'/0'/0/0")


def account_xpub(account: int) -> str:
    key: str = Bip44.FromSeed(SEED, Bip44Coins.TRON).Purpose().Coin().Account(account) \
        .PublicKey().ToExtended()
    return key


def first_address(account: int) -> str:
    """Index 0 of the account's external chain, derived by bip-utils' own BIP-44 code."""
    address: str = Bip44.FromSeed(SEED, Bip44Coins.TRON).Purpose().Coin().Account(account) \
        .Change(Bip44Changes.CHAIN_EXT).AddressIndex(0).PublicKey().ToAddress()
    return address


def xpub_at(path: str) -> str:
    key: str = Bip32Secp256k1.FromSeed(SEED).DerivePath(path).PublicKey().ToExtended()
    return key


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [n for n in os.environ if n.startswith("KRYPTON_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def lines(output: str) -> dict[str, str]:
    """check name -> "ok …" or "problem …"."""
    found = {}
    for line in output.splitlines():
        status, _, rest = line.partition(" ")
        name, _, detail = rest.strip().partition(": ")
        found[name] = f"{status} {detail}"
    return found


def test_doctor_on_the_devnet_reports_every_check_ok(data_dir: Path) -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    checks = lines(result.output)
    assert list(checks) == ["network", "data folder", "database", "tron deposit addresses", "providers",
                            "usd rates", "secret keys", "webhooks"]
    assert str(data_dir / "secret.key") in checks["secret keys"]
    assert checks["webhooks"].startswith("ok http or https, public addresses only")
    assert checks["usd rates"].startswith("ok static table (TON 5.00, USDT 1.00, XTR 0.013)")
    assert all(line.startswith("ok ") for line in checks.values())
    assert checks["network"].startswith("ok devnet")
    assert str(data_dir / "krypton.sqlite3") in checks["database"]
    assert DEVNET_FIRST in checks["tron deposit addresses"]


def test_doctor_names_a_key_file_others_can_read_and_a_bad_secret_key(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["doctor"]).exit_code == 0  # creates the key file
    (data_dir / "secret.key").chmod(0o644)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1 and "chmod 600" in lines(result.output)["secret keys"]
    monkeypatch.setenv("KRYPTON_SECRET_KEY", "k1:tooshort")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 2 and "KRYPTON_SECRET_KEY" in result.output
    assert "tooshort" not in result.output  # never a key, even a wrong one


def test_doctor_shows_a_configured_xpub_first_address_and_the_providers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_NETWORK", "mainnet")
    monkeypatch.setenv("KRYPTON_TRON_XPUB", account_xpub(1))
    monkeypatch.setenv("KRYPTON_TRONGRID_API_KEY", "tg-secret-key")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    checks = lines(result.output)
    assert first_address(1) in checks["tron deposit addresses"]
    assert checks["provider TronGrid"].startswith("ok api.trongrid.io, with an API key")
    assert "provider TON Center" not in checks  # no TON address: TON is off
    assert "tg-secret-key" not in result.output
    # Mainnet prices live: the two sources, as hosts only.
    assert checks["usd rates"].startswith("ok live, stale after 600 s")
    assert checks["provider CoinGecko"].startswith("ok api.coingecko.com, without an API key")
    assert checks["provider Binance"].startswith("ok api.binance.com, api-gcp.binance.com")


def test_doctor_hides_the_database_password(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_url(db_url)
    if url.get_backend_name() == "postgresql":  # the test server trusts any password
        db_url = url.set(password="s3cret-pw").render_as_string(hide_password=False)
    monkeypatch.setenv("KRYPTON_DATABASE_URL", db_url)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output
    assert lines(result.output)["database"].startswith("ok ")
    if url.get_backend_name() == "postgresql":
        assert ":***@" in lines(result.output)["database"]


def test_an_unreachable_database_is_a_problem_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KRYPTON_DATABASE_URL", f"postgresql+asyncpg://bob:s3cret-pw@127.0.0.1:{port}/x")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    database = lines(result.output)["database"]
    assert database.startswith(f"problem postgresql+asyncpg://bob:***@127.0.0.1:{port}/x: cannot be opened")
    assert "s3cret-pw" not in result.output
    assert lines(result.output)["network"].startswith("ok ")  # the other checks still ran


def test_a_data_folder_that_cannot_be_used_is_a_problem(data_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    data_dir.write_text("not a folder")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    checks = lines(result.output)
    assert checks["data folder"] == f"problem {data_dir} is a file, not a folder"
    assert checks["database"].startswith("problem ") and "not opened" in checks["database"]
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(data_dir / "inside"))
    below = runner.invoke(app, ["doctor"])
    assert below.exit_code == 1
    assert lines(below.output)["data folder"].startswith(f"problem {data_dir / 'inside'} does not exist")


def test_a_real_network_without_any_rail_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_NETWORK", "testnet")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert lines(result.output)["network"].startswith("problem testnet, but neither")
    assert lines(result.output)["tron deposit addresses"] == "ok off: KRYPTON_TRON_XPUB is not set"


@pytest.mark.parametrize(
    ("path", "words"),
    [("m/44'/195'/0'/0", "depth 4 with child number 0;"),
     ("m/44'/195'/0", "depth 3 with child number 0;"),
     ("m/44'/195'", "depth 2 with child number 195';")],
    ids=["external-chain", "not-hardened", "coin-level"],
)
@pytest.mark.parametrize("command", [["doctor"], ["serve"], ["merchant", "list"]])
def test_an_xpub_not_at_the_account_level_is_refused_with_exit_2(
        monkeypatch: pytest.MonkeyPatch, path: str, words: str, command: list[str]) -> None:
    monkeypatch.setenv("KRYPTON_TRON_XPUB", xpub_at(path))
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert "KRYPTON_TRON_XPUB" in result.output and words in result.output
    assert "account-level key m/44'/195'/0'" in result.output
    assert "Traceback" not in result.output


async def test_serve_prints_the_first_deposit_address_at_start_up(data_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "KRYPTON_TRON_XPUB": account_xpub(2), "KRYPTON_PORT": str(port),
           "KRYPTON_DATA_DIR": str(data_dir)}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "krypton.cli", "serve", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert server.stdout is not None
    try:
        seen: list[str] = []
        while not any("First Tron deposit address" in line for line in seen):
            line = (await asyncio.wait_for(server.stdout.readline(), 60)).decode()
            assert line, f"serve ended before printing the address: {seen}"
            seen.append(line)
        assert first_address(2) in seen[-1]
    finally:
        server.terminate()
        await server.wait()


def test_doctor_has_help() -> None:
    result = runner.invoke(app, ["doctor", "--help"])
    assert result.exit_code == 0 and "configuration" in result.output


def test_doctor_lists_independent_providers_and_says_whether_their_quorum_is_a_majority(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_NETWORK", "mainnet")
    monkeypatch.setenv("KRYPTON_TRON_XPUB", account_xpub(1))
    monkeypatch.setenv("KRYPTON_TRON_PROVIDERS", json.dumps([
        {"name": "trongrid", "urls": ["https://api.trongrid.io"], "api_key": "tg-secret-key"},
        {"name": "own-node", "urls": ["https://tron.example.net/node"]},
        {"name": "backup", "urls": ["https://tron-backup.example.org"]}]))
    monkeypatch.setenv("KRYPTON_TRON_QUORUM", "2")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    checks = lines(result.output)
    assert checks["provider TronGrid trongrid"].startswith("ok api.trongrid.io, with an API key")
    assert checks["provider TronGrid own-node"].startswith("ok tron.example.net, without an API key")
    assert checks["quorum TronGrid"] == "ok 2 of 3 providers must agree before a transfer is final"
    assert "tg-secret-key" not in result.output

    monkeypatch.setenv("KRYPTON_TRON_QUORUM", "1")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert lines(result.output)["quorum TronGrid"].startswith("problem 1 of 3 providers")
