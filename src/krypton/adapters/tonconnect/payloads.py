"""The ton_proof payloads Krypton hands out: signed and expiring, so the server keeps nothing
until one is used, and good for one sign-in (table shop_proof_payloads remembers the used).

A payload is ``<expires (unix s)>.<nonce>.<mac>``, the mac an HMAC-SHA256 over the first two
parts with a key derived from the secret keys, cut to 16 bytes (a forgery needs 2^128 tries).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from krypton.adapters.db import tables as t
from krypton.adapters.db.database import Database
from krypton.adapters.tonconnect.proof import InvalidProof, Reason

MAC_BYTES = 16
_used = t.shop_proof_payloads
_INSERT = {name: dialect.insert(_used).on_conflict_do_nothing(index_elements=["nonce"])
           for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class PayloadSigner:
    """Issues and checks payloads; `key` is 32 secret bytes."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES])

    def issue(self, now: int, ttl: int) -> str:
        body = f"{now + ttl}.{_b64(secrets.token_bytes(16))}"
        return f"{body}.{self._mac(body)}"

    def check(self, payload: str, now: int) -> tuple[str, int]:
        """(nonce, expires) of a payload this server issued and that has not expired."""
        # ASCII first: what follows encodes it, and int() would read other scripts' digits.
        if not payload.isascii() or len(payload) > 128:
            raise InvalidProof(Reason.MALFORMED, "The proof's payload was not issued by this "
                               "server: ask for a new one and sign in again.")
        expires, _, rest = payload.partition(".")
        nonce, _, mac = rest.partition(".")
        if not expires.isdigit() or not nonce or \
                not hmac.compare_digest(mac.encode(), self._mac(f"{expires}.{nonce}").encode()):
            raise InvalidProof(Reason.MALFORMED, "The proof's payload was not issued by this "
                               "server: ask for a new one and sign in again.")
        if int(expires) <= now:
            raise InvalidProof(Reason.STALE, "The sign-in request has expired: try again.")
        return nonce, int(expires)


class SqlUsedPayloads:
    """Which nonces have signed someone in; each one only once, across every process."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def use(self, nonce: str, expires: int, now: datetime) -> bool:
        """True the first time a nonce is used, False ever after. Drops the expired rows."""
        async with self._db.writer.connect() as conn:
            await conn.begin()
            await conn.execute(sa.delete(_used).where(_used.c.expires_at < now))
            done = await conn.execute(_INSERT[self._db.dialect].values(
                nonce=nonce, expires_at=datetime.fromtimestamp(expires, UTC)))
            await conn.commit()
        return bool(done.rowcount == 1)
