"""Signing Telegram Mini App initData as Telegram does, for tests: HMAC-SHA256 with the key
derived from a bot token (core.telegram.org/bots/webapps), and optionally an Ed25519
`signature` with a test key standing in for Telegram's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from krypton.adapters.telegram.init_data import webapp_secret


def user_json(user_id: int, *, first_name: str = "Ann", language_code: str = "en", **more: Any) -> str:
    return json.dumps({"id": user_id, "first_name": first_name, "language_code": language_code,
                       **more}, separators=(",", ":"), ensure_ascii=False)


def pairs_for(user_id: int, auth_date: datetime, **more: Any) -> dict[str, str]:
    language = more.pop("language_code", "en")
    return {"query_id": "AAH-test-query", "user": user_json(user_id, language_code=language),
            "auth_date": str(int(auth_date.timestamp())), **{k: str(v) for k, v in more.items()}}


def _check_string(pairs: dict[str, str]) -> str:
    return "\n".join(f"{k}={pairs[k]}" for k in sorted(pairs))


def signed(token: str, user_id: int, auth_date: datetime, **more: Any) -> str:
    """initData for `user_id` at `auth_date`, hashed with `token` as Telegram would."""
    pairs = pairs_for(user_id, auth_date, **more)
    digest = hmac.new(webapp_secret(token), _check_string(pairs).encode(), hashlib.sha256).hexdigest()
    return urlencode({**pairs, "hash": digest})


def ed25519_signed(key: Ed25519PrivateKey, bot_id: int, user_id: int, auth_date: datetime) -> str:
    """initData carrying only Telegram's third-party `signature` (made here with `key`)."""
    pairs = pairs_for(user_id, auth_date)
    message = f"{bot_id}:WebAppData\n{_check_string(pairs)}".encode()
    signature = base64.urlsafe_b64encode(key.sign(message)).rstrip(b"=").decode()
    return urlencode({**pairs, "signature": signature})
