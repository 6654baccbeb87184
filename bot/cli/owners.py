"""`flask --app bot owner ...`: who may sign in to the owner console at /admin."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot.cli.common import ctx, fail
from bot.db import transaction
from bot.loyalty import accounts
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.timeutil import utcnow


@click.group("owner", cls=AppGroup)
def owner_group() -> None:
    """Manage owner console accounts (owners and managers)."""


def _link(token: str) -> str:
    return f"{ctx().config.public_base_url}/admin/password/{token}"


@owner_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(accounts.ROLES), default="owner", show_default=True)
def owner_add(email: str, role: str) -> None:
    """Add EMAIL and print a one-time link (24 hours) to set its password."""
    try:
        with transaction(ctx().sessions) as session:
            account, token = accounts.add_account(session, email, role, utcnow(),
                                                  actor="cli:owner")
            shown = account.email
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{shown} ({role}) added; set the password within 24 hours at:\n{_link(token)}")


@owner_group.command("reset")
@click.argument("email")
def owner_reset(email: str) -> None:
    """Print a new one-time link for EMAIL to set a password (the old one keeps working
    until the new one is used)."""
    try:
        with transaction(ctx().sessions) as session:
            _, token = accounts.reset_link(session, email, utcnow(), actor="cli:owner")
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(_link(token))


@owner_group.command("list")
def owner_list() -> None:
    """The accounts that may sign in."""
    with ctx().sessions() as session:
        listed = accounts.accounts(session)
    for account in listed:
        state = "" if account.password_hash else "  (password not set yet)"
        click.echo(f"{account.email}  {account.role}{state}")
    if not listed:
        click.echo("no accounts yet: owner add EMAIL, or CONSOLE_SETUP_TOKEN and /admin/setup")


@owner_group.command("remove")
@click.argument("email")
def owner_remove(email: str) -> None:
    """EMAIL can no longer sign in; their sessions end at once."""
    try:
        with transaction(ctx().sessions) as session:
            accounts.remove_account(session, email, utcnow(), actor="cli:owner")
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{email} removed")


DEMO_EMAIL, DEMO_PASSWORD = "owner@demo.shop", "demo-owner-password"


@owner_group.command("demo", hidden=True)
def owner_demo() -> None:
    """With the simulator on: a demo owner, so the console can be tried at once."""
    state = ctx()
    if not state.config.simulator:
        raise click.ClickException("a demo owner is made only with the simulator on "
                                   "(SIMULATOR=1), never beside a real LINE channel")
    with transaction(state.sessions) as session:
        made = accounts.demo_owner(session, DEMO_EMAIL, DEMO_PASSWORD, utcnow())
    if made is not None:
        click.echo(f"owner console: {state.config.public_base_url}/admin "
                   f"(sign in as {DEMO_EMAIL} / {DEMO_PASSWORD})")
    else:
        click.echo(f"owner console: {state.config.public_base_url}/admin")
