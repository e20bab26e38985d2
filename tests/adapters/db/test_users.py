"""The users and sessions tables (migration 0009) and their repositories, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from krypton.adapters.db import tables
from krypton.adapters.db.users import SessionRepo, UserRepo, sessions, users
from krypton.app import merchants
from krypton.bootstrap import Container
from krypton.domain.roles import Role
from krypton.domain.users import Lockout, RefreshToken, User


async def test_migration_0009_builds_the_tables_defined_beside_the_repositories(
        container: Container) -> None:
    assert tables.metadata.tables["users"] is users and tables.metadata.tables["sessions"] is sessions

    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return list(compare_metadata(context, tables.metadata))

    async with container.db.reader.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_users_round_trip_and_emails_are_unique(container: Container) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    now = container.deps.clock.now()
    ada = User("usr_1", "ada@example.com", Role.OWNER, merchant.id, now, "hash-1")
    root = User("usr_2", "root@example.com", Role.OPERATOR, None, now + timedelta(seconds=1), "hash-2")
    async with container.db.writer.connect() as conn:
        repo = UserRepo(conn, locking=container.db.dialect == "postgresql")
        assert await repo.add(ada) and await repo.add(root)
        assert not await repo.add(User("usr_3", "ada@example.com", Role.VIEWER, merchant.id, now, "h"))
        locked = Lockout(0, None, now + timedelta(minutes=15))
        await repo.save_lockout("usr_1", locked)
        await repo.set_password_hash("usr_1", "hash-1b")
        await conn.commit()
    async with container.db.reader.connect() as conn:
        repo = UserRepo(conn, locking=False)
        stored = await repo.by_email("ada@example.com")
        assert stored == User("usr_1", "ada@example.com", Role.OWNER, merchant.id, now, "hash-1b", locked)
        assert await repo.get("usr_2", for_update=True) == root
        assert await repo.by_email("nobody@example.com") is None
        assert [u.id for u in await repo.all()] == ["usr_1", "usr_2"]
        assert [u.id for u in await repo.for_merchant(merchant.id)] == ["usr_1"]


async def test_a_refresh_token_is_spent_once_and_a_family_revoked_whole(container: Container) -> None:
    merchant, _ = await merchants.create_merchant(container.deps, name="Shop")
    now = container.deps.clock.now()
    end = now + timedelta(hours=12)
    async with container.db.writer.connect() as conn:
        await UserRepo(conn, locking=False).add(
            User("usr_1", "ada@example.com", Role.VIEWER, merchant.id, now, "h"))
        repo = SessionRepo(conn, locking=False)
        for n, family in ((1, "ses_a"), (2, "ses_a"), (3, "ses_b")):
            await repo.add(RefreshToken(f"rft_{n}", "usr_1", family, f"{n:064d}", now, end))
        assert await repo.mark_used("rft_1", now)
        assert not await repo.mark_used("rft_1", now + timedelta(seconds=1))
        assert await repo.revoke_family("ses_a", now) == 2
        assert await repo.revoke_family("ses_a", now) == 0  # already revoked: nothing more
        await conn.commit()
        first = await repo.by_hash(f"{1:064d}")
        assert first == RefreshToken("rft_1", "usr_1", "ses_a", f"{1:064d}", now, end, now, now)
        other = await repo.by_hash(f"{3:064d}")
        assert other is not None and other.usable(now) and other.revoked_at is None
        assert [t.id for t in await repo.for_user("usr_1")] == ["rft_1", "rft_2", "rft_3"]
        assert await repo.by_hash("f" * 64) is None
