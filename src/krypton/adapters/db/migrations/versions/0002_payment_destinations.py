"""payment destinations: invoice memo/addresses, merchant TON address, counters, chain cursors

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merchants") as batch:
        batch.add_column(sa.Column("ton_address", sa.String(80), nullable=True))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("ton_address", sa.String(80), nullable=True))
        batch.add_column(sa.Column("tron_address", sa.String(40), nullable=True))
        batch.add_column(sa.Column("tron_index", sa.BigInteger(), nullable=True))
        batch.create_unique_constraint("uq_invoices_tron_address", ["tron_address"])
        batch.create_unique_constraint("uq_invoices_tron_index", ["tron_index"])
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    # The first deposit address handed out is index 0.
    op.bulk_insert(counters, [{"name": "tron_deposit_index", "value": -1}])
    op.create_table(
        "chain_cursors",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.String(400), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_chain_cursors"),
    )


def downgrade() -> None:
    op.drop_table("chain_cursors")
    op.drop_table("counters")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("uq_invoices_tron_index", type_="unique")
        batch.drop_constraint("uq_invoices_tron_address", type_="unique")
        batch.drop_column("tron_index")
        batch.drop_column("tron_address")
        batch.drop_column("ton_address")
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("ton_address")
