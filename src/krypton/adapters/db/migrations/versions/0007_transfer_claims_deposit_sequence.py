"""transfer_claims (one decision per transfer key); on PostgreSQL the Tron deposit index
becomes a sequence instead of a counter row locked until COMMIT

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COUNTER = "tron_deposit_index"


def upgrade() -> None:
    op.create_table(
        "transfer_claims",
        sa.Column("chain", sa.String(16), nullable=False),
        sa.Column("tx_id", sa.String(128), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("chain", "tx_id", "tx_index", name="pk_transfer_claims"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps its counter row: it has one writer anyway
    # The sequence goes on from the counter's value, so no index is handed out twice; the
    # row goes, so nothing can take an index from it by mistake.
    op.execute(f"CREATE SEQUENCE {COUNTER} MINVALUE 0 START WITH 0")
    op.execute(f"SELECT setval('{COUNTER}', value + 1, false) FROM counters "
               f"WHERE name = '{COUNTER}'")
    op.execute(f"DELETE FROM counters WHERE name = '{COUNTER}'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The row resumes where the sequence stands (the last value it may have handed out).
        op.execute(f"INSERT INTO counters (name, value) SELECT '{COUNTER}', "
                   f"CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {COUNTER}")
        op.execute(f"DROP SEQUENCE {COUNTER}")
    op.drop_table("transfer_claims")
