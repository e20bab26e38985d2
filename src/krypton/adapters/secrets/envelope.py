"""Secrets sealed at rest with AES-256-GCM, and the keys that seal them.

A sealed secret is ASCII text for a TEXT column::

    v1.<key_id>.<data>

- `v1`: the format; a later one gets a new prefix, and this module refuses what it does not know.
- `key_id`: the ring key that sealed it, 1–16 characters of `A-Z a-z 0-9 _ -` (never a dot).
- `data`: URL-safe base64 without `=` padding (so no `+`, `/` or `=` to escape anywhere) of
  the 12-byte random nonce, then the AES-GCM ciphertext with its 16-byte tag at the end.

The associated data is `v1.<key_id>.` followed by the caller's `aad` (the row's id): a token
copied to another row, or with its header edited, fails authentication like a changed byte.
A key id holds no dot, so the header ends at its second dot: no two (key id, aad) pairs give the
same associated data.

Keys come from `KRYPTON_SECRET_KEY` or, for the embedded default, a key file (`keyring_from`).
Both hold `<id>:<base64 of 32 bytes>` entries; the first is the current key, which seals; the
others only open what they sealed until it is sealed again (`needs_rewrap`, `rewrap`).

Key material never appears in an exception message or a repr: errors name key ids, entry
numbers and paths only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
ENV_NAME = "KRYPTON_SECRET_KEY"
KEY_ID_RULE = "1–16 characters of A-Z a-z 0-9 _ -"

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}", re.ASCII)
_URLSAFE = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
_LATER_VERSION = re.compile(r"v[1-9][0-9]{0,3}", re.ASCII)
_SEPARATORS = re.compile(r"[,\s]+")
_COMMENT = re.compile(r"#[^\n]*")
_ENTRY_RULE = ("each key must be <id>:<base64 of 32 bytes> (id: " + KEY_ID_RULE +
               "), keys separated by commas or new lines, the current key first")
_NEW_KEY_HINT = "make one with `openssl rand -base64 32`"
_FILE_HEADER = (
    "# Krypton's keys for secrets stored in its database (webhook signing secrets).\n"
    "# The first key seals new secrets; the others only open secrets they sealed.\n"
    "# Keep this file and back it up: without its keys those secrets cannot be read.\n"
)


class EnvelopeError(ValueError):
    """A key ring, key file or sealed secret that cannot be used; the message says what to do
    and never holds key material."""


def valid_key_id(key_id: str) -> bool:
    return _KEY_ID.fullmatch(key_id) is not None


def new_key_id() -> str:
    """`k` and 8 random hex digits: random rather than a date, so two hosts rotating on the
    same day do not pick the same id."""
    return "k" + secrets.token_hex(4)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Ordered keys: the first is the current one (it seals), the others only open.

    Build one with `parse`, `generate` or `KeyRing((("k1", key), ...))`; the constructor checks
    ids, key lengths and duplicates like `parse` does."""

    entries: tuple[tuple[str, bytes], ...] = field(repr=False)

    def __post_init__(self) -> None:
        _check_entries(self.entries, "the key ring")

    def __repr__(self) -> str:
        return f"KeyRing(current={self.current_id!r}, ids={self.key_ids!r})"

    # ---- building

    @classmethod
    def parse(cls, text: str, *, source: str = ENV_NAME) -> KeyRing:
        """`<id>:<base64>` entries separated by commas, spaces or new lines; `#` starts a
        comment to the end of its line. Standard or URL-safe base64, padding optional.
        `source` names where the text came from in error messages."""
        pieces = [p for p in _SEPARATORS.split(_COMMENT.sub("", text)) if p]
        if not pieces:
            raise EnvelopeError(f"{source} holds no key: {_ENTRY_RULE}; {_NEW_KEY_HINT}.")
        entries = tuple(_parse_entry(piece, number, source)
                        for number, piece in enumerate(pieces, start=1))
        _check_entries(entries, source)
        return cls(entries)

    @classmethod
    def generate(cls, key_id: str | None = None) -> KeyRing:
        """A ring of one fresh random key."""
        return cls(((_chosen_id(key_id) or new_key_id(), secrets.token_bytes(KEY_BYTES)),))

    def with_new_key(self, key_id: str | None = None) -> KeyRing:
        """A fresh key placed first (it seals from now on), the old ones kept after it."""
        if key_id is None:
            key_id = new_key_id()
            while key_id in self.key_ids:  # 1 in 4 billion; still never reuse an id
                key_id = new_key_id()
        elif _chosen_id(key_id) in self.key_ids:
            raise EnvelopeError(f"the key id {key_id!r} is already in the ring: choose another.")
        return KeyRing(((key_id, secrets.token_bytes(KEY_BYTES)), *self.entries))

    def without_unused(self, used_ids: Iterable[str]) -> KeyRing:
        """The current key and the keys in `used_ids`, in ring order. Ids not in the ring
        are ignored: nothing this ring holds could open their secrets anyway."""
        used = set(used_ids)
        return KeyRing(tuple((key_id, key) for index, (key_id, key) in enumerate(self.entries)
                             if index == 0 or key_id in used))

    def format(self) -> str:
        """One `<id>:<base64>` line per key, current first: what `parse` reads back."""
        return "".join(f"{key_id}:{base64.b64encode(key).decode('ascii')}\n"
                       for key_id, key in self.entries)

    # ---- reading

    @property
    def current_id(self) -> str:
        return self.entries[0][0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.entries)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self.key_ids

    # ---- sealing

    def seal(self, plaintext: bytes, *, aad: bytes) -> str:
        """`v1.<current id>.<data>`, with a fresh random nonce each call: the same secret
        sealed twice gives two different tokens. `aad` (the row's id) must be given again
        to open it."""
        key_id, key = self.entries[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext, _associated(key_id, aad))
        return f"{_header(key_id)}{_b64encode(nonce + sealed)}"

    def open(self, token: str, *, aad: bytes) -> bytes:
        """The plaintext, or EnvelopeError when the token is malformed, was sealed with a
        key this ring does not hold, or fails authentication (altered, or another row's)."""
        key_id, data = _split(token)
        key = self._key(key_id)
        if len(data) < NONCE_BYTES + TAG_BYTES:
            raise EnvelopeError("the secret is too short to be a sealed one: it was truncated "
                                "or altered; set it again.")
        try:
            return AESGCM(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:],
                                       _associated(key_id, aad))
        except InvalidTag:
            raise EnvelopeError("the secret does not decrypt: it was altered or copied from "
                                "another row; set it again.") from None

    def needs_rewrap(self, token: str) -> bool:
        """Whether the token was sealed with a key other than the current one."""
        return key_id_of(token) != self.current_id

    def rewrap(self, token: str, *, aad: bytes) -> str:
        """The token sealed again with the current key (unchanged when it already is)."""
        if not self.needs_rewrap(token):
            return token
        return self.seal(self.open(token, aad=aad), aad=aad)

    @staticmethod
    def key_id_of(token: str) -> str:
        """The id of the key that sealed `token` (the module's `key_id_of`)."""
        return key_id_of(token)

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for `purpose` (HKDF-SHA256 from the current key): one key to keep,
        the dashboard's session signing key among what it yields. Rotating the ring ends
        the sessions signed with the old one."""
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                    info=b"krypton/" + purpose).derive(self._key(self.current_id))

    def _key(self, key_id: str) -> bytes:
        for candidate, key in self.entries:
            if candidate == key_id:
                return key
        raise EnvelopeError(f"the secret was sealed with key {key_id!r}, which is not in "
                            f"{ENV_NAME} or the key file: add it back.")


def key_id_of(token: str) -> str:
    """The id of the key that sealed `token`; EnvelopeError when it is not a sealed secret."""
    return _split(token)[0]


# ---- the key file


def load_key_file(path: Path, *, create: bool) -> KeyRing:
    """The ring in `path`. A missing file is created (and its folder) with one new key when
    `create` is true; the file must be private to its owner (mode 0600)."""
    try:
        text = _read_private(path)
    except FileNotFoundError:
        if not create:
            raise EnvelopeError(f"there is no key file at {path}: set {ENV_NAME}, or start "
                                "Krypton once to create the file.") from None
        ring = KeyRing.generate()
        if _create_exclusively(path, _file_text(ring)):
            return ring
        text = _read_private(path)  # another process created it first: use its keys
    if not _COMMENT.sub("", text).strip():
        raise EnvelopeError(f"the key file {path} is empty: restore it from a backup. Krypton "
                            "does not replace it, as secrets sealed with its keys would be lost.")
    return KeyRing.parse(text, source=f"the key file {path}")


def save_key_file(path: Path, ring: KeyRing) -> None:
    """Rewrite `path` with `ring`, atomically (a private temporary file renamed over it)."""
    temporary = _write_temporary(path, _file_text(ring))
    try:
        os.replace(temporary, path)
    except OSError as exc:
        raise EnvelopeError(f"cannot write the key file {path}: {exc.strerror}.") from None
    finally:
        _remove(temporary)
    _sync_folder(path.parent)


def keyring_from(secret_key: str | None, key_file: Path) -> tuple[KeyRing, str]:
    """The ring from `KRYPTON_SECRET_KEY` when it is set (the key file is then left alone),
    else from the key file, created on first use; with the name of where it came from, for
    logs and `doctor` (never the key). A blank value counts as not set."""
    if secret_key is not None and secret_key.strip():
        return KeyRing.parse(secret_key, source=ENV_NAME), ENV_NAME
    return load_key_file(key_file, create=True), str(key_file)


# ---- helpers: ring entries


def _parse_entry(piece: str, number: int, source: str) -> tuple[str, bytes]:
    # Only valid ids are quoted back: a bad one may be a key pasted in the wrong place.
    key_id, colon, encoded = piece.partition(":")
    if not colon:
        raise EnvelopeError(f"{source}: entry {number} has no '<id>:' before its key; "
                            f"{_ENTRY_RULE}.")
    if not valid_key_id(key_id):
        raise EnvelopeError(f"{source}: entry {number} has a key id that is not "
                            f"{KEY_ID_RULE}; {_ENTRY_RULE}.")
    key = _b64decode_key(encoded)
    if key is None:
        raise EnvelopeError(f"{source}: the key of {key_id!r} is not base64; {_ENTRY_RULE}; "
                            f"{_NEW_KEY_HINT}.")
    return key_id, key


def _chosen_id(key_id: str | None) -> str | None:
    """An id an operator asked for (never key material, so it is quoted back)."""
    if key_id is not None and not valid_key_id(key_id):
        raise EnvelopeError(f"the key id {key_id!r} is not {KEY_ID_RULE}: choose another.")
    return key_id


def _check_entries(entries: tuple[tuple[str, bytes], ...], source: str) -> None:
    if not entries:
        raise EnvelopeError(f"{source} holds no key: {_ENTRY_RULE}.")
    seen_ids: set[str] = set()
    seen_keys: dict[bytes, str] = {}
    for key_id, key in entries:
        if not valid_key_id(key_id):
            raise EnvelopeError(f"{source}: a key id is not {KEY_ID_RULE}; {_ENTRY_RULE}.")
        if len(key) != KEY_BYTES:
            raise EnvelopeError(f"{source}: the key of {key_id!r} is {len(key)} bytes, not "
                                f"{KEY_BYTES}; {_ENTRY_RULE}; {_NEW_KEY_HINT}.")
        if key_id in seen_ids:
            raise EnvelopeError(f"{source}: the key id {key_id!r} appears twice; each key "
                                "needs its own id.")
        if key in seen_keys:
            raise EnvelopeError(f"{source}: {seen_keys[key]!r} and {key_id!r} are the same key; "
                                "keep one of them.")
        seen_ids.add(key_id)
        seen_keys[key] = key_id


def _b64decode_key(encoded: str) -> bytes | None:
    """Standard or URL-safe base64, with or without padding: both are what people paste."""
    if not encoded.isascii():
        return None
    standard = encoded.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error:
        return None


# ---- helpers: tokens


def _header(key_id: str) -> str:
    return f"{VERSION}.{key_id}."


def _associated(key_id: str, aad: bytes) -> bytes:
    return _header(key_id).encode("ascii") + aad


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _split(token: str) -> tuple[str, bytes]:
    """(key id, nonce||ciphertext) of a well-formed token, else EnvelopeError."""
    parts = token.split(".")
    if parts[0] != VERSION and _LATER_VERSION.fullmatch(parts[0]) and len(parts) > 1:
        raise EnvelopeError(f"the secret is sealed in format {parts[0]!r}, which this Krypton "
                            f"does not know (it reads {VERSION!r}): upgrade Krypton.")
    if (len(parts) != 3 or parts[0] != VERSION or not valid_key_id(parts[1])
            or _URLSAFE.fullmatch(parts[2]) is None):
        raise EnvelopeError(f"the secret is not a sealed one ({VERSION}.<key id>.<data>): it "
                            "was altered or truncated; set it again.")
    data = _b64decode_canonical(parts[2])
    if data is None:
        raise EnvelopeError("the secret's data is not valid base64: it was altered or truncated; "
                            "set it again.")
    return parts[1], data


def _b64decode_canonical(text: str) -> bytes | None:
    # Only the one encoding `seal` writes: a token that differs from it in any character is
    # refused, not read as the same bytes.
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        return None
    return data if _b64encode(data) == text else None


# ---- helpers: files


def _file_text(ring: KeyRing) -> str:
    return _FILE_HEADER + ring.format()


def _read_private(path: Path) -> str:
    """The file's text, refused when other users may read or change it. The mode is taken
    from the opened file, so it is the one read (not a file swapped in after a check)."""
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise EnvelopeError(f"the key file {path} is not a regular file: point the "
                                    "key file at a file.")
            if mode & 0o077:
                raise EnvelopeError(f"the key file {path} has mode {stat.S_IMODE(mode):04o}, so "
                                    f"other users have access to it: run `chmod 600 {path}`.")
            raw = handle.read()
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise EnvelopeError(f"the key file {path} is a folder: point the key file at a "
                            "file.") from None
    except OSError as exc:
        raise EnvelopeError(f"cannot read the key file {path}: {exc.strerror}.") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError(f"the key file {path} is not text: restore it from a backup.") from None


def _create_exclusively(path: Path, text: str) -> bool:
    """Write `path` only if it does not exist; False when another process got there first.

    Linking the finished temporary file, rather than renaming it, cannot replace a file that
    appeared meanwhile: two processes starting together must not each keep their own key."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise EnvelopeError(f"cannot create the folder of the key file {path}: "
                            f"{exc.strerror}.") from None
    temporary = _write_temporary(path, text)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise EnvelopeError(f"cannot create the key file {path}: {exc.strerror}.") from None
    finally:
        _remove(temporary)
    _sync_folder(path.parent)
    return True


def _write_temporary(path: Path, text: str) -> Path:
    """A new file beside `path`, mode 0600 from its creation, written and synced."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise EnvelopeError(f"cannot write beside the key file {path}: {exc.strerror}.") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # the umask may have taken bits off; set it exactly
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        _remove(temporary)
        raise EnvelopeError(f"cannot write beside the key file {path}: {exc.strerror}.") from None
    return temporary


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _sync_folder(folder: Path) -> None:
    # The new name is durable only once the folder's entry is on disk.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the file itself is synced
    finally:
        os.close(descriptor)
