"""findings severity rank and mute rule indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 00:44:10.421397
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base  # noqa: F401  (custom column types)


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('findings', sa.Column('severity_rank', sa.SmallInteger(), nullable=False,
                                        server_default=sa.text('-1')))
    # Existing rows: the ranks of app.checks.base.Severity (informational 0 ... critical 4), -1 for anything else.
    op.execute("UPDATE findings SET severity_rank = CASE severity WHEN 'informational' THEN 0 WHEN 'low' THEN 1 "
               "WHEN 'medium' THEN 2 WHEN 'high' THEN 3 WHEN 'critical' THEN 4 ELSE -1 END")
    with op.batch_alter_table('findings') as batch:
        # New rows get theirs from the application.
        batch.alter_column('severity_rank', server_default=None, existing_type=sa.SmallInteger(),
                           existing_nullable=False)
    op.create_index('ix_findings_workspace_mute_rule', 'findings', ['workspace_id', 'mute_rule_id'], unique=False)
    op.create_index('ix_findings_workspace_severity_rank', 'findings', ['workspace_id', 'severity_rank', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_findings_workspace_severity_rank', table_name='findings')
    op.drop_index('ix_findings_workspace_mute_rule', table_name='findings')
    op.drop_column('findings', 'severity_rank')
