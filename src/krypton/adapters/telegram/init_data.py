"""Telegram Mini App initData: who opened the Mini App, as signed by Telegram.

Two checks, as Telegram documents them (core.telegram.org/bots/webapps):

- `verify_hmac`, for the bot's own backend: `hash` is HMAC-SHA256 over the data-check-string
  (every pair but `hash`, `signature` included, sorted by key, `k=v` joined by "\\n") with
  the key HMAC-SHA256(key="WebAppData", msg=bot token).
- `verify_signature`, for a third party without the token: `signature` is Ed25519 by
  Telegram over "{bot_id}:WebAppData\\n" + the same string without `hash` and `signature`.

Both parse the query string strictly before anything else (a duplicate key, a field without
"=", a bad percent escape or invalid UTF-8 is refused), compare in constant time, and only
then read the fields and judge `auth_date` against the injected `now`. Pure: no clock, no
network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# Telegram's Ed25519 keys for the third-party check (production and test environment), as
# published in the Mini Apps documentation.
TELEGRAM_PUBLIC_KEY = "e7bf03a2fa4602af4580703d88dda5bb59f32ed8b02a56c187fe7d34caed242d"
TELEGRAM_TEST_PUBLIC_KEY = "40055058a4ee38156a06562e52eece92a771bcd8346a8c4615cb7376eddf72ec"

# Real initData is well under a kilobyte; these bounds only stop a huge input from being
# parsed and hashed at all.
MAX_LENGTH = 65_536
MAX_FIELDS = 100

_HASH = re.compile(r"[0-9a-f]{64}")
# Telegram's keys are snake_case; anything else (an empty key, "=" or "\n" in a key) could
# make two different sets of pairs give the same data-check-string.
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TIMESTAMP = re.compile(r"[0-9]{1,11}")
_SIGNATURE_BYTES = 64


class Reason(StrEnum):
    MALFORMED = "malformed"
    DUPLICATE_KEY = "duplicate_key"
    MISSING_HASH = "missing_hash"
    BAD_HASH = "bad_hash"
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    FUTURE = "future"


class InvalidInitData(ValueError):
    """initData that does not prove who sent it, or proves it for too old or a future time.
    `reason` says which; the message is a sentence for logs (never shown as proof of
    anything to the user)."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class WebAppUser:
    id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None
    is_premium: bool  # Telegram omits the field for users without Premium


@dataclass(frozen=True)
class InitData:
    user: WebAppUser | None
    auth_date: datetime
    query_id: str | None
    start_param: str | None
    chat_type: str | None
    chat_instance: str | None
    # The pairs the check covered, decoded: for `verify_hmac` all but `hash`; for
    # `verify_signature` all but `hash` and `signature` (which that check does not cover).
    raw: dict[str, str]


