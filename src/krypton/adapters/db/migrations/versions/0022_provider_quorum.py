"""chain providers' agreement: no schema change

Provider demotion (adapters/chains/quorum.py) is kept in the chain watcher's memory on
purpose: it protects liveness, not money (one provider alone never makes a transfer final,
whatever its standing), and a provider that still lies after a restart is demoted again
after a few disagreements. Across processes its state reaches /healthz through the provider
health reports (`provider_health`, a "<api>-quorum" row), which need no new column.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # nothing to store: see the docstring


def downgrade() -> None:
    pass
