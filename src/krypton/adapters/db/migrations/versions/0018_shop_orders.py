"""the Stars shop: orders and their supplier purchases

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_orders",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("buyer", sa.String(100)),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("invoice_id", sa.String(40)),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("supplier", sa.String(32), nullable=False),
        sa.Column("supplier_ref", sa.String(100)),
        sa.Column("supplier_request", sa.String(100)),
        sa.Column("supplier_amount", sa.BigInteger()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("payer_address", sa.String(100)),
        sa.Column("refund_amount", sa.BigInteger()),
        sa.Column("refund_request", sa.String(100)),
        sa.Column("refund_tx", sa.String(100)),
        sa.Column("failure", sa.String(500)),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("paid_at", TS),
        sa.Column("deadline_at", TS),
        sa.Column("next_attempt_at", TS),
        sa.Column("delivered_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_shop_orders"),
        sa.UniqueConstraint("invoice_id", name="uq_shop_orders_invoice_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_shop_orders_idempotency_key"),
    )
    op.create_index("ix_shop_orders_buyer", "shop_orders", ["buyer"])
    op.create_index("ix_shop_orders_status", "shop_orders", ["status"])
    op.create_index("ix_shop_orders_next_attempt_at", "shop_orders", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_shop_orders_next_attempt_at", table_name="shop_orders")
    op.drop_index("ix_shop_orders_status", table_name="shop_orders")
    op.drop_index("ix_shop_orders_buyer", table_name="shop_orders")
    op.drop_table("shop_orders")
