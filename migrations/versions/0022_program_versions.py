"""program_versions: the shop's program lives in the database, one row per version

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-07 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('program_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('schema', sa.Integer(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('effective_at', sa.DateTime(), nullable=False),
    sa.Column('superseded', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_program_versions'))
    )
    op.create_index(op.f('ix_program_versions_effective_at'), 'program_versions',
                    ['effective_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_program_versions_effective_at'), table_name='program_versions')
    op.drop_table('program_versions')
