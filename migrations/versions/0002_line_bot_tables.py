"""line bot tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:03:09.992978
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('processed_events',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_processed_events'))
    )
    op.create_table('staff_invites',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_by', sa.String(length=64), nullable=True),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_invites')),
    sa.UniqueConstraint('code', name=op.f('uq_staff_invites_code'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('line_user_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('retry_key', sa.String(length=36), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('first_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name=op.f('ck_outbox_status_known')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_outbox_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_dedupe_key')),
    sa.UniqueConstraint('retry_key', name=op.f('uq_outbox_retry_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_outbox_status_id', ['status', 'id'], unique=False)

    op.create_table('pending_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_pending_actions_member_id_members')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_pending_actions_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_actions')),
    sa.UniqueConstraint('token', name=op.f('uq_pending_actions_token'))
    )
    with op.batch_alter_table('pending_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_actions_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_actions_staff_id'), ['staff_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('pending_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_actions_staff_id'))
        batch_op.drop_index(batch_op.f('ix_pending_actions_member_id'))

    op.drop_table('pending_actions')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_id')
        batch_op.drop_index(batch_op.f('ix_outbox_member_id'))

    op.drop_table('outbox')
    op.drop_table('staff_invites')
    op.drop_table('processed_events')

