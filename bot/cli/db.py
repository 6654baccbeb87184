"""`flask --app bot db ...`: the database schema (Alembic), and the figures to check a
restore by."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot import migrate
from bot.cli.common import ctx
from bot.loyalty.totals import shop_totals


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


@db_group.command("check")
def db_check() -> None:
    """Print the members, points, ledger, coupons and stamp cards, and whether every
    balance matches the ledger (exit status 1 if one does not): run it before a backup and
    after a restore, and compare."""
    state = ctx()
    with state.sessions() as session:
        totals = shop_totals(session)
    click.echo(f"schema {migrate.current_revision(state.config.database_url) or 'empty'}")
    click.echo(f"members {totals.members} ({totals.active_members} active)")
    click.echo(f"points balances {totals.points_balances}")
    click.echo(f"ledger {totals.ledger_entries} entries, sum {totals.ledger_points}, "
               f"open lots {totals.open_lots}")
    click.echo(f"purchases {totals.purchases}, refunds {totals.refunds}")
    click.echo(f"coupons {totals.coupons} ({totals.coupons_redeemed} redeemed)")
    click.echo(f"stamp cards {totals.stamp_cards} ({totals.stamps_on_active_cards} stamps on "
               f"active cards)")
    if not totals.ledger_agrees:
        raise click.ClickException(
            f"the ledger disagrees: {totals.members_off_ledger} members' balances differ "
            f"from their ledger entries or lots")
    click.echo("ledger agrees with every balance")
