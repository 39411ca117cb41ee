"""findings lifecycle: per-scan verdicts (scan_findings) and status transitions (finding_events)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 22:50:45.882220
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base  # noqa: F401  (custom column types)


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('finding_events',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('finding_id', sa.Uuid(), nullable=False),
    sa.Column('scan_id', sa.Uuid(), nullable=True),
    sa.Column('delta', sa.Enum('new', 'unchanged', 'changed', 'resolved', 'reopened', name='finding_delta', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('from_status', sa.String(length=8), nullable=True),
    sa.Column('to_status', sa.String(length=8), nullable=True),
    sa.Column('at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], name=op.f('fk_finding_events_finding_id_findings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scan_id'], ['scan_runs.id'], name=op.f('fk_finding_events_scan_id_scan_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_finding_events_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finding_events')),
    sa.UniqueConstraint('finding_id', 'scan_id', name='uq_finding_events_finding_scan')
    )
    op.create_index('ix_finding_events_scan_id', 'finding_events', ['scan_id'], unique=False)
    op.create_table('scan_findings',
    sa.Column('scan_id', sa.Uuid(), nullable=False),
    sa.Column('finding_id', sa.Uuid(), nullable=False),
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=True),
    sa.Column('previous_status', sa.String(length=8), nullable=True),
    sa.Column('delta', sa.Enum('new', 'unchanged', 'changed', 'resolved', 'reopened', name='finding_delta', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], name=op.f('fk_scan_findings_finding_id_findings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scan_id'], ['scan_runs.id'], name=op.f('fk_scan_findings_scan_id_scan_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_scan_findings_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('scan_id', 'finding_id', name=op.f('pk_scan_findings'))
    )
    op.create_index('ix_scan_findings_finding_id', 'scan_findings', ['finding_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_scan_findings_finding_id', table_name='scan_findings')
    op.drop_table('scan_findings')
    op.drop_index('ix_finding_events_scan_id', table_name='finding_events')
    op.drop_table('finding_events')
