"""index open lots by expiry, for the expire and expiry-warning jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 23:58:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_point_entries_due', 'point_entries', ['expires_at'], unique=False,
                    postgresql_where=sa.text('remaining > 0'),
                    sqlite_where=sa.text('remaining > 0'))


def downgrade() -> None:
    op.drop_index('ix_point_entries_due', table_name='point_entries')
