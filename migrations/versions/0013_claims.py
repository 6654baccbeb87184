"""claim codes: orders recorded without their customer until the customer takes the code

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('claims',
    sa.Column('id', ID, nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('purchase_id', ID, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('staff_id', ID, nullable=True),
    sa.Column('api_token_id', ID, nullable=True),
    sa.Column('reserved_for', ID, nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_by', ID, nullable=True),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'claimed', 'cancelled')",
                       name=op.f('ck_claims_status_known')),
    sa.ForeignKeyConstraint(['api_token_id'], ['api_tokens.id'],
                            name=op.f('fk_claims_api_token_id_api_tokens')),
    sa.ForeignKeyConstraint(['claimed_by'], ['members.id'],
                            name=op.f('fk_claims_claimed_by_members')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'],
                            name=op.f('fk_claims_purchase_id_purchases')),
    sa.ForeignKeyConstraint(['reserved_for'], ['members.id'],
                            name=op.f('fk_claims_reserved_for_members')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_claims_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claims')),
    sa.UniqueConstraint('code', name=op.f('uq_claims_code')),
    sa.UniqueConstraint('purchase_id', name=op.f('uq_claims_purchase_id')),
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        for column in ('api_token_id', 'claimed_by', 'reserved_for', 'staff_id'):
            batch_op.create_index(batch_op.f(f'ix_claims_{column}'), [column], unique=False)
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.alter_column('member_id', existing_type=ID, nullable=True)
    with op.batch_alter_table('pending_actions', schema=None) as batch_op:
        batch_op.alter_column('member_id', existing_type=ID, nullable=True)


def downgrade() -> None:
    # Orders still waiting for their customer have nobody to belong to: they go with the codes.
    op.execute("DELETE FROM refunds WHERE purchase_id IN "
               "(SELECT id FROM purchases WHERE member_id IS NULL)")
    op.execute("DELETE FROM claims")
    op.execute("UPDATE redemptions SET purchase_id = NULL WHERE purchase_id IN "
               "(SELECT id FROM purchases WHERE member_id IS NULL)")
    op.execute("DELETE FROM purchases WHERE member_id IS NULL")
    op.execute("DELETE FROM pending_actions WHERE member_id IS NULL")
    with op.batch_alter_table('pending_actions', schema=None) as batch_op:
        batch_op.alter_column('member_id', existing_type=ID, nullable=False)
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.alter_column('member_id', existing_type=ID, nullable=False)
    op.drop_table('claims')
