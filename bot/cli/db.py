"""`flask --app bot db ...`: the database schema (Alembic)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot import migrate
from bot.cli.common import ctx


@click.group("db", cls=AppGroup)
def db_group() -> None:
    """Create, upgrade or inspect the database schema."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Create or upgrade the database to the latest schema (or REVISION)."""
    migrate.upgrade(ctx().config.database_url, revision)
    click.echo(f"database at {migrate.current_revision(ctx().config.database_url)}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Step the schema back to REVISION (use with care: data in dropped tables is lost)."""
    migrate.downgrade(ctx().config.database_url, revision)


@db_group.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    click.echo(migrate.current_revision(ctx().config.database_url) or "empty database")
