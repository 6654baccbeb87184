"""owner console: accounts, sessions, one-time links, failed sign-ins

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('console_accounts',
    sa.Column('id', ID, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('password_changed_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('removed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("role IN ('owner', 'manager')",
                       name=op.f('ck_console_accounts_role_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_accounts')),
    sa.UniqueConstraint('email', name=op.f('uq_console_accounts_email'))
    )
    op.create_table('console_login_failures',
    sa.Column('id', ID, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_login_failures'))
    )
    op.create_index('ix_console_login_failures_address_at', 'console_login_failures',
                    ['address', 'at'], unique=False)
    op.create_index('ix_console_login_failures_email_at', 'console_login_failures',
                    ['email', 'at'], unique=False)
    op.create_table('console_links',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', ID, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['console_accounts.id'],
                            name=op.f('fk_console_links_account_id_console_accounts')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_console_links'))
    )
    op.create_index(op.f('ix_console_links_account_id'), 'console_links', ['account_id'],
                    unique=False)
    op.create_table('console_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', ID, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['console_accounts.id'],
                            name=op.f('fk_console_sessions_account_id_console_accounts')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_console_sessions'))
    )
    op.create_index(op.f('ix_console_sessions_account_id'), 'console_sessions', ['account_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_sessions_account_id'), table_name='console_sessions')
    op.drop_table('console_sessions')
    op.drop_index(op.f('ix_console_links_account_id'), table_name='console_links')
    op.drop_table('console_links')
    op.drop_index('ix_console_login_failures_email_at', table_name='console_login_failures')
    op.drop_index('ix_console_login_failures_address_at', table_name='console_login_failures')
    op.drop_table('console_login_failures')
    op.drop_table('console_accounts')
