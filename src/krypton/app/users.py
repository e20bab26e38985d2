"""Dashboard users and their sign-in sessions: create a user, sign in, refresh by rotation,
sign out, and verify an access token."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from krypton.app.deps import Deps
from krypton.app.merchants import hash_key
from krypton.app.ports import PasswordHasher, Tokens
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.roles import MERCHANT_ROLES, Role, check_membership, parse_role
from krypton.domain.users import (
    ACCESS_TTL,
    MAX_PASSWORD_LENGTH,
    SESSION_LIFETIME,
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    RefreshToken,
    SessionEnded,
    User,
    UserPrincipal,
    after_failure,
    after_success,
    check_password,
    locked_for,
    normalize_email,
)

# --- Use cases ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """What a sign-in or a refresh hands the client: each secret is shown only here."""

    access_jwt: str
    refresh_token: str
    csrf_token: str
    user: User
    principal: UserPrincipal
    expires_at: datetime  # the session's end (the refresh token's)


async def create_user(deps: Deps, hasher: PasswordHasher, email: str, password: str,
                      role: Role | str, merchant_id: str | None) -> User:
    chosen = role if isinstance(role, Role) else parse_role(role)
    check_membership(chosen, merchant_id)
    address = normalize_email(email)
    check_password(password)
    password_hash = await asyncio.to_thread(hasher.hash, password)
    user = User(deps.ids.new("usr"), address, chosen, merchant_id, deps.clock.now(), password_hash)
    async with deps.uow() as uow:
        if merchant_id is not None and await uow.merchants.get(merchant_id) is None:
            raise NotFound(f"No merchant '{merchant_id}'; check the id (krypton merchant list).",
                           field="merchant_id")
        if not await uow.users.add(user):
            raise Conflict(f"A user with the email '{address}' exists already; choose another "
                           "email.", field="email")
        await uow.commit()
    return user


async def list_users(deps: Deps, merchant_id: str | None = None) -> Sequence[User]:
    """Every user, or one merchant's."""
    async with deps.uow(write=False) as uow:
        if merchant_id is None:
            return await uow.users.all()
        return await uow.users.for_merchant(merchant_id)


async def get_user(deps: Deps, user_id: str) -> User | None:
    async with deps.uow(write=False) as uow:
        return await uow.users.get(user_id)


def _csrf_hash(csrf_token: str) -> str:
    return hashlib.sha256(csrf_token.encode()).hexdigest()


def _access(deps: Deps, tokens: Tokens, user: User, family_id: str,
            now: datetime) -> tuple[str, str, UserPrincipal]:
    csrf = deps.ids.secret()
    principal = UserPrincipal(user.id, user.role, user.merchant_id, family_id, _csrf_hash(csrf),
                              now + ACCESS_TTL)
    return tokens.issue(principal, now), csrf, principal


def _refresh_token(deps: Deps, user_id: str, family_id: str, now: datetime,
                   expires_at: datetime) -> tuple[str, RefreshToken]:
    # 256 random bits: SHA-256 is enough to keep it from being usable if the table leaks.
    secret = deps.ids.secret()
    return secret, RefreshToken(deps.ids.new("rft"), user_id, family_id, hash_key(secret), now,
                                expires_at)


async def _record_failure(deps: Deps, user_id: str, now: datetime) -> None:
    async with deps.uow() as uow:
        # Re-read under a lock: concurrent failures each count.
        user = await uow.users.get(user_id, for_update=True)
        if user is not None:
            await uow.users.save_lockout(user_id, after_failure(user.lockout, now))
            await uow.commit()


async def sign_in(deps: Deps, hasher: PasswordHasher, tokens: Tokens, email: str, password: str,
                  now: datetime) -> Session:
    """A new session for the user with this email and password.

    Raises InvalidCredentials (unknown email or wrong password alike, after the same hashing
    work), AccountLocked, or AccountDisabled (only with the right password)."""
    address = normalize_email(email)
    if len(password) > MAX_PASSWORD_LENGTH:  # no such password can be stored
        raise InvalidCredentials()
    # No transaction is open while hashing: on SQLite it would hold the one writer.
    async with deps.uow(write=False) as uow:
        user = await uow.users.by_email(address)
    if user is None:
        await asyncio.to_thread(hasher.verify_dummy, password)
        raise InvalidCredentials()
    locked = locked_for(user.lockout, now)
    if locked:
        raise AccountLocked(locked)
    if not await asyncio.to_thread(hasher.verify, user.password_hash, password):
        await _record_failure(deps, user.id, now)
        raise InvalidCredentials()
    if user.disabled_at is not None:
        raise AccountDisabled()
    rehashed = (await asyncio.to_thread(hasher.hash, password)
                if hasher.needs_rehash(user.password_hash) else None)
    family_id = deps.ids.new("ses")
    secret, token = _refresh_token(deps, user.id, family_id, now, now + SESSION_LIFETIME)
    async with deps.uow() as uow:
        await uow.users.save_lockout(user.id, after_success())
        if rehashed is not None:
            await uow.users.set_password_hash(user.id, rehashed)
        await uow.sessions.add(token)
        await uow.commit()
    user = replace(user, lockout=after_success(), password_hash=rehashed or user.password_hash)
    access, csrf, principal = _access(deps, tokens, user, family_id, now)
    return Session(access, secret, csrf, user, principal, token.expires_at)


