"""stars links: each invoice's Telegram Stars payment link, created once through the Bot API

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stars_links",
        sa.Column("invoice_id", sa.String(40), nullable=False),
        # createInvoiceLink's answer: https://t.me/$… (Telegram sets no length; kept whole).
        sa.Column("link", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name="fk_stars_links_invoice_id_invoices"),
        sa.PrimaryKeyConstraint("invoice_id", name="pk_stars_links"),
    )


def downgrade() -> None:
    op.drop_table("stars_links")
