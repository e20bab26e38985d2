"""Dashboard users: creation, sign-in with lockout and equal work, refresh by rotation with
reuse detection, sign-out; on both databases."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from krypton.adapters.auth.passwords import Argon2Hasher
from krypton.adapters.auth.tokens import JwtTokens
from krypton.adapters.db.users import sessions
from krypton.adapters.db.users import users as users_table
from krypton.app import merchants, users
from krypton.bootstrap import Container
from krypton.domain.errors import Conflict, DomainError, NotFound
from krypton.domain.roles import Role, grants_of
from krypton.domain.users import (
    ACCESS_TTL,
    SESSION_LIFETIME,
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    SessionEnded,
    User,
    UserPrincipal,
)
from tests.support.clock import ManualClock

PASSWORD = "correct horse battery"
KEY = "a-test-session-signing-key-of-48-bytes-or-so!!!"
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class RecordingHasher(Argon2Hasher):
    """Cheap Argon2 that notes which verifications ran."""

    def __init__(self, **params: int) -> None:
        super().__init__(**(params or FAST))
        self.calls: list[str] = []

    def verify(self, password_hash: str, password: str) -> bool:
        self.calls.append("verify")
        return super().verify(password_hash, password)

    def verify_dummy(self, password: str) -> None:
        self.calls.append("verify_dummy")
        super().verify_dummy(password)


@pytest.fixture
def hasher() -> RecordingHasher:
    return RecordingHasher()


@pytest.fixture
def tokens(clock: ManualClock) -> JwtTokens:
    return JwtTokens(KEY, clock.now)


@pytest.fixture
async def shop(container: Container) -> str:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    return merchant.id


@pytest.fixture
async def ada(container: Container, hasher: RecordingHasher, shop: str) -> User:
    return await users.create_user(container.deps, hasher, " Ada@Example.com", PASSWORD, "developer",
                                   shop)


async def sign_in(container: Container, hasher: RecordingHasher, tokens: JwtTokens,
                  password: str = PASSWORD, email: str = "ada@example.com") -> users.Session:
    return await users.sign_in(container.deps, hasher, tokens, email, password,
                               container.deps.clock.now())


async def column(container: Container, table: sa.Table, name: str) -> list[object]:
    async with container.db.reader.connect() as conn:
        return list((await conn.execute(sa.select(table.c[name]).order_by(table.c.id))).scalars())


# --- Creating users ------------------------------------------------------------------------


async def test_a_user_is_stored_with_its_email_lower_cased_and_its_password_hashed(
        container: Container, hasher: RecordingHasher, ada: User, shop: str) -> None:
    assert (ada.email, ada.role, ada.merchant_id) == ("ada@example.com", Role.DEVELOPER, shop)
    assert ada.id.startswith("usr_")
    (stored,) = await column(container, users_table, "password_hash")
    assert isinstance(stored, str) and stored.startswith("$argon2id$") and PASSWORD not in stored
    assert [u.id for u in await users.list_users(container.deps)] == [ada.id]
    assert [u.id for u in await users.list_users(container.deps, shop)] == [ada.id]
    assert await users.list_users(container.deps, "mer_other") == []


async def test_an_email_differing_only_in_case_is_taken(
        container: Container, hasher: RecordingHasher, ada: User, shop: str) -> None:
    with pytest.raises(Conflict) as raised:
        await users.create_user(container.deps, hasher, "ADA@example.COM", PASSWORD, Role.VIEWER, shop)
    assert raised.value.message == ("A user with the email 'ada@example.com' exists already; choose "
                                    "another email.")


async def test_the_first_operator_needs_no_merchant(container: Container,
                                                    hasher: RecordingHasher) -> None:
    root = await users.create_user(container.deps, hasher, "root@example.com", PASSWORD,
                                   Role.OPERATOR, None)
    assert (root.role, root.merchant_id) == (Role.OPERATOR, None)


@pytest.mark.parametrize(("email", "password", "role", "merchant", "field"), [
    ("ada@example.com", "too short", "viewer", "shop", "password"),
    ("ada@example.com", PASSWORD, "admin", "shop", "role"),
    ("ada@example.com", PASSWORD, "owner", None, "merchant_id"),
    ("ada@example.com", PASSWORD, "operator", "shop", "merchant_id"),
    ("not an email", PASSWORD, "viewer", "shop", "email"),
])
async def test_bad_input_is_refused_with_the_field_at_fault(
        container: Container, hasher: RecordingHasher, shop: str, email: str, password: str,
        role: str, merchant: str | None, field: str) -> None:
    with pytest.raises(DomainError) as raised:
        await users.create_user(container.deps, hasher, email, password, role,
                                shop if merchant else None)
    assert raised.value.field == field
    assert await users.list_users(container.deps) == []


async def test_an_unknown_merchant_is_not_found(container: Container, hasher: RecordingHasher) -> None:
    with pytest.raises(NotFound, match="No merchant 'mer_nope'"):
        await users.create_user(container.deps, hasher, "ada@example.com", PASSWORD, "owner",
                                "mer_nope")


# --- Signing in ----------------------------------------------------------------------------


async def test_signing_in_gives_an_access_token_for_the_role_and_a_stored_refresh_token(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User,
        shop: str, clock: ManualClock) -> None:
    session = await sign_in(container, hasher, tokens, email="ADA@example.com ")
    principal = users.authenticate_access(tokens, session.access_jwt)
    assert principal == session.principal
    assert principal is not None and (principal.user_id, principal.role, principal.merchant_id) == (
        ada.id, Role.DEVELOPER, shop)
    assert principal.grants == grants_of(Role.DEVELOPER)
    assert principal.expires_at == clock.now() + ACCESS_TTL
    assert session.expires_at == clock.now() + SESSION_LIFETIME
    assert session.refresh_token != session.csrf_token
    (token_hash,) = await column(container, sessions, "token_hash")
    assert token_hash == merchants.hash_key(session.refresh_token)  # never the token itself
    assert users.authenticate_access(tokens, session.access_jwt + "x") is None


async def test_an_unknown_email_and_a_wrong_password_get_one_answer_after_the_same_work(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User) -> None:
    hasher.calls.clear()
    with pytest.raises(InvalidCredentials) as unknown:
        await sign_in(container, hasher, tokens, email="eve@example.com")
    assert hasher.calls == ["verify_dummy", "verify"]  # one Argon2 verification, of a dummy hash
    hasher.calls.clear()
    with pytest.raises(InvalidCredentials) as wrong:
        await sign_in(container, hasher, tokens, password="wrong password!")
    assert hasher.calls == ["verify"]
    assert (unknown.value.code, unknown.value.message) == (wrong.value.code, wrong.value.message) == (
        "invalid_credentials", "The email or password is wrong; check both and try again.")


async def test_five_failures_lock_even_the_right_password_out_for_fifteen_minutes(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User,
        clock: ManualClock) -> None:
    for _ in range(5):
        clock.advance(minutes=1)
        with pytest.raises(InvalidCredentials):
            await sign_in(container, hasher, tokens, password="wrong password!")
    hasher.calls.clear()
    with pytest.raises(AccountLocked) as locked:
        await sign_in(container, hasher, tokens)
    assert locked.value.retry_after == 15 * 60
    assert hasher.calls == []  # a locked account is not even tried
    clock.advance(minutes=15)
    await sign_in(container, hasher, tokens)
    assert await column(container, users_table, "failures") == [0]
    assert await column(container, users_table, "locked_until") == [None]


async def test_a_success_clears_the_failure_streak(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await sign_in(container, hasher, tokens, password="wrong password!")
    assert await column(container, users_table, "failures") == [4]
    await sign_in(container, hasher, tokens)
    with pytest.raises(InvalidCredentials):  # a fresh streak: one failure is not five
        await sign_in(container, hasher, tokens, password="wrong password!")
    await sign_in(container, hasher, tokens)


async def test_concurrent_failures_each_count(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User) -> None:
    results = await asyncio.gather(*(sign_in(container, hasher, tokens, password="wrong password!")
                                     for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, InvalidCredentials) for r in results)
    with pytest.raises(AccountLocked):
        await sign_in(container, hasher, tokens)


async def set_disabled(container: Container, user_id: str) -> None:
    async with container.db.writer.connect() as conn:
        await conn.execute(users_table.update().where(users_table.c.id == user_id).values(
            disabled_at=container.deps.clock.now()))
        await conn.commit()


async def test_a_disabled_user_is_told_so_only_with_the_right_password(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User) -> None:
    await set_disabled(container, ada.id)
    with pytest.raises(InvalidCredentials):
        await sign_in(container, hasher, tokens, password="wrong password!")
    with pytest.raises(AccountDisabled, match="This account is disabled"):
        await sign_in(container, hasher, tokens)


async def test_a_hash_made_with_weaker_parameters_is_replaced_at_sign_in(
        container: Container, tokens: JwtTokens, ada: User) -> None:
    (old,) = await column(container, users_table, "password_hash")
    stronger = RecordingHasher(time_cost=2, memory_cost=16, parallelism=1)
    await sign_in(container, stronger, tokens)
    (new,) = await column(container, users_table, "password_hash")
    assert isinstance(new, str) and new != old and new.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    assert stronger.verify(new, PASSWORD)


# --- Refreshing and signing out ------------------------------------------------------------


async def test_refresh_rotates_and_a_spent_token_used_again_ends_the_whole_session(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User,
        clock: ManualClock) -> None:
    first = await sign_in(container, hasher, tokens)
    clock.advance(minutes=9)
    second = await users.refresh(container.deps, tokens, first.refresh_token, clock.now())
    assert second.refresh_token != first.refresh_token and second.csrf_token != first.csrf_token
    assert second.principal.session_id == first.principal.session_id
    assert second.principal.expires_at == clock.now() + ACCESS_TTL
    assert second.expires_at == first.expires_at  # rotation never extends the session
    with pytest.raises(SessionEnded):  # the first token again: someone copied it
        await users.refresh(container.deps, tokens, first.refresh_token, clock.now())
    with pytest.raises(SessionEnded):  # and the holder of the newest is signed out too
        await users.refresh(container.deps, tokens, second.refresh_token, clock.now())
    assert None not in await column(container, sessions, "revoked_at")


async def test_of_two_refreshes_racing_with_one_token_one_wins_and_the_session_ends(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User,
        clock: ManualClock) -> None:
    first = await sign_in(container, hasher, tokens)
    results = await asyncio.gather(
        *(users.refresh(container.deps, tokens, first.refresh_token, clock.now()) for _ in range(2)),
        return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Session", "SessionEnded"]
    assert None not in await column(container, sessions, "revoked_at")


async def test_a_session_ends_twelve_hours_after_sign_in_however_often_refreshed(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User,
        clock: ManualClock) -> None:
    session = await sign_in(container, hasher, tokens)
    for _ in range(11):
        clock.advance(hours=1)
        session = await users.refresh(container.deps, tokens, session.refresh_token, clock.now())
    clock.advance(hours=1)
    with pytest.raises(SessionEnded):
        await users.refresh(container.deps, tokens, session.refresh_token, clock.now())


async def test_an_unknown_refresh_token_or_a_disabled_user_ends_the_session(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User,
        clock: ManualClock) -> None:
    with pytest.raises(SessionEnded, match="sign in again"):
        await users.refresh(container.deps, tokens, "made-up", clock.now())
    session = await sign_in(container, hasher, tokens)
    await set_disabled(container, ada.id)
    with pytest.raises(SessionEnded):
        await users.refresh(container.deps, tokens, session.refresh_token, clock.now())
    assert None not in await column(container, sessions, "revoked_at")


async def test_signing_out_revokes_the_session_by_its_refresh_token_or_its_id(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User,
        clock: ManualClock) -> None:
    kept = await sign_in(container, hasher, tokens)
    by_token = await sign_in(container, hasher, tokens)
    by_id = await sign_in(container, hasher, tokens)
    await users.sign_out(container.deps, clock.now(), refresh_token=by_token.refresh_token)
    await users.sign_out(container.deps, clock.now(), session_id=by_id.principal.session_id)
    await users.sign_out(container.deps, clock.now(), refresh_token="unknown")  # no error
    await users.sign_out(container.deps, clock.now())
    for ended in (by_token, by_id):
        with pytest.raises(SessionEnded):
            await users.refresh(container.deps, tokens, ended.refresh_token, clock.now())
    await users.refresh(container.deps, tokens, kept.refresh_token, clock.now())


async def test_an_access_token_outlives_sign_out_by_at_most_ten_minutes(
        container: Container, hasher: RecordingHasher, tokens: JwtTokens, ada: User,
        clock: ManualClock) -> None:
    session = await sign_in(container, hasher, tokens)
    await users.sign_out(container.deps, clock.now(), refresh_token=session.refresh_token)
    assert isinstance(users.authenticate_access(tokens, session.access_jwt), UserPrincipal)
    clock.advance(minutes=10)
    assert users.authenticate_access(tokens, session.access_jwt) is None
