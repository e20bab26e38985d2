"""provider health: each provider endpoint's latest stats, reported by the chain job's process

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_health",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("success_bps", sa.Integer()),
        sa.Column("latency_ms", sa.Integer()),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("throttled", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_error_age_s", sa.Integer()),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("process", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_provider_health"),
    )


def downgrade() -> None:
    op.drop_table("provider_health")
