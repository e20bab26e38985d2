"""Stars money: refunds, subscriptions and reconciliation reports

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure", sa.String(500)),
        sa.Column("from_held", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("settlement_id", sa.String(40)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name="fk_refunds_merchant_id_merchants"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name="fk_refunds_invoice_id_invoices"),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"],
                                name="fk_refunds_payment_id_payments"),
        sa.PrimaryKeyConstraint("id", name="pk_refunds"),
        sa.UniqueConstraint("merchant_id", "idempotency_key", name="uq_refunds_merchant_id"),
    )
    op.create_index("ix_refunds_invoice_id", "refunds", ["invoice_id"])
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"])
    op.create_index("ix_refunds_status_created", "refunds", ["status", "created_at"])
    op.create_table(
        "stars_charges",
        sa.Column("charge_id", sa.String(128), nullable=False),
        sa.Column("payer_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("charge_id", name="pk_stars_charges"),
    )
    op.create_table(
        "stars_subscriptions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payer_id", sa.BigInteger()),
        sa.Column("expires_at", TS),
        sa.Column("renewals", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name="fk_stars_subscriptions_merchant_id_merchants"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name="fk_stars_subscriptions_invoice_id_invoices"),
        sa.PrimaryKeyConstraint("id", name="pk_stars_subscriptions"),
        sa.UniqueConstraint("invoice_id", name="uq_stars_subscriptions_invoice_id"),
    )
    op.create_table(
        "stars_renewals",
        sa.Column("charge_id", sa.String(128), nullable=False),
        sa.Column("subscription_id", sa.String(40), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("renewed_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["stars_subscriptions.id"],
                                name="fk_stars_renewals_subscription_id_stars_subscriptions"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name="fk_stars_renewals_invoice_id_invoices"),
        sa.PrimaryKeyConstraint("charge_id", name="pk_stars_renewals"),
    )
    op.create_index("ix_stars_renewals_subscription_id", "stars_renewals", ["subscription_id"])
    op.create_table(
        "stars_reconciliations",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("transactions", sa.Integer(), nullable=False),
        sa.Column("differences", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stars_reconciliations"),
    )
    op.create_index("ix_stars_reconciliations_created_at", "stars_reconciliations",
                    ["created_at"])


def downgrade() -> None:
    op.drop_table("stars_reconciliations")
    op.drop_table("stars_renewals")
    op.drop_table("stars_subscriptions")
    op.drop_table("stars_charges")
    op.drop_table("refunds")