async def refresh(deps: Deps, tokens: Tokens, refresh_token: str, now: datetime) -> Session:
    """Spend a refresh token for a new access token and the session's next refresh token.

    A token spent before means it was copied: the whole session is revoked (the thief's
    and the user's tokens alike) and SessionEnded raised, as for any unusable token."""
    async with deps.uow() as uow:
        token = await uow.sessions.by_hash(hash_key(refresh_token))
        if token is None:
            raise SessionEnded()
        user = await uow.users.get(token.user_id)
        reused = token.used_at is not None
        if token.revoked_at is not None or now >= token.expires_at:
            raise SessionEnded()
        if reused or user is None or user.disabled_at is not None \
                or not await uow.sessions.mark_used(token.id, now):
            await uow.sessions.revoke_family(token.family_id, now)
            await uow.commit()
            raise SessionEnded()
        secret, rotated = _refresh_token(deps, user.id, token.family_id, now, token.expires_at)
        await uow.sessions.add(rotated)
        await uow.commit()
    access, csrf, principal = _access(deps, tokens, user, token.family_id, now)
    return Session(access, secret, csrf, user, principal, rotated.expires_at)


async def sign_out(deps: Deps, now: datetime, *, refresh_token: str | None = None,
                   session_id: str | None = None) -> None:
    """Revoke the session the refresh token, or else the session id (an access token's), is
    of. Nothing to revoke is no error: signing out twice is signing out."""
    async with deps.uow() as uow:
        family_id = session_id
        if refresh_token is not None:
            token = await uow.sessions.by_hash(hash_key(refresh_token))
            family_id = token.family_id if token is not None else session_id
        if family_id is not None:
            await uow.sessions.revoke_family(family_id, now)
            await uow.commit()


def authenticate_access(tokens: Tokens, jwt: str) -> UserPrincipal | None:
    """Who an access token speaks for, or None when it is not a valid, unexpired one of ours."""
    return tokens.verify(jwt)


# --- A merchant's owner managing its users ---------------------------------------------------

def _merchant_role(role: Role | str) -> Role:
    chosen = role if isinstance(role, Role) else parse_role(role)
    if chosen not in MERCHANT_ROLES:
        raise DomainError(f"A merchant's user is an owner, a developer or a viewer, not "
                          f"{chosen}; choose one of those.", field="role")
    return chosen


async def add_merchant_user(deps: Deps, hasher: PasswordHasher, merchant_id: str, email: str,
                            password: str, role: Role | str) -> User:
    """A new user of the merchant, with the initial password its owner chose."""
    return await create_user(deps, hasher, email, password, _merchant_role(role), merchant_id)


def _enabled_owners(team: Sequence[User]) -> set[str]:
    return {u.id for u in team if u.role is Role.OWNER and u.disabled_at is None}


def _check_change(team: Sequence[User], actor_id: str, user: User, role: Role,
                  disabled_at: datetime | None) -> None:
    """Refuse a change that would lock the merchant's owners out of their own dashboard."""
    demoted = role is not Role.OWNER and user.role is Role.OWNER
    disabling = disabled_at is not None and user.disabled_at is None
    if user.id == actor_id and (demoted or disabling):
        raise Conflict("You cannot " + ("disable your own account" if disabling else
                                        "take the owner role from yourself")
                       + "; ask another owner of the merchant to do it.",
                       field="disabled" if disabling else "role", code="own_account")
    after = _enabled_owners(team) - ({user.id} if demoted or disabling else set())
    if not after:
        raise Conflict(f"{user.email} is the merchant's last enabled owner; make another user an "
                       "owner first.", field="disabled" if disabling else "role", code="last_owner")


async def change_merchant_user(deps: Deps, merchant_id: str, actor_id: str, user_id: str, *,
                               role: Role | str | None = None,
                               disabled: bool | None = None) -> User:
    """Change a merchant user's role and whether it is disabled (None: as it is), as
    `actor_id` (an owner of the merchant). Disabling revokes the user's sessions (their
    refresh tokens); enabling lets it sign in again. Another merchant's user is as absent as
    a missing one (NotFound)."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        # Every user of the merchant, locked: two owners demoting each other at once cannot
        # both pass the last-owner check.
        team = await uow.users.for_merchant(merchant_id, for_update=True)
        user = next((u for u in team if u.id == user_id), None)
        if user is None:
            raise NotFound(f"No user '{user_id}'.", field="id")
        new_role = user.role if role is None else _merchant_role(role)
        new_disabled_at = user.disabled_at
        if disabled is not None:
            # Disabling twice keeps the first moment.
            new_disabled_at = (user.disabled_at or now) if disabled else None
        if (new_role, new_disabled_at) == (user.role, user.disabled_at):
            return user
        _check_change(team, actor_id, user, new_role, new_disabled_at)
        await uow.users.set_access(user.id, new_role, new_disabled_at)
        if new_disabled_at is not None:
            await uow.sessions.revoke_user(user.id, now)
        await uow.commit()
    return replace(user, role=new_role, disabled_at=new_disabled_at)


async def still_signed_in(deps: Deps, principal: UserPrincipal) -> UserPrincipal | None:
    """The access token's principal as things stand now: None when its session was revoked
    (sign-out, a replayed refresh token) or its user disabled, with the user's current role
    otherwise. The token alone is valid for up to ACCESS_TTL; this makes those changes take
    effect at once, for one indexed query and a primary-key read per request."""
    async with deps.uow(write=False) as uow:
        user = await uow.users.get(principal.user_id)
        if user is None or user.disabled_at is not None:
            return None
        if not await uow.sessions.family_active(principal.session_id):
            return None
    return principal if user.role is principal.role else replace(principal, role=user.role)
