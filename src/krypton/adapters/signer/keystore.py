"""The hot wallet's mnemonic at rest: AES-256-GCM under a key derived from a passphrase.

The file (`signer.key` in the data folder, mode 0600) is JSON:

    {"format": "krypton-signer-keystore/1", "kdf": "argon2id", "time_cost": 3,
     "memory_cost": 65536, "parallelism": 4, "salt": <b64>, "nonce": <b64>,
     "ciphertext": <b64>, "address": "0:…", "version": "v5r1"}

The key is Argon2id(passphrase, salt) (RFC 9106's second recommended profile: 64 MiB, 3
passes). The associated data binds the header (format, kdf parameters, address, version),
so a file whose parameters or address were edited fails to open like a wrong passphrase.
Nothing here logs, prints or puts in an exception message the mnemonic, the passphrase or
the derived key.

Where the passphrase comes from (`passphrase_from`): an interactive prompt, or a file (a
file descriptor such as /dev/fd/3, or a file readable only by the signer's user) named by
KRYPTON_SIGNER_PASSPHRASE_FILE. The passphrase itself in an environment variable
(KRYPTON_SIGNER_PASSPHRASE) is accepted on the devnet only: on a server the environment
of a process is readable through /proc by its user and is copied into child processes.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pytoniq_core.crypto.keys import mnemonic_is_valid, mnemonic_new, mnemonic_to_private_key

FORMAT = "krypton-signer-keystore/1"
FILE_NAME = "signer.key"
PASSPHRASE_FILE_ENV = "KRYPTON_SIGNER_PASSPHRASE_FILE"
PASSPHRASE_ENV = "KRYPTON_SIGNER_PASSPHRASE"  # devnet only
MIN_PASSPHRASE = 12
WORDS = 24


class KeystoreError(ValueError):
    """A keystore that cannot be created or opened; the message says what to do and never
    holds key material."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    time_cost: int = 3
    memory_cost: int = 65_536  # KiB
    parallelism: int = 4


@dataclass(frozen=True, slots=True)
class Keystore:
    path: Path
    address: str
    version: str


def generate_mnemonic() -> list[str]:
    words: list[str] = mnemonic_new(WORDS)
    return words


def private_key(words: list[str]) -> bytes:
    """The Ed25519 seed (32 bytes) of a TON mnemonic, as wallet apps derive it."""
    if not mnemonic_is_valid(words):
        raise KeystoreError("the mnemonic is not a valid TON mnemonic")
    _, key = mnemonic_to_private_key(words)
    return bytes(key[:32])


def create(path: Path, words: list[str], passphrase: str, *, address: str, version: str,
           params: KdfParams = KdfParams()) -> Keystore:
    """Seal `words` into a new file; refuses to overwrite one (it may hold the only copy)."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeystoreError(f"the passphrase must be at least {MIN_PASSPHRASE} characters")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = {"format": FORMAT, "kdf": "argon2id", "time_cost": params.time_cost,
              "memory_cost": params.memory_cost, "parallelism": params.parallelism,
              "address": address, "version": version}
    key = _derive(passphrase, salt, params)
    sealed = AESGCM(key).encrypt(nonce, " ".join(words).encode(), _aad(header))
    document = {**header, "salt": _b64(salt), "nonce": _b64(nonce), "ciphertext": _b64(sealed)}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: never replace an existing keystore; 0600 from the first byte written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"{path} already exists; move it away first if you mean to replace "
                            "the hot wallet (its funds stay with its mnemonic)") from None
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    return Keystore(path, address, version)


def read_header(path: Path) -> Keystore:
    """The address and version, without the passphrase (`krypton signer address`)."""
    document = _load(path)
    return Keystore(path, str(document["address"]), str(document["version"]))


def open_words(path: Path, passphrase: str) -> list[str]:
    """The mnemonic; a wrong passphrase or an edited file is one and the same error."""
    document = _load(path)
    _check_mode(path)
    header = {name: document[name] for name in ("format", "kdf", "time_cost", "memory_cost",
                                                 "parallelism", "address", "version")}
    params = KdfParams(int(document["time_cost"]), int(document["memory_cost"]), int(document["parallelism"]))
    try:
        salt, nonce, sealed = (_unb64(document[n]) for n in ("salt", "nonce", "ciphertext"))
        plain = AESGCM(_derive(passphrase, salt, params)).decrypt(nonce, sealed, _aad(header))
    except (InvalidTag, binascii.Error, ValueError):
        raise KeystoreError(f"cannot open {path}: wrong passphrase, or the file was changed") from None
    return plain.decode().split(" ")


def passphrase_from(network: str, prompt: Callable[[], str],
                    environ: dict[str, str] | None = None) -> str:
    """The passphrase: from KRYPTON_SIGNER_PASSPHRASE_FILE, else (devnet only) from
    KRYPTON_SIGNER_PASSPHRASE, else from `prompt`."""
    env = dict(os.environ) if environ is None else environ
    named = env.get(PASSPHRASE_FILE_ENV)
    if named:
        return _read_passphrase_file(Path(named))
    if PASSPHRASE_ENV in env:
        if network != "devnet":
            raise KeystoreError(f"{PASSPHRASE_ENV} is accepted on the devnet only; on {network} give "
                                f"the passphrase at the prompt or in a file named by {PASSPHRASE_FILE_ENV}")
        return env[PASSPHRASE_ENV]
    return prompt()


def _read_passphrase_file(path: Path) -> str:
    text = str(path)
    if not text.startswith(("/dev/fd/", "/proc/self/fd/")):
        mode = path.stat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise KeystoreError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                                "chmod 600 it")
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise KeystoreError(f"cannot read the passphrase file {path}: {exc.strerror}") from None


def _derive(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    key: bytes = hash_secret_raw(passphrase.encode(), salt, time_cost=params.time_cost,
                                 memory_cost=params.memory_cost, parallelism=params.parallelism,
                                 hash_len=32, type=Type.ID)
    return key


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeystoreError(f"{path} does not exist; create it with `krypton signer init`") from None
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"{path} is not a signer keystore: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeystoreError(f"{path} is not a {FORMAT} file")
    return document


def _check_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeystoreError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    return base64.b64decode(str(text), validate=True)
