"""outbox: combined pushes (push_key), notices held for a free reply (hold_until), how each
was sent (via), dropped notices; send_holds for LINE's monthly limit

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table('send_holds',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('until', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_send_holds'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('push_key', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('hold_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('via', sa.String(length=16), nullable=True))
        batch_op.drop_constraint(op.f('ck_outbox_status_known'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_outbox_status_known'),
            "status IN ('pending', 'sent', 'failed', 'skipped', 'dropped')")
        batch_op.create_index('ix_outbox_pending_user', ['line_user_id'], unique=False,
                              sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.create_index('ix_outbox_push_key', ['push_key'], unique=False)
    # a pending row goes out alone under its own retry key, as before: the code before this
    # one may have pushed it already (it records an attempt only after LINE answers), and
    # only that key makes a resend safe
    op.execute("UPDATE outbox SET push_key = retry_key "
               "WHERE status = 'pending' AND batch_id IS NULL")
    op.execute("UPDATE outbox SET via = CASE WHEN batch_id IS NULL THEN 'push' "
               "ELSE 'multicast' END WHERE status = 'sent'")


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE status = 'dropped'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_push_key')
        batch_op.drop_index('ix_outbox_pending_user')
        batch_op.drop_constraint(op.f('ck_outbox_status_known'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_outbox_status_known'), "status IN ('pending', 'sent', 'failed', 'skipped')")
        batch_op.drop_column('via')
        batch_op.drop_column('hold_until')
        batch_op.drop_column('push_key')
    op.drop_table('send_holds')
