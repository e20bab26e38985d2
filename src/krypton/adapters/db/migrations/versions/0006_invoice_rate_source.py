"""invoices: where the USD rates an invoice was priced at came from, and when

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: invoices created before this migration do not know their rates' source.
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("rate_source", sa.String(64)))
        batch.add_column(sa.Column("rate_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("rate_at")
        batch.drop_column("rate_source")
