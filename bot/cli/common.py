"""What every command module shares: the app's state, errors as click messages, --now."""

from __future__ import annotations

import datetime as dt

import click
from flask import current_app

from bot.bootstrap import Runtime
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.timeutil import utcnow


def ctx() -> Runtime:
    """The running app's runtime (config, program, sessions ...)."""
    return current_app.extensions["loyalty"]


def fail(exc: LoyaltyError) -> click.ClickException:
    """A rule the command broke, as the one line click prints."""
    return click.ClickException(exc.message("en"))


def parse_now(value: str | None) -> dt.datetime:
    if not value:
        return utcnow()
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 time like 2026-12-01T09:00+08:00") from None
    if moment.tzinfo is None:  # a bare time means the shop's local time
        moment = moment.replace(tzinfo=ctx().program.timezone)
    return moment.astimezone(dt.UTC)
