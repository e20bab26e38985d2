"""The keystore: round trip, wrong passphrase, an edited file, file mode, where the
passphrase may come from."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from krypton.adapters.signer import keystore
from krypton.adapters.signer.keystore import KdfParams, KeystoreError

FAST = KdfParams(time_cost=1, memory_cost=8_192, parallelism=1)  # the real default in one test only
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def words() -> list[str]:
    return keystore.generate_mnemonic()


def test_round_trip_with_the_default_argon2id_cost(tmp_path: Path, words: list[str]) -> None:
    path = tmp_path / "signer.key"
    keystore.create(path, words, PASSPHRASE, address="0:ab", version="v5r1")
    assert keystore.open_words(path, PASSPHRASE) == words
    document = json.loads(path.read_text())
    assert (document["kdf"], document["memory_cost"], document["time_cost"]) == ("argon2id", 65_536, 3)
    text = path.read_text()
    assert not any(word in text.split('"') for word in words)  # sealed, not stored
    assert keystore.read_header(path).address == "0:ab"


def test_the_file_is_0600_and_never_overwritten(tmp_path: Path, words: list[str]) -> None:
    path = tmp_path / "signer.key"
    keystore.create(path, words, PASSPHRASE, address="0:ab", version="v5r1", params=FAST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeystoreError, match="already exists"):
        keystore.create(path, words, PASSPHRASE, address="0:cd", version="v5r1", params=FAST)
    os.chmod(path, 0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        keystore.open_words(path, PASSPHRASE)


def test_wrong_passphrase_and_edited_header_fail_alike(tmp_path: Path, words: list[str]) -> None:
    path = tmp_path / "signer.key"
    keystore.create(path, words, PASSPHRASE, address="0:ab", version="v5r1", params=FAST)
    with pytest.raises(KeystoreError, match="wrong passphrase") as wrong:
        keystore.open_words(path, PASSPHRASE + "!")
    assert PASSPHRASE not in str(wrong.value) and words[0] not in str(wrong.value)
    document = json.loads(path.read_text())
    document["address"] = "0:ff"  # an attacker points the header at another wallet
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="wrong passphrase, or the file was changed"):
        keystore.open_words(path, PASSPHRASE)


def test_a_short_passphrase_is_refused(tmp_path: Path, words: list[str]) -> None:
    with pytest.raises(KeystoreError, match="at least 12"):
        keystore.create(tmp_path / "k", words, "short", address="0:ab", version="v5r1", params=FAST)
    assert not (tmp_path / "k").exists()


def test_passphrase_sources(tmp_path: Path) -> None:
    secret_file = tmp_path / "pass"
    secret_file.write_text(PASSPHRASE + "\n")
    os.chmod(secret_file, 0o600)
    never = lambda: pytest.fail("no prompt expected")  # noqa: E731
    env = {keystore.PASSPHRASE_FILE_ENV: str(secret_file)}
    assert keystore.passphrase_from("mainnet", never, env) == PASSPHRASE
    os.chmod(secret_file, 0o644)
    with pytest.raises(KeystoreError, match="readable by others"):
        keystore.passphrase_from("mainnet", never, env)
    # The value itself in the environment: devnet only.
    assert keystore.passphrase_from("devnet", never, {keystore.PASSPHRASE_ENV: "x" * 12}) == "x" * 12
    with pytest.raises(KeystoreError, match="devnet only"):
        keystore.passphrase_from("mainnet", never, {keystore.PASSPHRASE_ENV: "x" * 12})
    assert keystore.passphrase_from("mainnet", lambda: "typed", {}) == "typed"


def test_an_invalid_mnemonic_is_refused() -> None:
    with pytest.raises(KeystoreError, match="not a valid TON mnemonic"):
        keystore.private_key(["abandon"] * 24)
