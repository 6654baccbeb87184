"""console: daily figures kept by the clock, instead of one period's snapshot; short names

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 09:00:00

The dashboard composes any period from per-day figures (bot.loyalty.daily); the indexes
on the source tables' times let the clock job re-count only the days and members that
changed since its last run.

On PostgreSQL, names of one or two characters (a Chinese given name) hold no trigram for
the pg_trgm index of 0015, so such a search read the whole members table. A GIN index on
each name's characters and pairs of characters (lower case), `name_grams(display_name)`,
finds them instead; the search keeps its ILIKE as the exact test.
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
INDEXES = (
    ('ix_members_joined_at', 'members', ['joined_at'], None),
    ('ix_members_not_active', 'members', ['id'], "status <> 'active'"),
    ('ix_purchases_created_at', 'purchases', ['created_at'], None),
    ('ix_refunds_created_at', 'refunds', ['created_at'], None),
    ('ix_stamp_cards_started_at', 'stamp_cards', ['started_at'], None),
    ('ix_stamps_created_at', 'stamps', ['created_at'], None),
    ('ix_coupons_issued_at', 'coupons', ['issued_at'], None),
    ('ix_redemptions_redeemed_at', 'redemptions', ['redeemed_at'], None),
    ('ix_redemptions_voided_at', 'redemptions', ['voided_at'], 'voided_at IS NOT NULL'),
    ('ix_audit_log_at', 'audit_log', ['at'], None),
    ('ix_outbox_sent_at', 'outbox', ['sent_at'], None),
)


GRAMS = 'ix_members_display_name_grams'
GRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION name_grams(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT lower(substr(name, i, n))), '{}')
    FROM generate_series(1, char_length(name)) AS i, (VALUES (1), (2)) AS size(n)
    WHERE i + n - 1 <= char_length(name)
$$"""


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    op.drop_table('dashboard_snapshots')
    op.create_table('daily_figures',
    sa.Column('day', sa.Integer(), nullable=False),
    _count('purchases'),
    sa.Column('revenue', sa.BigInteger(), nullable=False),
    _count('refunded'), _count('unclaimed'), _count('coupons_issued'),
    _count('coupons_redeemed'), _count('billed'),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_daily_figures')))
    op.create_table('daily_joins',
    sa.Column('day', sa.Integer(), nullable=False), _count('joined'), _count('blocked'),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_daily_joins')))
    op.create_table('daily_coupons',
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False), _count('issued'), _count('redeemed'),
    sa.PrimaryKeyConstraint('day', 'template_id', name=op.f('pk_daily_coupons')))
    op.create_table('daily_cards',
    sa.Column('day', sa.Integer(), nullable=False), _count('stamps'), _count('completed'),
    _count('cards'),
    sa.PrimaryKeyConstraint('day', 'stamps', 'completed', name=op.f('pk_daily_cards')))
    op.create_table('member_days',
    sa.Column('member_id', ID, nullable=False),
    sa.Column('day', sa.Integer(), nullable=False), _count('purchases'),
    sa.Column('last_at', sa.DateTime(), nullable=False),
    sa.Column('prev_day', sa.Integer(), nullable=True),
    sa.Column('next_day', sa.Integer(), nullable=True),
    _count('first_day'),
    sa.PrimaryKeyConstraint('member_id', 'day', name=op.f('pk_member_days')))
    for column in ('day', 'first_day'):
        op.create_index(f'ix_member_days_{column}', 'member_days', [column])
    op.create_table('visit_days',
    sa.Column('day', sa.Integer(), nullable=False), _count('visits'), _count('firsts'),
    _count('week_returning'), _count('ones'),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_visit_days')))
    op.create_table('visit_pairs',
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('x_week', sa.Integer(), nullable=False),
    sa.Column('y_week', sa.Integer(), nullable=False), _count('pairs'),
    sa.Column('days', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'x_week', 'y_week', name=op.f('pk_visit_pairs')))
    op.create_table('visit_pair_days',
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('x_day', sa.Integer(), nullable=False),
    sa.Column('y_day', sa.Integer(), nullable=False), _count('pairs'),
    sa.Column('days', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'x_day', 'y_day', name=op.f('pk_visit_pair_days')))
    op.create_index('ix_visit_pair_days_kind_y_day', 'visit_pair_days', ['kind', 'y_day'])
    op.create_table('dormant_days',
    sa.Column('day', sa.Integer(), nullable=False), _count('change'),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_dormant_days')))
    op.create_table('counted_members',
    sa.Column('member_id', ID, nullable=False),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_counted_members')))
    op.create_table('daily_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('computed_at', sa.DateTime(), nullable=False),
    sa.Column('took_ms', sa.Integer(), nullable=False),
    sa.Column('marks', sa.JSON(), nullable=False),
    sa.Column('stock', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_daily_state')))
    for name, table, columns, where in INDEXES:
        partial = {} if where is None else {'sqlite_where': sa.text(where),
                                            'postgresql_where': sa.text(where)}
        op.create_index(name, table, columns, **partial)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(GRAMS_FUNCTION)
        op.execute(f'CREATE INDEX {GRAMS} ON members USING gin (name_grams(display_name))')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP INDEX IF EXISTS {GRAMS}')
        op.execute('DROP FUNCTION IF EXISTS name_grams(text)')
    for name, table, _, _ in INDEXES:
        op.drop_index(name, table_name=table)
    for table in ('daily_state', 'counted_members', 'dormant_days', 'visit_pair_days', 'visit_pairs', 'visit_days', 'member_days',
                  'daily_cards', 'daily_coupons', 'daily_joins', 'daily_figures'):
        op.drop_table(table)
    op.create_table('dashboard_snapshots',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('computed_at', sa.DateTime(), nullable=False),
    sa.Column('took_ms', sa.Integer(), nullable=False),
    sa.Column('current', sa.JSON(), nullable=False),
    sa.Column('previous', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_dashboard_snapshots')))
