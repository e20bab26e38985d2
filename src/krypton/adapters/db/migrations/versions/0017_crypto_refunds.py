"""crypto refunds: claim links and chain refunds

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crypto_refunds",
        sa.Column("refund_id", sa.String(40), nullable=False),
        sa.Column("target", sa.String(8), nullable=False),
        sa.Column("destination", sa.String(100)),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("claim_nonce", sa.String(64)),
        sa.Column("claim_expires_at", TS),
        sa.Column("claimed_at", TS),
        sa.Column("ledger_entry_id", sa.BigInteger()),
        sa.Column("signer_request_id", sa.String(100)),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["refund_id"], ["refunds.id"],
                                name="fk_crypto_refunds_refund_id_refunds"),
        sa.PrimaryKeyConstraint("refund_id", name="pk_crypto_refunds"),
        sa.UniqueConstraint("signer_request_id", name="uq_crypto_refunds_signer_request_id"),
    )


def downgrade() -> None:
    op.drop_table("crypto_refunds")
