"""taps on the bot's buttons, per day, source and action

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tap_counts',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('taps', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'source', 'action', name=op.f('pk_tap_counts')),
    )


def downgrade() -> None:
    op.drop_table('tap_counts')
