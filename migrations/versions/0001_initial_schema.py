"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 08:18:57.555973
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('coupon_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('total_cap', sa.Integer(), nullable=True),
    sa.Column('issued_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_templates')),
    sa.UniqueConstraint('key', name=op.f('uq_coupon_templates_key'))
    )
    op.create_table('members',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_user_id', sa.String(length=64), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('external_id', sa.String(length=128), nullable=True),
    sa.Column('member_code', sa.String(length=16), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('birthday_set_at', sa.DateTime(), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=False),
    sa.Column('tier_since', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('points_balance', sa.Integer(), nullable=False),
    sa.Column('welcome_given_at', sa.DateTime(), nullable=True),
    sa.Column('joined_at', sa.DateTime(), nullable=False),
    sa.Column('last_activity_at', sa.DateTime(), nullable=False),
    sa.Column('last_purchase_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'blocked')", name=op.f('ck_members_status_known')),
    sa.CheckConstraint('points_balance >= 0', name=op.f('ck_members_balance_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('external_id', name=op.f('uq_members_external_id')),
    sa.UniqueConstraint('line_user_id', name=op.f('uq_members_line_user_id')),
    sa.UniqueConstraint('member_code', name=op.f('uq_members_member_code')),
    sa.UniqueConstraint('phone', name=op.f('uq_members_phone'))
    )
    op.create_table('staff',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_user_id', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('line_user_id', name=op.f('uq_staff_line_user_id'))
    )
    op.create_table('tags',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tags')),
    sa.UniqueConstraint('name', name=op.f('uq_tags_name'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('points_delta', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_audit_log_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_member_at', ['member_id', 'at'], unique=False)

    op.create_table('coupons',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('template_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('valid_from', sa.DateTime(), nullable=False),
    sa.Column('valid_until', sa.DateTime(), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('issue_key', sa.String(length=128), nullable=True),
    sa.Column('redeemed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('issued', 'redeemed', 'expired', 'void')", name=op.f('ck_coupons_status_known')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_coupons_member_id_members')),
    sa.ForeignKeyConstraint(['template_id'], ['coupon_templates.id'], name=op.f('fk_coupons_template_id_coupon_templates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code')),
    sa.UniqueConstraint('issue_key', name=op.f('uq_coupons_issue_key'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_coupons_status_valid_until', ['status', 'valid_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupons_template_id'), ['template_id'], unique=False)

    op.create_table('member_tags',
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tagged_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_tags_member_id_members')),
    sa.ForeignKeyConstraint(['tag_id'], ['tags.id'], name=op.f('fk_member_tags_tag_id_tags')),
    sa.PrimaryKeyConstraint('member_id', 'tag_id', name=op.f('pk_member_tags'))
    )
    op.create_table('purchases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('external_order_id', sa.String(length=128), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('points_earned', sa.Integer(), nullable=False),
    sa.Column('stamps_earned', sa.Integer(), nullable=False),
    sa.Column('refunded_amount', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_purchases_amount_not_negative')),
    sa.CheckConstraint('refunded_amount >= 0 AND refunded_amount <= amount', name=op.f('ck_purchases_refund_within_amount')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_purchases_member_id_members')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_purchases_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchases')),
    sa.UniqueConstraint('source', 'external_order_id', name='uq_purchases_source_order')
    )
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.create_index('ix_purchases_member_created', ['member_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchases_staff_id'), ['staff_id'], unique=False)

    op.create_table('stamp_cards',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('goal', sa.Integer(), nullable=False),
    sa.Column('stamps', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'completed', 'expired')", name=op.f('ck_stamp_cards_status_known')),
    sa.CheckConstraint('stamps >= 0 AND stamps <= goal', name=op.f('ck_stamp_cards_stamps_within_goal')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_stamp_cards_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stamp_cards'))
    )
    with op.batch_alter_table('stamp_cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stamp_cards_member_id'), ['member_id'], unique=False)

    op.create_table('redemptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coupon_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('purchase_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('order_amount', sa.Integer(), nullable=True),
    sa.Column('discount', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('redeemed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_redemptions_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_redemptions_member_id_members')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_redemptions_purchase_id_purchases')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_redemptions_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemptions')),
    sa.UniqueConstraint('coupon_id', name=op.f('uq_redemptions_coupon_id'))
    )
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_redemptions_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_redemptions_purchase_id'), ['purchase_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_redemptions_staff_id'), ['staff_id'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('purchase_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('refund_id', sa.String(length=128), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('points_reversed', sa.Integer(), nullable=False),
    sa.Column('points_unrecovered', sa.Integer(), nullable=False),
    sa.Column('stamps_reversed', sa.Integer(), nullable=False),
    sa.Column('stamps_unrecovered', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_refunds_purchase_id_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('source', 'refund_id', name='uq_refunds_source_refund')
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_purchase_id'), ['purchase_id'], unique=False)

    op.create_table('stamps',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('purchase_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('local_day', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('count <> 0', name=op.f('ck_stamps_count_not_zero')),
    sa.ForeignKeyConstraint(['card_id'], ['stamp_cards.id'], name=op.f('fk_stamps_card_id_stamp_cards')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_stamps_member_id_members')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_stamps_purchase_id_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stamps'))
    )
    with op.batch_alter_table('stamps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stamps_card_id'), ['card_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stamps_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stamps_purchase_id'), ['purchase_id'], unique=False)

    op.create_table('point_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('purchase_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('refund_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('coupon_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.CheckConstraint("kind IN ('earn', 'spend', 'expire', 'reverse', 'adjust')", name=op.f('ck_point_entries_kind_known')),
    sa.CheckConstraint('points <> 0', name=op.f('ck_point_entries_points_not_zero')),
    sa.CheckConstraint('remaining IS NULL OR (remaining >= 0 AND remaining <= points)', name=op.f('ck_point_entries_remaining_within_lot')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_point_entries_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_point_entries_member_id_members')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_point_entries_purchase_id_purchases')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_point_entries_refund_id_refunds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_entries'))
    )
    with op.batch_alter_table('point_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_point_entries_coupon_id'), ['coupon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_point_entries_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_point_entries_open_lots', ['member_id', 'expires_at'], unique=False, postgresql_where=sa.text('remaining > 0'), sqlite_where=sa.text('remaining > 0'))
        batch_op.create_index(batch_op.f('ix_point_entries_purchase_id'), ['purchase_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_point_entries_refund_id'), ['refund_id'], unique=False)

    op.create_table('point_draws',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.CheckConstraint('points > 0', name=op.f('ck_point_draws_points_positive')),
    sa.ForeignKeyConstraint(['entry_id'], ['point_entries.id'], name=op.f('fk_point_draws_entry_id_point_entries')),
    sa.ForeignKeyConstraint(['lot_id'], ['point_entries.id'], name=op.f('fk_point_draws_lot_id_point_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_draws'))
    )
    with op.batch_alter_table('point_draws', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_point_draws_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_point_draws_lot_id'), ['lot_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('point_draws', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_point_draws_lot_id'))
        batch_op.drop_index(batch_op.f('ix_point_draws_entry_id'))

    op.drop_table('point_draws')
    with op.batch_alter_table('point_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_point_entries_refund_id'))
        batch_op.drop_index(batch_op.f('ix_point_entries_purchase_id'))
        batch_op.drop_index('ix_point_entries_open_lots', postgresql_where=sa.text('remaining > 0'), sqlite_where=sa.text('remaining > 0'))
        batch_op.drop_index(batch_op.f('ix_point_entries_member_id'))
        batch_op.drop_index(batch_op.f('ix_point_entries_coupon_id'))

    op.drop_table('point_entries')
    with op.batch_alter_table('stamps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stamps_purchase_id'))
        batch_op.drop_index(batch_op.f('ix_stamps_member_id'))
        batch_op.drop_index(batch_op.f('ix_stamps_card_id'))

    op.drop_table('stamps')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_purchase_id'))

    op.drop_table('refunds')
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_redemptions_staff_id'))
        batch_op.drop_index(batch_op.f('ix_redemptions_purchase_id'))
        batch_op.drop_index(batch_op.f('ix_redemptions_member_id'))

    op.drop_table('redemptions')
    with op.batch_alter_table('stamp_cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stamp_cards_member_id'))

    op.drop_table('stamp_cards')
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchases_staff_id'))
        batch_op.drop_index('ix_purchases_member_created')

    op.drop_table('purchases')
    op.drop_table('member_tags')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_template_id'))
        batch_op.drop_index('ix_coupons_status_valid_until')
        batch_op.drop_index(batch_op.f('ix_coupons_member_id'))

    op.drop_table('coupons')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_member_at')

    op.drop_table('audit_log')
    op.drop_table('tags')
    op.drop_table('staff')
    op.drop_table('members')
    op.drop_table('coupon_templates')

