"""multicast batches

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:42:56.688227
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_batches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('retry_key', sa.String(length=36), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('first_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f('ck_outbox_batches_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_batches')),
    sa.UniqueConstraint('retry_key', name=op.f('uq_outbox_batches_retry_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_batch_id'), ['batch_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_batch_id_outbox_batches'), 'outbox_batches', ['batch_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_batch_id_outbox_batches'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_batch_id'))
        batch_op.drop_column('batch_id')

    op.drop_table('outbox_batches')

