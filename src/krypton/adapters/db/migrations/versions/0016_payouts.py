"""payouts: merchants' withdrawals and the platform's fee sweeps

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(100), nullable=False),
        sa.Column("description", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_hash", sa.String(44)),
        sa.Column("tx_hash", sa.String(44)),
        sa.Column("network_fee", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failure", sa.String(500)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name="fk_payouts_merchant_id_merchants"),
        sa.PrimaryKeyConstraint("id", name="pk_payouts"),
        sa.UniqueConstraint("merchant_id", "idempotency_key", name="uq_payouts_merchant_id"),
    )
    op.create_index("ix_payouts_merchant_id_created_at", "payouts", ["merchant_id", "created_at"])
    op.create_index("ix_payouts_status_created_at", "payouts", ["status", "created_at"])
    op.create_table(
        "fee_sweeps",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(100)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure", sa.String(500)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fee_sweeps"),
    )
    op.create_index("ix_fee_sweeps_status", "fee_sweeps", ["status"])


def downgrade() -> None:
    op.drop_index("ix_fee_sweeps_status", table_name="fee_sweeps")
    op.drop_table("fee_sweeps")
    op.drop_index("ix_payouts_status_created_at", table_name="payouts")
    op.drop_index("ix_payouts_merchant_id_created_at", table_name="payouts")
    op.drop_table("payouts")
