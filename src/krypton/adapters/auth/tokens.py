"""Access tokens: HS256 JWTs (PyJWT), the `Tokens` port.

The algorithm is pinned: a token whose header names another ("none", RS256 with our key as
a "public key", …) is refused before its signature is looked at. Expiry is judged by the
injected clock with no leeway, not by PyJWT's reading of the system clock."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt

from krypton.domain.roles import Role
from krypton.domain.users import UserPrincipal

ALGORITHM = "HS256"
# Names what the token is for: a token signed with the same key for another purpose does
# not pass as a dashboard session.
AUDIENCE = "krypton:session"
MIN_KEY_BYTES = 32  # HS256's own output size; RFC 7518 asks for at least this much
# "merchant" is null for the operator, which PyJWT counts as missing: checked below.
_REQUIRED = ["sub", "role", "scopes", "exp", "iat", "jti", "sid", "csrf", "aud"]


class JwtTokens:
    def __init__(self, key: str | bytes, clock: Callable[[], datetime]) -> None:
        self._key = key.encode() if isinstance(key, str) else key
        if len(self._key) < MIN_KEY_BYTES:
            raise ValueError(f"The session signing key has {len(self._key)} bytes; give at least "
                             f"{MIN_KEY_BYTES} random bytes (e.g. `openssl rand -base64 48`).")
        self._clock = clock

    def issue(self, principal: UserPrincipal, now: datetime) -> str:
        claims = {
            "sub": principal.user_id, "role": principal.role.value,
            "merchant": principal.merchant_id, "scopes": sorted(principal.grants),
            "iat": int(now.timestamp()), "exp": int(principal.expires_at.timestamp()),
            # Unique per token: a handle for a deny list, should one be needed.
            "jti": secrets.token_urlsafe(12), "sid": principal.session_id,
            "csrf": principal.csrf_hash, "aud": AUDIENCE,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> UserPrincipal | None:
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], audience=AUDIENCE,
                                leeway=0, options={"require": _REQUIRED, "verify_exp": False,
                                                   "verify_iat": False, "verify_nbf": False})
        except jwt.PyJWTError:
            return None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> UserPrincipal | None:
        exp, merchant = claims["exp"], claims.get("merchant", 0)  # 0: absent, refused below
        if not isinstance(exp, int) or isinstance(exp, bool) or self._clock().timestamp() >= exp:
            return None
        texts = (claims["sub"], claims["sid"], claims["csrf"], claims["role"])
        if not all(isinstance(v, str) for v in texts) or not isinstance(merchant, str | None):
            return None
        try:
            role = Role(claims["role"])
        except ValueError:
            return None
        return UserPrincipal(claims["sub"], role, merchant, claims["sid"], claims["csrf"],
                             datetime.fromtimestamp(exp, UTC))

