"""member imports uploaded in the console: the file in 1 MB parts, progress, refused rows

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('member_imports',
    sa.Column('id', ID, nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=300), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('runner', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('rows_total', sa.Integer(), nullable=True),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('lines_done', sa.Integer(), nullable=False),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('failure', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')",
                       name=op.f('ck_member_imports_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_imports'))
    )
    op.create_index('ix_member_imports_status_id', 'member_imports', ['status', 'id'],
                    unique=False)
    op.create_table('member_import_parts',
    sa.Column('import_id', ID, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['member_imports.id'],
                            name=op.f('fk_member_import_parts_import_id_member_imports')),
    sa.PrimaryKeyConstraint('import_id', 'seq', name=op.f('pk_member_import_parts'))
    )
    op.create_table('member_import_refusals',
    sa.Column('import_id', ID, nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['member_imports.id'],
                            name=op.f('fk_member_import_refusals_import_id_member_imports')),
    sa.PrimaryKeyConstraint('import_id', 'line', name=op.f('pk_member_import_refusals'))
    )


def downgrade() -> None:
    op.drop_table('member_import_refusals')
    op.drop_table('member_import_parts')
    op.drop_index('ix_member_imports_status_id', table_name='member_imports')
    op.drop_table('member_imports')
