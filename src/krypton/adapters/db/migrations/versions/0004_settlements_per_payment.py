"""settlements: an invoice may have more than one (a payment confirmed after it was settled)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.drop_constraint("uq_settlements_invoice_id", type_="unique")
        batch.create_index("ix_settlements_invoice_id", ["invoice_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.drop_index("ix_settlements_invoice_id")
        batch.create_unique_constraint("uq_settlements_invoice_id", ["invoice_id"])
