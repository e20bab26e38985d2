"""`krypton backup`, `backup list` and `restore`: what they say, and their exit codes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.cli import app as cli


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KRYPTON_DATABASE_URL", "KRYPTON_SECRET_KEY", "KRYPTON_BACKUP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_nothing_to_back_up_is_a_sentence(data: Path) -> None:
    code, output = run("backup")
    assert code == 2 and "There is no database" in output, output
    assert run("backup", "list") == (0, f"No backups in {data / 'backups'}.\n")


def test_backup_list_and_restore(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("migrate")[0] == 0
    key = "k1:" + base64.b64encode(bytes(32)).decode()
    monkeypatch.setenv("KRYPTON_SECRET_KEY", key)
    code, output = run("backup", "--dir", str(tmp_path / "b"))
    assert code == 0 and "Backup verified and written" in output, output
    assert "KRYPTON_SECRET_KEY" in output and "not in the backup" in output  # said loudly
    code, output = run("backup", "list", "--dir", str(tmp_path / "b"))
    assert code == 0 and "sqlite" in output and "not in the backup" in output, output
    (made,) = (tmp_path / "b").glob("krypton-*.sqlite3")

    code, output = run("restore", str(made))  # onto the live data folder
    assert code == 2 and "already holds a database" in output and "--force" in output, output
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path / "fresh"))
    code, output = run("restore", str(made))
    assert code == 0 and "Ledger: balanced (no postings)" in output, output
    assert "merchants" in output and not (tmp_path / "fresh" / "secret.key").exists()

    code, output = run("restore", str(tmp_path / "b" / "nope.sqlite3"))
    assert code == 2 and "There is no backup" in output, output
    made.with_suffix(".pgdump").write_bytes(b"x")
    code, output = run("restore", str(made.with_suffix(".pgdump")), "--force")
    assert code == 2 and "is a postgresql backup but the configured database is sqlite" in output


def test_an_unreachable_database_is_a_sentence_without_the_password(
        data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_DATABASE_URL", "postgresql+asyncpg://kr:s3cret@127.0.0.1:1/pay")
    code, output = run("backup")
    assert code == 2 and "Cannot use the database" in output and "s3cret" not in output, output
