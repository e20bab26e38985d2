"""signer: the hot wallet's outbox and the signature audit log

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)
Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signer_transfers",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("request_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(100), nullable=False),
        sa.Column("destination_kind", sa.String(32), nullable=False),
        sa.Column("ledger_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("wallet", sa.String(70), nullable=False),
        sa.Column("seqno", sa.BigInteger(), nullable=False),
        sa.Column("message_hash", sa.String(44), nullable=False),
        sa.Column("boc", sa.Text(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(44)),
        sa.Column("failure", sa.String(500)),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signer_transfers"),
        sa.UniqueConstraint("request_id", name="uq_signer_transfers_request_id"),
        sa.UniqueConstraint("ledger_entry_id", name="uq_signer_transfers_ledger_entry_id"),
    )
    op.create_index("ix_signer_transfers_message_hash", "signer_transfers", ["message_hash"])
    op.create_index("ix_signer_transfers_status", "signer_transfers", ["status"])
    op.create_table(
        "signer_audit",
        sa.Column("id", Serial, autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("wallet", sa.String(70), nullable=False),
        sa.Column("seqno", sa.BigInteger(), nullable=False),
        sa.Column("message_hash", sa.String(44), nullable=False),
        sa.Column("signed_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["transfer_id"], ["signer_transfers.id"],
                                name="fk_signer_audit_transfer_id_signer_transfers"),
        sa.PrimaryKeyConstraint("id", name="pk_signer_audit"),
    )
    op.create_index("ix_signer_audit_transfer_id", "signer_audit", ["transfer_id"])


def downgrade() -> None:
    op.drop_index("ix_signer_audit_transfer_id", table_name="signer_audit")
    op.drop_table("signer_audit")
    op.drop_index("ix_signer_transfers_status", table_name="signer_transfers")
    op.drop_index("ix_signer_transfers_message_hash", table_name="signer_transfers")
    op.drop_table("signer_transfers")
