"""a staff void is recorded on the redemption (voided_at, voided_by), not a delete

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

LIVE = sa.text("voided_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voided_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('voided_by', sa.String(length=64), nullable=True))
        batch_op.drop_constraint('uq_redemptions_coupon_id', type_='unique')
        batch_op.create_index('uq_redemptions_live_coupon', ['coupon_id'], unique=True,
                              sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade() -> None:
    # voided rows have no place in the old schema, where a void deleted the redemption
    op.execute("DELETE FROM redemptions WHERE voided_at IS NOT NULL")
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_index('uq_redemptions_live_coupon')
        batch_op.create_unique_constraint('uq_redemptions_coupon_id', ['coupon_id'])
        batch_op.drop_column('voided_by')
        batch_op.drop_column('voided_at')
