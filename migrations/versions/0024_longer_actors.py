"""audit_log.actor and point_entries.actor hold 300 characters: a console account's
actor is "console:" and an e-mail of up to 254 characters

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('audit_log', 'point_entries'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('actor', existing_type=sa.String(length=100),
                                  type_=sa.String(length=300))


def downgrade() -> None:
    for table in ('audit_log', 'point_entries'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('actor', existing_type=sa.String(length=300),
                                  type_=sa.String(length=100))
