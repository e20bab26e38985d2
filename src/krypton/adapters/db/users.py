"""Dashboard users and their sessions' refresh tokens: the tables (on the shared metadata,
migration 0009) and the repositories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from krypton.adapters.db import tables as t
from krypton.adapters.db.repositories import Repo
from krypton.domain.roles import Role
from krypton.domain.users import Lockout, RefreshToken, User

# Emails are stored lower-cased (domain/users.normalize_email), so the plain unique
# constraint makes them unique case-insensitively on both databases.
users = sa.Table(
    "users", t.metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), index=True),  # None: the operator
    # The failed sign-in streak and its lock (domain/users.Lockout).
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_failure_at", t.TS),
    sa.Column("locked_until", t.TS),
    sa.Column("created_at", t.TS, nullable=False),
    sa.Column("disabled_at", t.TS),
)

# Refresh tokens, by their SHA-256; a session (family) is its sign-in's token and every
# token rotated from it.
sessions = sa.Table(
    "sessions", t.metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("family_id", sa.String(40), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", t.TS, nullable=False),
    sa.Column("expires_at", t.TS, nullable=False),
    sa.Column("used_at", t.TS),
    sa.Column("revoked_at", t.TS),
)

U, S = users.c, sessions.c
_INSERT_USER = {
    name: dialect.insert(users).on_conflict_do_nothing(index_elements=[U.email]).returning(U.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}


def _user(r: Any) -> User:
    return User(r.id, r.email, Role(r.role), r.merchant_id, r.created_at, r.password_hash,
                Lockout(r.failures, r.first_failure_at, r.locked_until), r.disabled_at)


def _token(r: Any) -> RefreshToken:
    return RefreshToken(r.id, r.user_id, r.family_id, r.token_hash, r.created_at, r.expires_at,
                        r.used_at, r.revoked_at)


class UserRepo(Repo):
    async def add(self, u: User) -> bool:
        """Insert; False, writing nothing, when another user has the email."""
        result = await self.conn.execute(_INSERT_USER[self.conn.dialect.name].values(
            id=u.id, email=u.email, password_hash=u.password_hash, role=u.role.value,
            merchant_id=u.merchant_id, failures=u.lockout.failures,
            first_failure_at=u.lockout.first_failure_at, locked_until=u.lockout.locked_until,
            created_at=u.created_at, disabled_at=u.disabled_at))
        return result.first() is not None

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        query = sa.select(users).where(U.id == user_id)
        if for_update and self.locking:
            query = query.with_for_update()
        row = await self._one(query)
        return _user(row) if row else None

    async def by_email(self, email: str) -> User | None:
        row = await self._one(sa.select(users).where(U.email == email))
        return _user(row) if row else None

    async def all(self) -> list[User]:
        rows = await self.conn.execute(sa.select(users).order_by(U.created_at, U.id))
        return [_user(r) for r in rows]

    async def for_merchant(self, merchant_id: str, *, for_update: bool = False) -> list[User]:
        query = sa.select(users).where(U.merchant_id == merchant_id).order_by(U.created_at, U.id)
        if for_update and self.locking:
            # Always in this order: two changes to one merchant's users never deadlock.
            query = query.with_for_update()
        rows = await self.conn.execute(query)
        return [_user(r) for r in rows]

    async def save_lockout(self, user_id: str, lockout: Lockout) -> None:
        await self.conn.execute(users.update().where(U.id == user_id).values(
            failures=lockout.failures, first_failure_at=lockout.first_failure_at,
            locked_until=lockout.locked_until))

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.conn.execute(users.update().where(U.id == user_id).values(
            password_hash=password_hash))

    async def set_access(self, user_id: str, role: Role, disabled_at: datetime | None) -> None:
        await self.conn.execute(users.update().where(U.id == user_id).values(
            role=role.value, disabled_at=disabled_at))


class SessionRepo(Repo):
    async def add(self, token: RefreshToken) -> None:
        await self.conn.execute(sessions.insert().values(
            id=token.id, user_id=token.user_id, family_id=token.family_id,
            token_hash=token.token_hash, created_at=token.created_at, expires_at=token.expires_at,
            used_at=token.used_at, revoked_at=token.revoked_at))

    async def by_hash(self, token_hash: str) -> RefreshToken | None:
        row = await self._one(sa.select(sessions).where(S.token_hash == token_hash))
        return _token(row) if row else None

    async def mark_used(self, token_id: str, now: datetime) -> bool:
        # The condition is in the UPDATE itself: of concurrent spenders exactly one matches.
        result = await self.conn.execute(sessions.update().where(
            S.id == token_id, S.used_at.is_(None)).values(used_at=now))
        return bool(result.rowcount == 1)

    async def revoke_family(self, family_id: str, now: datetime) -> int:
        result = await self.conn.execute(sessions.update().where(
            S.family_id == family_id, S.revoked_at.is_(None)).values(revoked_at=now))
        return int(result.rowcount)

    async def family_active(self, family_id: str) -> bool:
        """Whether the session still has a token nobody revoked (sign-out, a replayed
        refresh token or disabling the user revoke them all)."""
        row = await self._one(sa.select(S.id).where(S.family_id == family_id, S.revoked_at.is_(None))
                              .limit(1))
        return row is not None

    async def revoke_user(self, user_id: str, now: datetime) -> int:
        """Revoke every session of the user: each family's tokens, in one statement."""
        result = await self.conn.execute(sessions.update().where(
            S.user_id == user_id, S.revoked_at.is_(None)).values(revoked_at=now))
        return int(result.rowcount)

    async def for_user(self, user_id: str) -> Sequence[RefreshToken]:
        rows = await self.conn.execute(sa.select(sessions).where(S.user_id == user_id)
                                       .order_by(S.created_at, S.id))
        return [_token(r) for r in rows]
