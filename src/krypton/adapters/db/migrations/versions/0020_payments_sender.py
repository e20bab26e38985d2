"""payments remember the payer's address; a signer transfer keeps the comment it carries;
a confirmed payout's bounce watch

Revision ID: 0020
Revises: 0019

payments.sender: the address the money came from (TON: the source wallet; USDT on TON: the
jetton's original sender, not its jetton wallet; Tron: `from`), null for payments stored
before this column (refunds then ask the chain). signer_transfers.comment: a supplier's
payment comment, stored with the request so that a re-signed external carries it again.
payouts.bounce_check_at: when a confirmed payout that could bounce is next asked of the
signer (null: not watched), indexed with the status for the tracker's "due checks" query
(status = confirmed and bounce_check_at <= now, in bounce_check_at order: one index range);
payouts.bounce_checks: how many of those checks were answered (the backoff's step). Payouts
confirmed before this revision are not watched (none were: the watch comes with it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender", sa.String(128), nullable=True))
    with op.batch_alter_table("signer_transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("comment", sa.String(200), nullable=True))
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bounce_check_at", TS, nullable=True))
        batch_op.add_column(sa.Column("bounce_checks", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.create_index("ix_payouts_status_bounce_check_at", ["status", "bounce_check_at"])


def downgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_index("ix_payouts_status_bounce_check_at")
        batch_op.drop_column("bounce_checks")
        batch_op.drop_column("bounce_check_at")
    with op.batch_alter_table("signer_transfers", schema=None) as batch_op:
        batch_op.drop_column("comment")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("sender")
