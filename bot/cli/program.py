"""`flask --app bot program ...`: the loyalty program file."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot.cli.common import ctx


@click.group("program", cls=AppGroup)
def program_group() -> None:
    """Inspect the loyalty program file."""


@program_group.command("check")
def program_check() -> None:
    """Validate the program file (the app refuses to start with a broken one)."""
    program = ctx().program
    click.echo(f"{program.path}: OK — {program.shop_name}, {len(program.coupons)} coupons, "
               f"{len(program.rewards)} rewards, {len(program.tiers)} tiers")
