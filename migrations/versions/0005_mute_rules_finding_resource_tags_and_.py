"""mute rules, finding resource tags and mute state, seen-at indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 00:01:43.827258
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base  # noqa: F401  (custom column types)


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mute_rules',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('finding_uid', sa.String(length=64), nullable=True),
    sa.Column('check_id', sa.String(length=128), nullable=True),
    sa.Column('aws_account_id', sa.Uuid(), nullable=True),
    sa.Column('region', sa.String(length=32), nullable=True),
    sa.Column('resource_pattern', sa.String(length=1024), nullable=True),
    sa.Column('tag_key', sa.String(length=128), nullable=True),
    sa.Column('tag_value', sa.String(length=256), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=320), nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('expires_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=320), nullable=True),
    sa.Column('end_reason', sa.String(length=16), nullable=True),
    sa.Column('selectors', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['aws_account_id'], ['aws_accounts.id'], name=op.f('fk_mute_rules_aws_account_id_aws_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_mute_rules_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mute_rules'))
    )
    op.create_index('ix_mute_rules_workspace_ended', 'mute_rules', ['workspace_id', 'ended_at'], unique=False)
    # Batch mode: SQLite cannot add a foreign key in place (on PostgreSQL these are plain ALTERs).
    with op.batch_alter_table('findings') as batch:
        batch.add_column(sa.Column('resource_tags', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch.add_column(sa.Column('mute_rule_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('muted_until', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch.create_foreign_key(op.f('fk_findings_mute_rule_id_mute_rules'), 'mute_rules', ['mute_rule_id'], ['id'],
                                 ondelete='SET NULL')
    with op.batch_alter_table('findings') as batch:
        # The default only filled the rows already there; new rows get theirs from the application.
        batch.alter_column('resource_tags', server_default=None, existing_type=sa.JSON(), existing_nullable=False)
    op.create_index('ix_findings_workspace_first_seen', 'findings', ['workspace_id', 'first_seen_at', 'id'], unique=False)
    op.create_index('ix_findings_workspace_last_seen', 'findings', ['workspace_id', 'last_seen_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_findings_workspace_last_seen', table_name='findings')
    op.drop_index('ix_findings_workspace_first_seen', table_name='findings')
    with op.batch_alter_table('findings') as batch:
        batch.drop_constraint(op.f('fk_findings_mute_rule_id_mute_rules'), type_='foreignkey')
        batch.drop_column('muted_until')
        batch.drop_column('mute_rule_id')
        batch.drop_column('resource_tags')
    op.drop_index('ix_mute_rules_workspace_ended', table_name='mute_rules')
    op.drop_table('mute_rules')
