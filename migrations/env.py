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
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:  # a batch migration rebuilds a table: dropping the old copy of one
                # that others reference fails while foreign keys are enforced (the pragma
                # only takes effect outside a transaction, hence the driver connection)
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            context.configure(connection=connection, target_metadata=Base.metadata,
                              render_as_batch=sqlite, compare_type=True)
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
