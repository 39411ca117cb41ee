"""scan runs and findings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:52:54.857477
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base  # noqa: F401  (custom column types)


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scan_runs',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('aws_account_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled', name='scan_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=320), nullable=True),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=2000), nullable=True),
    sa.Column('regions', sa.JSON(), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('collection_errors', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['aws_account_id'], ['aws_accounts.id'], name=op.f('fk_scan_runs_aws_account_id_aws_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_scan_runs_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_runs'))
    )
    op.create_index('ix_scan_runs_workspace_account', 'scan_runs', ['workspace_id', 'aws_account_id', 'id'], unique=False)
    op.create_index('uq_scan_runs_active_account', 'scan_runs', ['aws_account_id'], unique=True, postgresql_where=sa.text("status IN ('queued', 'running')"), sqlite_where=sa.text("status IN ('queued', 'running')"))
    op.create_table('findings',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('aws_account_id', sa.Uuid(), nullable=False),
    sa.Column('uid', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=512), nullable=True),
    sa.Column('check_id', sa.String(length=128), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('service', sa.String(length=40), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('resource_type', sa.String(length=128), nullable=False),
    sa.Column('resource_id', sa.String(length=1024), nullable=False),
    sa.Column('resource_arn', sa.String(length=2048), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('compliance', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('first_seen_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status_changed_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_scan_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['aws_account_id'], ['aws_accounts.id'], name=op.f('fk_findings_aws_account_id_aws_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['last_scan_id'], ['scan_runs.id'], name=op.f('fk_findings_last_scan_id_scan_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_findings_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_findings')),
    sa.UniqueConstraint('workspace_id', 'uid', name='uq_findings_workspace_uid')
    )
    op.create_index('ix_findings_workspace_account', 'findings', ['workspace_id', 'aws_account_id'], unique=False)
    op.create_index('ix_findings_workspace_check', 'findings', ['workspace_id', 'check_id'], unique=False)
    op.create_index('ix_findings_workspace_status_severity', 'findings', ['workspace_id', 'status', 'severity'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_findings_workspace_status_severity', table_name='findings')
    op.drop_index('ix_findings_workspace_check', table_name='findings')
    op.drop_index('ix_findings_workspace_account', table_name='findings')
    op.drop_table('findings')
    op.drop_index('uq_scan_runs_active_account', table_name='scan_runs', postgresql_where=sa.text("status IN ('queued', 'running')"), sqlite_where=sa.text("status IN ('queued', 'running')"))
    op.drop_index('ix_scan_runs_workspace_account', table_name='scan_runs')
    op.drop_table('scan_runs')
