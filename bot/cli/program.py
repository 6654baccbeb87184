"""`flask --app bot program ...`: the live program, its versions, and program files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from flask.cli import AppGroup

from bot.cli.common import ctx, fail
from bot.config import ConfigError
from bot.db import transaction
from bot.loyalty import programs
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.timeutil import utcnow
from bot.program import Program, ProgramError, parse_program, parse_toml, read_text


@click.group("program", cls=AppGroup)
def program_group() -> None:
    """The loyalty program: check, apply, export, history, rollback."""


def _describe(program: Program) -> str:
    return (f"{program.shop_name}, {len(program.coupons)} coupons, {len(program.rewards)} "
            f"rewards, {len(program.tiers)} tiers")


@program_group.command("check")
@click.argument("program_file", required=False, type=click.Path(dir_okay=False))
def program_check(program_file: str | None) -> None:
    """Validate PROGRAM_FILE (or, without one, the live program)."""
    if program_file is None:
        program = ctx().program
        click.echo(f"{program.path}: OK — {_describe(program)}")
        return
    try:
        program = parse_program(read_text(program_file), program_file)
        ctx().config.check_program(program)
    except (ProgramError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{program_file}: OK — {_describe(program)}")


@program_group.command("apply")
@click.argument("program_file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would change; save nothing.")
def program_apply(program_file: str, dry_run: bool) -> None:
    """Make PROGRAM_FILE the live program, as a new version (validated first)."""
    state = ctx()
    try:
        text = read_text(program_file)
        data = parse_toml(text, program_file)
        parse_program(text, program_file)  # its own name and lines in any error
        with transaction(state.sessions) as session:
            base = programs.current_number(session)
            before = programs.data_of(session, base) if base else None
            changes = programs.describe(before, programs.upgraded(data))
            if dry_run:
                click.echo(f"{program_file} against version {base}:\n{changes}")
                return
            program = programs.save(session, data, base=base, actor="cli", source="apply",
                                    now=utcnow(), file_sha256=programs.file_sha256(text),
                                    check=state.config.check_program)
            when = programs.history(session, 1)[0].effective_at
    except (ProgramError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except LoyaltyError as exc:
        raise fail(exc) from None
    state.live.refresh()
    click.echo(f"{_in_force(program.version, when)} ({_describe(program)}).\n{changes}")


def _in_force(version: int, when: dt.datetime) -> str:
    if when <= utcnow():
        return (f"Version {version} is live; web workers and the clock use it within a few "
                f"seconds")
    return (f"Version {version} takes effect at {when:%Y-%m-%d %H:%M} UTC, after the notice "
            f"period (it takes something away from members, who are told meanwhile)")


@program_group.command("history")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
def program_history(limit: int) -> None:
    """List the program's versions, newest first, with what each changed."""
    with ctx().sessions() as session:
        versions = programs.history(session, limit)
    if not versions:
        click.echo("No versions yet: the program file becomes version 1 at the first start.")
    for v in versions:
        click.echo(f"version {v.number}  {v.created_at:%Y-%m-%d %H:%M} UTC  {v.source} by "
                   f"{v.created_by}")
        for line in v.summary.splitlines():
            click.echo(f"    {line}")


@program_group.command("export")
@click.argument("program_file", required=False, type=click.Path(dir_okay=False))
@click.option("--version", "number", type=click.IntRange(1), help="An older version.")
def program_export(program_file: str | None, number: int | None) -> None:
    """Write the live program (or --version N) as TOML to PROGRAM_FILE, or print it.

    The file's comments and layout are not kept: the database holds the values only."""
    with ctx().sessions() as session:
        number = number or programs.current_number(session)
        if number is None:
            raise click.ClickException("There is no live program yet.")
        try:
            text = programs.canonical(programs.data_of(session, number))
        except LoyaltyError as exc:
            raise fail(exc) from None
    header = (f"# Loyalty program, version {number}, exported {utcnow():%Y-%m-%d %H:%M} UTC.\n"
              f"# Comments are not kept. Apply with: flask --app bot program apply FILE\n\n")
    if program_file is None:
        click.echo(header + text, nl=False)
        return
    Path(program_file).write_text(header + text, encoding="utf-8")
    click.echo(f"Version {number} written to {program_file}.")


@program_group.command("rollback")
@click.argument("version", type=click.IntRange(1))
def program_rollback(version: int) -> None:
    """Make VERSION live again, as a new version (history is kept)."""
    state = ctx()
    try:
        with transaction(state.sessions) as session:
            program = programs.rollback(session, version, actor="cli", now=utcnow(),
                                        check=state.config.check_program)
            when = programs.history(session, 1)[0].effective_at
    except (ProgramError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except LoyaltyError as exc:
        raise fail(exc) from None
    state.live.refresh()
    click.echo(f"{_in_force(program.version, when)}: the program of version {version}.")
