"""merchant bot: merchants' linked Telegram chats, one-time link codes, the notification outbox

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telegram_chats",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("chat_type", sa.String(20), nullable=False),
        sa.Column("title", sa.String(200)),
        sa.Column("linked_by", sa.BigInteger()),
        sa.Column("linked_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name="fk_telegram_chats_merchant_id_merchants"),
        sa.PrimaryKeyConstraint("chat_id", name="pk_telegram_chats"),
    )
    op.create_index("ix_telegram_chats_merchant_id", "telegram_chats", ["merchant_id"])
    op.create_table(
        "telegram_link_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(100)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.Column("used_by_chat", sa.BigInteger()),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name="fk_telegram_link_codes_merchant_id_merchants"),
        sa.PrimaryKeyConstraint("code_hash", name="pk_telegram_link_codes"),
    )
    op.create_table(
        "telegram_messages",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_txid", sa.BigInteger(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("last_error", sa.String(500)),
        sa.PrimaryKeyConstraint("id", name="pk_telegram_messages"),
        sa.UniqueConstraint("event_id", "chat_id", name="uq_telegram_messages_event_chat"),
    )
    op.create_index("ix_telegram_messages_status_next", "telegram_messages",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("telegram_messages")
    op.drop_table("telegram_link_codes")
    op.drop_index("ix_telegram_chats_merchant_id", table_name="telegram_chats")
    op.drop_table("telegram_chats")
