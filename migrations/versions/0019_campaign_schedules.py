"""campaign schedules and the owner's alerts: campaigns.scheduled_at, job runs that failed,
webhook failures, and the console account's own LINE chat

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduled_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_failed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
    op.create_table('webhook_failures',
                    sa.Column('id', ID, nullable=False),
                    sa.Column('at', sa.DateTime(), nullable=False),
                    sa.Column('reason', sa.String(length=200), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_failures')))
    with op.batch_alter_table('webhook_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_failures_at'), ['at'], unique=False)
    with op.batch_alter_table('console_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('line_member_id', ID, nullable=True))
        batch_op.add_column(sa.Column('line_link_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('line_link_expires_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_console_accounts_line_member_id'),
                              ['line_member_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_console_accounts_line_link_code'),
                                          ['line_link_code'])
        batch_op.create_foreign_key(batch_op.f('fk_console_accounts_line_member_id_members'),
                                    'members', ['line_member_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('console_accounts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_console_accounts_line_member_id_members'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_console_accounts_line_link_code'),
                                 type_='unique')
        batch_op.drop_index(batch_op.f('ix_console_accounts_line_member_id'))
        batch_op.drop_column('line_link_expires_at')
        batch_op.drop_column('line_link_code')
        batch_op.drop_column('line_member_id')
    with op.batch_alter_table('webhook_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_failures_at'))
    op.drop_table('webhook_failures')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('last_failed_at')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('scheduled_at')
