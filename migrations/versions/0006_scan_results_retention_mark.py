"""scan results retention mark

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 00:07:04.090095
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base  # noqa: F401  (custom column types)


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('scan_runs', sa.Column('results_purged_at', app.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('scan_runs', 'results_purged_at')
