"""The merchant bot's tables (telegram_chats, telegram_link_codes, telegram_messages): the
`app.merchant_bot.BotRepo` port, on the connection of a unit of work the caller opened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from krypton.adapters.db import tables as t
from krypton.adapters.db.connection import Connection
from krypton.adapters.db.database import SqlUnitOfWork
from krypton.app.merchant_bot import Chat, LinkCode, Message, MessageStatus
from krypton.app.ports import UnitOfWork

_chats, _codes, _messages = t.telegram_chats.c, t.telegram_link_codes.c, t.telegram_messages.c
_DIALECTS = {"sqlite": sqlite, "postgresql": postgresql}


def bot_repo(uow: UnitOfWork) -> SqlBotRepo:
    """The bot's repository inside `uow` (always the SQL unit of work: bootstrap builds both)."""
    return SqlBotRepo(cast(SqlUnitOfWork, uow).connection)


class SqlBotRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = _DIALECTS[conn.dialect.name]

    async def add_code(self, code: LinkCode) -> None:
        await self.conn.execute(t.telegram_link_codes.insert().values(
            code_hash=code.code_hash, merchant_id=code.merchant_id, created_by=code.created_by,
            created_at=code.created_at, expires_at=code.expires_at))

    async def code(self, code_hash: str) -> LinkCode | None:
        row = (await self.conn.execute(sa.select(t.telegram_link_codes).where(
            _codes.code_hash == code_hash))).first()
        if row is None:
            return None
        return LinkCode(row.code_hash, row.merchant_id, row.created_by, row.created_at,
                        row.expires_at, row.used_at, row.used_by_chat)

    async def spend_code(self, code_hash: str, chat_id: int, now: datetime) -> bool:
        # The guard in the statement: of two chats sending one code at once, one spends it.
        result = await self.conn.execute(t.telegram_link_codes.update().where(
            _codes.code_hash == code_hash, _codes.used_at.is_(None)).values(
            used_at=now, used_by_chat=chat_id))
        return bool(result.rowcount)

    async def chat(self, chat_id: int) -> Chat | None:
        row = (await self.conn.execute(sa.select(t.telegram_chats).where(
            _chats.chat_id == chat_id))).first()
        return _chat(row) if row is not None else None

    async def link(self, chat: Chat) -> None:
        values = {"chat_id": chat.chat_id, "merchant_id": chat.merchant_id,
                  "chat_type": chat.chat_type[:20],
                  "title": chat.title[:200] if chat.title else None,
                  "linked_by": chat.linked_by, "linked_at": chat.linked_at}
        insert = self.dialect.insert(t.telegram_chats).values(**values)
        await self.conn.execute(insert.on_conflict_do_update(
            index_elements=["chat_id"],
            set_={k: v for k, v in values.items() if k != "chat_id"}))

    async def unlink(self, chat_id: int) -> bool:
        result = await self.conn.execute(t.telegram_chats.delete().where(_chats.chat_id == chat_id))
        return bool(result.rowcount)

    async def linked_merchants(self) -> set[str]:
        return set((await self.conn.execute(sa.select(_chats.merchant_id).distinct())).scalars())

    async def chats_of(self, merchant_ids: Sequence[str]) -> list[Chat]:
        rows = await self.conn.execute(sa.select(t.telegram_chats).where(
            _chats.merchant_id.in_(list(merchant_ids))).order_by(_chats.linked_at, _chats.chat_id))
        return [_chat(row) for row in rows]

    async def add_messages(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        insert = self.dialect.insert(t.telegram_messages).on_conflict_do_nothing(
            index_elements=["event_id", "chat_id"])
        await self.conn.execute(insert, [_message_row(m) for m in messages])

    async def due_messages(self, now: datetime, limit: int) -> list[Message]:
        rows = await self.conn.execute(sa.select(t.telegram_messages).where(
            _messages.status == MessageStatus.PENDING.value, _messages.next_attempt_at <= now)
            .order_by(_messages.event_txid, _messages.event_seq, _messages.chat_id).limit(limit))
        return [_message(row) for row in rows]

    async def save_messages(self, messages: Sequence[Message]) -> None:
        for m in messages:
            await self.conn.execute(t.telegram_messages.update().where(_messages.id == m.id).values(
                status=m.status.value, attempts=m.attempts, next_attempt_at=m.next_attempt_at,
                finished_at=m.finished_at, last_error=m.last_error))

    async def drop_pending(self, chat_id: int, now: datetime, reason: str) -> int:
        result = await self.conn.execute(t.telegram_messages.update().where(
            _messages.chat_id == chat_id, _messages.status == MessageStatus.PENDING.value).values(
            status=MessageStatus.DROPPED.value, next_attempt_at=None, finished_at=now,
            last_error=reason[:500]))
        return int(result.rowcount or 0)

    async def messages_for(self, chat_id: int) -> list[Message]:
        rows = await self.conn.execute(sa.select(t.telegram_messages).where(
            _messages.chat_id == chat_id).order_by(_messages.event_txid, _messages.event_seq))
        return [_message(row) for row in rows]


def _chat(row: Any) -> Chat:
    return Chat(row.chat_id, row.merchant_id, row.chat_type, row.title, row.linked_by,
                row.linked_at)


def _message_row(m: Message) -> dict[str, Any]:
    return {"id": m.id, "chat_id": m.chat_id, "merchant_id": m.merchant_id,
            "event_id": m.event_id, "event_txid": m.position[0], "event_seq": m.position[1],
            "text": m.text, "status": m.status.value,
            "attempts": m.attempts, "next_attempt_at": m.next_attempt_at,
            "created_at": m.created_at, "finished_at": m.finished_at, "last_error": m.last_error}


def _message(row: Any) -> Message:
    return Message(row.id, row.chat_id, row.merchant_id, row.event_id,
                   (row.event_txid, row.event_seq), row.text,
                   MessageStatus(row.status), row.attempts, row.next_attempt_at, row.created_at,
                   row.finished_at, row.last_error)
