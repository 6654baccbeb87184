"""stamp_cards.rewards: a card keeps the milestone and completion rewards it started with

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stamp_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rewards', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('stamp_cards', schema=None) as batch_op:
        batch_op.drop_column('rewards')
