"""Mini-App: Telegram users bound to the invoices they opened

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "miniapp_bindings",
        sa.Column("invoice_id", sa.String(40), nullable=False),
        # Telegram user ids exceed 32 bits (up to 52 significant bits, per the Bot API).
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("bound_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name="fk_miniapp_bindings_invoice_id_invoices"),
        sa.PrimaryKeyConstraint("invoice_id", name="pk_miniapp_bindings"),
    )
    op.create_index("ix_miniapp_bindings_user_bound", "miniapp_bindings",
                    ["telegram_user_id", "bound_at"])


def downgrade() -> None:
    op.drop_index("ix_miniapp_bindings_user_bound", table_name="miniapp_bindings")
    op.drop_table("miniapp_bindings")
