"""console member search: a trigram index on members' names (PostgreSQL only)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 06:00:00

The console finds members by any part of their name (ILIKE '%...%'); a btree index cannot
serve that, a pg_trgm GIN index can. The extension is made in the public schema when the
server offers it (it ships with PostgreSQL's contrib, on every common PaaS); without it the
search still works, by reading the table. SQLite gets nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

INDEX = 'ix_members_display_name_trgm'


def _trgm_schema(bind: sa.engine.Connection) -> str | None:
    """The schema holding pg_trgm, after making it if the server has it and it is missing."""
    if not bind.scalar(sa.text(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")):
        return None
    bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
    return bind.scalar(sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension "
                               "WHERE extname = 'pg_trgm'"))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    schema = _trgm_schema(bind)
    if schema is None:
        return
    op.execute(f'CREATE INDEX IF NOT EXISTS {INDEX} ON members '
               f'USING gin (display_name {schema}.gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP INDEX IF EXISTS {INDEX}')
