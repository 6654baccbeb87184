"""Alembic environment: the URL comes from bot.migrate (and so from DATABASE_URL)."""

from alembic import context

from bot.config import Config
from bot.db import make_engine
from bot.models import Base

config = context.config
url = config.attributes.get("database_url") or Config.from_env().database_url


def run() -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=Base.metadata,
                              render_as_batch=connection.dialect.name == "sqlite",
                              compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
