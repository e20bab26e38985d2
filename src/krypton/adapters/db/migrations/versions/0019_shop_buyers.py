"""the Stars shop's buyers: sign-in proofs and sessions

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_proof_payloads",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_shop_proof_payloads"),
    )
    op.create_index("ix_shop_proof_payloads_expires_at", "shop_proof_payloads", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_shop_proof_payloads_expires_at", table_name="shop_proof_payloads")
    op.drop_table("shop_proof_payloads")
