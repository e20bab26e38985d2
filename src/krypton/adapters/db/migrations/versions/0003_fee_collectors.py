"""fee collectors: per-merchant contracts, invoice/merchant collector address, on-chain settlement parts

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fee_collectors",
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("address", sa.String(80), nullable=False),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("destination", sa.String(80), nullable=False),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("min_withdrawal", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name="fk_fee_collectors_merchant_id_merchants"),
        sa.PrimaryKeyConstraint("merchant_id", name="pk_fee_collectors"),
        sa.UniqueConstraint("address", name="uq_fee_collectors_address"),
    )
    with op.batch_alter_table("merchants") as batch:
        batch.add_column(sa.Column("ton_collector", sa.String(80), nullable=True))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("ton_collector", sa.String(80), nullable=True))
    with op.batch_alter_table("settlements") as batch:
        batch.add_column(sa.Column("forwarded", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("collector_fee", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("collector_address", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.drop_column("collector_address")
        batch.drop_column("collector_fee")
        batch.drop_column("forwarded")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("ton_collector")
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("ton_collector")
    op.drop_table("fee_collectors")
