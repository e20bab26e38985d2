"""the shop sells Telegram Premium too: an order's product, the usernames the bot knows

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every order before this migration bought Stars.
    with op.batch_alter_table("shop_orders") as batch:
        batch.add_column(sa.Column("product", sa.String(16), nullable=False, server_default="stars"))
    op.create_table(
        "shop_telegram_users",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_shop_telegram_users"),
    )


def downgrade() -> None:
    op.drop_table("shop_telegram_users")
    with op.batch_alter_table("shop_orders") as batch:
        batch.drop_column("product")
