"""`flask --app bot staff ...`: who may verify coupons and record purchases by chat."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot.cli.common import ctx, fail
from bot.db import transaction
from bot.line.client import LineClient
from bot.line.richmenu import link_staff, unlink_staff
from bot.loyalty import staff
from bot.loyalty.codes import format_code
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.timeutil import utcnow


@click.group("staff", cls=AppGroup)
def staff_group() -> None:
    """Manage who may verify coupons and record purchases by chat."""


@staff_group.command("add")
@click.argument("line_user_id")
@click.option("--name", default="", help="How the staff member is shown to colleagues.")
def staff_add(line_user_id: str, name: str) -> None:
    """Make LINE_USER_ID (U followed by 32 characters) a staff member."""
    state = ctx()
    try:
        with transaction(state.sessions) as session:
            worker = staff.add_staff(session, line_user_id, utcnow(), name=name,
                                     actor="cli:owner")
            shown = worker.name
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{shown} ({line_user_id}) is staff")
    if state.config.line_configured and not state.config.simulator:
        if link_staff(LineClient(state.config).api, line_user_id):
            click.echo("staff menu linked")
        else:
            click.echo("run `flask --app bot richmenu deploy` to publish the staff menu")


@staff_group.command("remove")
@click.argument("line_user_id")
def staff_remove(line_user_id: str) -> None:
    """End LINE_USER_ID's staff rights at once and unlink the staff menu."""
    state = ctx()
    try:
        with transaction(state.sessions) as session:
            staff.remove_staff(session, line_user_id, utcnow(), actor="cli:owner")
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{line_user_id} is no longer staff")
    unlink_staff_menu(line_user_id)


def unlink_staff_menu(line_user_id: str) -> None:
    config = ctx().config
    if config.line_configured and not config.simulator:
        unlink_staff(LineClient(config).api, line_user_id)
        click.echo("staff menu unlinked")


@staff_group.command("list")
def staff_list() -> None:
    """List the active staff."""
    with ctx().sessions() as session:
        workers = staff.active_staff(session)
    for worker in workers:
        click.echo(f"{worker.line_user_id}  {worker.name}")
    if not workers:
        click.echo("no staff yet: `flask --app bot staff add U...` or `staff invite`")


@staff_group.command("invite")
@click.option("--name", default="", help="The new staff member's name.")
def staff_invite(name: str) -> None:
    """Create a one-time invite code; the new staff member sends `員工 CODE` to the bot."""
    with transaction(ctx().sessions) as session:
        code = staff.create_invite(session, utcnow(), name=name, actor="cli:owner")
    click.echo(f"send this to the bot from the new staff member's LINE within 3 days:\n"
               f"員工 {format_code(code)}")
