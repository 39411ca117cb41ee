"""aws accounts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 21:07:28.597627
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base  # noqa: F401  (custom column types)


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('aws_accounts',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('external_id', sa.String(length=96), nullable=False),
    sa.Column('external_id_expires_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('pending', 'connected', 'degraded', 'revoked', 'disconnected', name='account_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('status_changed_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status_reason', sa.String(length=1000), nullable=True),
    sa.Column('role_arn', sa.String(length=2048), nullable=True),
    sa.Column('partition', sa.String(length=16), nullable=True),
    sa.Column('aws_account_id', sa.String(length=12), nullable=True),
    sa.Column('missing_permissions', sa.JSON(), nullable=False),
    sa.Column('regions', sa.JSON(), nullable=True),
    sa.Column('last_verified_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('connected_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_aws_accounts_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aws_accounts')),
    sa.UniqueConstraint('external_id', name=op.f('uq_aws_accounts_external_id'))
    )
    op.create_index(op.f('ix_aws_accounts_workspace_id'), 'aws_accounts', ['workspace_id'], unique=False)
    op.create_index('uq_aws_accounts_workspace_account_live', 'aws_accounts', ['workspace_id', 'aws_account_id'], unique=True, postgresql_where=sa.text("status <> 'disconnected' AND aws_account_id IS NOT NULL"), sqlite_where=sa.text("status <> 'disconnected' AND aws_account_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index('uq_aws_accounts_workspace_account_live', table_name='aws_accounts', postgresql_where=sa.text("status <> 'disconnected' AND aws_account_id IS NOT NULL"), sqlite_where=sa.text("status <> 'disconnected' AND aws_account_id IS NOT NULL"))
    op.drop_index(op.f('ix_aws_accounts_workspace_id'), table_name='aws_accounts')
    op.drop_table('aws_accounts')