def webapp_secret(bot_token: str) -> bytes:
    """The HMAC key Telegram derives from the bot token: HMAC-SHA256(key="WebAppData")."""
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def verify_hmac(init_data: str, bot_token: str, *, now: datetime, max_age: timedelta,
                future_skew: timedelta = timedelta(seconds=30)) -> InitData:
    """initData checked with the bot's token; raises `InvalidInitData` with the reason."""
    _require_aware(now)
    pairs = _parse(init_data)
    given = pairs.pop("hash", None)
    if given is None:
        raise InvalidInitData(Reason.MISSING_HASH, "The initData has no hash field.")
    if not _HASH.fullmatch(given):
        # Telegram sends 64 lower-case hex digits; the check on the format also keeps
        # compare_digest (ASCII only) from failing on odd input.
        raise InvalidInitData(Reason.BAD_HASH,
                              "The initData hash is not 64 lower-case hex digits.")
    expected = hmac.new(webapp_secret(bot_token), _check_string(pairs).encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise InvalidInitData(Reason.BAD_HASH,
                              "The initData hash does not match: not signed with this bot's token, "
                              "or changed after signing.")
    return _checked(pairs, now=now, max_age=max_age, future_skew=future_skew)


def verify_signature(init_data: str, bot_id: int, *, public_key_hex: str, now: datetime,
                     max_age: timedelta, future_skew: timedelta = timedelta(seconds=30)) -> InitData:
    """initData checked with Telegram's Ed25519 key (`TELEGRAM_PUBLIC_KEY`, or
    `TELEGRAM_TEST_PUBLIC_KEY` for the test environment) for the bot `bot_id`, without its
    token; raises `InvalidInitData` with the reason."""
    _require_aware(now)
    if bot_id <= 0:
        raise ValueError(f"A bot id is a positive integer, not {bot_id}.")
    key = _public_key(public_key_hex)
    pairs = _parse(init_data)
    pairs.pop("hash", None)  # not covered by the signature
    encoded = pairs.pop("signature", None)
    if encoded is None:
        raise InvalidInitData(Reason.MISSING_SIGNATURE, "The initData has no signature field.")
    signature = _signature_bytes(encoded)
    message = f"{bot_id}:WebAppData\n{_check_string(pairs)}".encode()
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise InvalidInitData(Reason.BAD_SIGNATURE,
                              "The initData signature does not verify: not signed by Telegram for "
                              "this bot and key, or changed after signing.") from None
    return _checked(pairs, now=now, max_age=max_age, future_skew=future_skew)


def _require_aware(now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware to judge auth_date.")


@lru_cache(maxsize=8)
def _public_key(public_key_hex: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
    except ValueError:
        raise ValueError("The Telegram public key must be 32 bytes of hex (64 digits).") from None


def _parse(init_data: str) -> dict[str, str]:
    """The decoded pairs, or `InvalidInitData` for anything but a plain query string."""
    if len(init_data) > MAX_LENGTH:
        raise _malformed(f"it is longer than {MAX_LENGTH} characters")
    # Telegram percent-encodes everything; raw non-ASCII (lone surrogates included) would only
    # come from tampering, and could not be hashed as UTF-8.
    if not init_data.isascii():
        raise _malformed("it holds characters that are not percent-encoded")
    if _BAD_ESCAPE.search(init_data):
        raise _malformed("it holds a '%' that does not start a two-digit hex escape")
    try:
        fields = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True,
                           errors="strict", max_num_fields=MAX_FIELDS)
    except ValueError:  # a field without "=", an empty field, invalid UTF-8, too many fields
        raise _malformed("it is not a query string of key=value pairs") from None
    pairs: dict[str, str] = {}
    for key, value in fields:
        if not _KEY.fullmatch(key):
            raise _malformed("a key is empty or not made of letters, digits and '_'")
        if key in pairs:
            raise InvalidInitData(Reason.DUPLICATE_KEY,
                                  f"The initData repeats the key {key!r}; each key may appear once.")
        if "\n" in value:
            # The data-check-string separates pairs with "\n": a value holding one could pass
            # for other pairs. Telegram's values never do (JSON escapes its newlines).
            raise _malformed(f"the value of {key!r} holds a line break")
        pairs[key] = value
    return pairs


def _check_string(pairs: dict[str, str]) -> str:
    return "\n".join(f"{key}={pairs[key]}" for key in sorted(pairs))


def _signature_bytes(encoded: str) -> bytes:
    """base64url without padding, as Telegram sends it, decoded strictly: only the canonical
    spelling of 64 bytes, so a changed character cannot decode to the same signature."""
    try:
        decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        decoded = b""
    canonical = base64.urlsafe_b64encode(decoded).rstrip(b"=").decode()
    if len(decoded) != _SIGNATURE_BYTES or canonical != encoded:
        raise InvalidInitData(Reason.BAD_SIGNATURE,
                              "The initData signature is not 64 bytes of unpadded base64url.")
    return decoded


def _checked(pairs: dict[str, str], *, now: datetime, max_age: timedelta,
             future_skew: timedelta) -> InitData:
    """The fields of authenticated pairs, once `auth_date` is within the window."""
    auth_date = _auth_date(pairs.get("auth_date"))
    if now - auth_date > max_age:
        raise InvalidInitData(Reason.STALE,
                              f"The initData was signed at {auth_date.isoformat()}, more than "
                              f"{max_age} before {now.isoformat()}; open the Mini App again.")
    if auth_date - now > future_skew:
        raise InvalidInitData(Reason.FUTURE,
                              f"The initData auth_date {auth_date.isoformat()} is more than "
                              f"{future_skew} after {now.isoformat()}.")
    user = pairs.get("user")
    return InitData(user=None if user is None else _user(user), auth_date=auth_date,
                    query_id=pairs.get("query_id"), start_param=pairs.get("start_param"),
                    chat_type=pairs.get("chat_type"), chat_instance=pairs.get("chat_instance"),
                    raw=dict(pairs))


def _auth_date(value: str | None) -> datetime:
    if value is None:
        raise _malformed("it has no auth_date")
    if not _TIMESTAMP.fullmatch(value):
        raise _malformed("auth_date is not a Unix time in seconds")
    return datetime.fromtimestamp(int(value), tz=UTC)


def _user(value: str) -> WebAppUser:
    try:
        data = json.loads(value, object_pairs_hook=_unique_object)
    except ValueError:  # JSONDecodeError, or a key repeated inside the object
        raise _malformed("user is not a JSON object") from None
    if not isinstance(data, dict):
        raise _malformed("user is not a JSON object")
    user_id = data.get("id")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise _malformed("user.id is not an integer")
    first_name = data.get("first_name")
    if not isinstance(first_name, str):
        raise _malformed("user.first_name is not a string")
    is_premium = data.get("is_premium", False)
    if not isinstance(is_premium, bool):
        raise _malformed("user.is_premium is not true or false")
    return WebAppUser(id=user_id, first_name=first_name, last_name=_optional(data, "last_name"),
                      username=_optional(data, "username"),
                      language_code=_optional(data, "language_code"), is_premium=is_premium)


def _unique_object(items: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError("repeated key")
    return dict(items)


def _optional(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _malformed(f"user.{key} is not a string")
    return value


def _malformed(why: str) -> InvalidInitData:
    return InvalidInitData(Reason.MALFORMED, f"The initData is malformed: {why}.")
