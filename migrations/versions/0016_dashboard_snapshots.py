"""console dashboard: the report snapshot the dashboard clock job keeps

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dashboard_snapshots',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('computed_at', sa.DateTime(), nullable=False),
    sa.Column('took_ms', sa.Integer(), nullable=False),
    sa.Column('current', sa.JSON(), nullable=False),
    sa.Column('previous', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_dashboard_snapshots'))
    )


def downgrade() -> None:
    op.drop_table('dashboard_snapshots')
