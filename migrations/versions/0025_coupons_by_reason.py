"""coupons.reason is indexed: a campaign's results read its own coupons (reason
campaign:<key>), not every coupon the shop ever gave

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 21:30:00
"""

from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_coupons_reason', 'coupons', ['reason'])


def downgrade() -> None:
    op.drop_index('ix_coupons_reason', table_name='coupons')
