"""Bad configuration and unusable storage at start-up: exit 2 and a sentence, never a
traceback (the README's promise), for `serve` and the other commands alike."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.cli import app
from tests.support.servers import free_port

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path / "data"))
    for name in ("KRYPTON_DATABASE_URL", "KRYPTON_USD_RATES", "KRYPTON_TONCENTER_URLS",
                 "KRYPTON_INVOICE_EXPIRY_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def refused(args: list[str], *keywords: str) -> str:
    result = runner.invoke(app, args)
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, text
    assert "Traceback" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for keyword in keywords:
        assert keyword in text, text
    assert len(text.strip().splitlines()) <= 3, text  # a sentence, not a dump
    return text


@pytest.mark.parametrize(("name", "value", "keywords"), [
    ("KRYPTON_USD_RATES", "nonsense", ("KRYPTON_USD_RATES", "JSON object", '"TON"')),
    ("KRYPTON_USD_RATES", '{"TON": "abc", "USDT": "1", "XTR": "1"}', ("KRYPTON_USD_RATES", "abc")),
    ("KRYPTON_TONCENTER_URLS", "https://a.example,https://b.example",
     ("KRYPTON_TONCENTER_URLS", "JSON list")),
    ("KRYPTON_INVOICE_EXPIRY_SECONDS", "5", ("KRYPTON_INVOICE_EXPIRY_SECONDS", "between 60")),
    ("KRYPTON_INVOICE_EXPIRY_SECONDS", "soon", ("KRYPTON_INVOICE_EXPIRY_SECONDS",)),
    ("KRYPTON_DATABASE_URL", "mysql://shop@db.example/krypton",
     ("KRYPTON_DATABASE_URL", "PostgreSQL", "mysql")),
    ("KRYPTON_DATABASE_URL", "postgresql://shop@db.example/krypton",
     ("KRYPTON_DATABASE_URL", "postgresql+asyncpg://")),
], ids=["rates not json", "rate not a number", "url list not json", "expiry 5 s", "expiry text",
        "mysql", "postgres without driver"])
@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["merchant", "list"]], ids=" ".join)
def test_a_bad_setting_is_exit_2_with_a_sentence(monkeypatch: pytest.MonkeyPatch, name: str,
                                                 value: str, keywords: tuple[str, ...],
                                                 command: list[str]) -> None:
    monkeypatch.setenv(name, value)
    refused(command, "Configuration error", *keywords)


@pytest.mark.parametrize("command", [["serve"], ["migrate"]], ids=" ".join)
def test_an_unreachable_postgresql_is_exit_2_with_a_sentence(monkeypatch: pytest.MonkeyPatch,
                                                             command: list[str]) -> None:
    # Nothing listens on a port just found free: the connection is refused at once.
    monkeypatch.setenv("KRYPTON_DATABASE_URL",
                       f"postgresql+asyncpg://shop:hunter2@127.0.0.1:{free_port()}/krypton")
    text = refused(command, "Cannot use the database", "reachable")
    assert "hunter2" not in text


def _mount_tmpfs(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    mounted: list[Path] = []
    yield mounted
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.parametrize("command", [["serve"], ["migrate"]], ids=" ".join)
def test_a_read_only_data_folder_is_exit_2(clean_env: Path, mounts: list[Path],
                                           command: list[str]) -> None:
    # Read-only for root too: a read-only file system, as on a mis-mounted volume.
    data = clean_env / "data"
    _mount_tmpfs(data, "ro,size=1m")
    mounts.append(data)
    refused(command, "data folder", str(data), "KRYPTON_DATA_DIR")


@pytest.mark.parametrize("command", [["serve"], ["migrate"]], ids=" ".join)
def test_a_full_data_folder_is_exit_2(clean_env: Path, mounts: list[Path], command: list[str]) -> None:
    data = clean_env / "data"
    _mount_tmpfs(data, "size=256k")
    mounts.append(data)
    try:  # fill it to the last block
        with (data / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
    except OSError:
        pass
    refused(command, "data folder", "free some space")
