"""Owner and deploy commands: `flask --app bot db|program|points|members|staff|jobs ...`."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from bot import migrate
from bot.db import transaction
from bot.loyalty import staff
from bot.loyalty.codes import format_code
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.members import adjust_points, find_by_code, set_birthday
from bot.loyalty.summary import member_summary
from bot.loyalty.timeutil import utcnow

if TYPE_CHECKING:
    from bot.loyalty.member_data import CsvRows, ImportResult


def _ctx() -> dict:
    return current_app.extensions["loyalty"]


def _parse_now(value: str | None) -> dt.datetime:
    if not value:
        return utcnow()
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 time like 2026-12-01T09:00+08:00") from None
    if moment.tzinfo is None:  # a bare time means the shop's local time
        moment = moment.replace(tzinfo=_ctx()["program"].timezone)
    return moment.astimezone(dt.UTC)


@click.group("db", cls=AppGroup)
def db_group() -> None:
    """Create, upgrade or inspect the database schema."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Create or upgrade the database to the latest schema (or REVISION)."""
    migrate.upgrade(_ctx()["config"].database_url, revision)
    click.echo(f"database at {migrate.current_revision(_ctx()['config'].database_url)}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Step the schema back to REVISION (use with care: data in dropped tables is lost)."""
    migrate.downgrade(_ctx()["config"].database_url, revision)


@db_group.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    click.echo(migrate.current_revision(_ctx()["config"].database_url) or "empty database")


@click.group("program", cls=AppGroup)
def program_group() -> None:
    """Inspect the loyalty program file."""


@program_group.command("check")
def program_check() -> None:
    """Validate the program file (the app refuses to start with a broken one)."""
    program = _ctx()["program"]
    click.echo(f"{program.path}: OK — {program.shop_name}, {len(program.coupons)} coupons, "
               f"{len(program.rewards)} rewards, {len(program.tiers)} tiers")


@click.group("points", cls=AppGroup)
def points_group() -> None:
    """Manage members' points by hand."""


@points_group.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("member_code")
@click.argument("delta", type=int)
@click.option("--reason", required=True, help="Why; kept in the audit trail.")
@click.option("--by", "actor", default="owner", show_default=True, help="Who is adjusting.")
def points_adjust(member_code: str, delta: int, reason: str, actor: str) -> None:
    """Add (+N) or remove (-N) points for MEMBER_CODE, with a reason."""
    ctx, now = _ctx(), utcnow()
    try:
        with transaction(ctx["sessions"]) as session:
            member = find_by_code(session, member_code)
            adjust_points(session, ctx["program"], member.id, delta, now, reason=reason,
                          actor=f"cli:{actor}")
            balance = member.points_balance
    except LoyaltyError as exc:
        raise click.ClickException(exc.message("en")) from None
    click.echo(f"{member_code}: {delta:+d} points, balance now {balance}")


@click.group("members", cls=AppGroup)
def members_group() -> None:
    """Look up, import, export and erase members."""


@members_group.command("show")
@click.argument("member_code")
def members_show(member_code: str) -> None:
    """Show a member's balance, expiring points, tier, stamp card and wallet."""
    ctx, now = _ctx(), utcnow()
    try:
        with transaction(ctx["sessions"]) as session:
            s = member_summary(session, ctx["program"], find_by_code(session, member_code), now)
    except LoyaltyError as exc:
        raise click.ClickException(exc.message("en")) from None
    click.echo(f"{s.member.display_name or '(no name)'} [{member_code}] tier {s.tier.name_en}")
    click.echo(f"points: {s.balance}" + "".join(f"; {e.points} expire after {e.date}"
                                                for e in s.expiring))
    if s.next_tier:
        click.echo(f"spend {s.spend}; {s.spend_to_next} more for {s.next_tier.name_en}")
    click.echo(f"stamps: {s.stamps}/{s.stamp_goal}")
    for view in s.wallet:
        click.echo(f"coupon {view.display_code}: {view.template.title_en}")


@members_group.command("birthday")
@click.argument("member_code")
@click.argument("birthday")
def members_birthday(member_code: str, birthday: str) -> None:
    """Set or correct MEMBER_CODE's BIRTHDAY (YYYY-MM-DD); customers can set theirs only once."""
    ctx, now = _ctx(), utcnow()
    try:
        with transaction(ctx["sessions"]) as session:
            member = find_by_code(session, member_code)
            set_birthday(session, member.id, birthday, now, actor="cli:owner", by_owner=True)
    except LoyaltyError as exc:
        raise click.ClickException(exc.message("en")) from None
    click.echo(f"{member_code}: birthday set to {birthday}")


@members_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
def members_import(csv_file: str) -> None:
    """Import a POS export: columns phone, name, birthday, points, external_id.

    Every bad row is reported with its line and reason; rows already imported (by
    external_id) are skipped, so the import is safe to run again."""
    from bot.loyalty import member_data

    ctx = _ctx()
    try:  # the file is read twice: checked and counted, then imported a batch at a time
        with open(csv_file, encoding="utf-8-sig", newline="") as stream:
            rows = member_data.read_csv(stream)
            result = _import_with_progress(ctx, rows)
    except (LoyaltyError, UnicodeDecodeError) as exc:
        reason = exc.message("en") if isinstance(exc, LoyaltyError) else \
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8 CSV"
        raise click.ClickException(f"{csv_file}: {reason}") from None
    for line, reason in result.errors:
        click.echo(f"{csv_file}:{line}: {reason}", err=True)
    click.echo(f"{result.imported} imported ({result.points:,} opening points), "
               f"{result.skipped} already imported, {len(result.errors)} with errors")
    if result.errors:
        raise SystemExit(1)


def _import_with_progress(ctx: dict, rows: CsvRows) -> ImportResult:
    from bot.loyalty import member_data

    with click.progressbar(length=len(rows), label="importing",
                           file=click.get_text_stream("stderr")) as bar:
        done = 0

        def progress(count: int, _total: int | None) -> None:
            nonlocal done
            bar.update(count - done)
            done = count
        return member_data.import_members(ctx["sessions"], ctx["program"], rows, utcnow(),
                                          progress=progress, actor="cli:owner")


@members_group.command("export")
@click.argument("csv_file", type=click.Path(dir_okay=False, writable=True), default="-")
def members_export(csv_file: str) -> None:
    """Write every member as CSV to CSV_FILE (default: standard output)."""
    from bot.loyalty import member_data

    ctx = _ctx()
    with ctx["sessions"]() as session:
        if csv_file == "-":
            member_data.export_members(session, sys.stdout, tz=ctx["program"].timezone)
            return
        try:
            with open(csv_file, "w", encoding="utf-8", newline="") as stream:
                count = member_data.export_members(session, stream,
                                                   tz=ctx["program"].timezone)
        except OSError as exc:
            raise click.ClickException(f"{csv_file}: {exc.strerror}") from None
    if csv_file != "-":
        click.echo(f"{count} members written to {csv_file}")


@members_group.command("erase")
@click.argument("member")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def members_erase(member: str, yes: bool) -> None:
    """Erase MEMBER's personal data (LINE user id or member code) on their request.

    Name, phone, birthday and LINE id are removed; the points ledger, purchases and coupons
    stay, anonymised, for the accounts."""
    from bot.loyalty import member_data

    if not yes:
        click.confirm(f"Erase the personal data of {member}? This cannot be undone",
                      abort=True)
    try:
        with transaction(_ctx()["sessions"]) as session:
            result = member_data.erase_member(session, member, utcnow(), actor="cli:owner")
    except LoyaltyError as exc:
        raise click.ClickException(exc.message("en")) from None
    click.echo(f"{result.member_code}: " + ("already erased" if result.already_erased else
               f"personal data erased ({result.tags} tags, {result.outbox_deleted} queued "
               f"messages removed)"))
    if result.unlink_menu_of:
        click.echo("they were staff: their staff rights have ended")
        _unlink_staff_menu(result.unlink_menu_of)


@click.group("staff", cls=AppGroup)
def staff_group() -> None:
    """Manage who may verify coupons and record purchases by chat."""


@staff_group.command("add")
@click.argument("line_user_id")
@click.option("--name", default="", help="How the staff member is shown to colleagues.")
def staff_add(line_user_id: str, name: str) -> None:
    """Make LINE_USER_ID (U followed by 32 characters) a staff member."""
    ctx = _ctx()
    try:
        with transaction(ctx["sessions"]) as session:
            worker = staff.add_staff(session, line_user_id, utcnow(), name=name,
                                     actor="cli:owner")
            shown = worker.name
    except LoyaltyError as exc:
        raise click.ClickException(exc.message("en")) from None
    click.echo(f"{shown} ({line_user_id}) is staff")
    if ctx["config"].line_configured and not ctx["config"].simulator:
        from bot.line.client import LineClient
        from bot.line.richmenu import link_staff

        if link_staff(LineClient(ctx["config"]).api, line_user_id):
            click.echo("staff menu linked")
        else:
            click.echo("run `flask --app bot richmenu deploy` to publish the staff menu")


@staff_group.command("remove")
@click.argument("line_user_id")
def staff_remove(line_user_id: str) -> None:
    """End LINE_USER_ID's staff rights at once and unlink the staff menu."""
    ctx = _ctx()
    try:
        with transaction(ctx["sessions"]) as session:
            staff.remove_staff(session, line_user_id, utcnow(), actor="cli:owner")
    except LoyaltyError as exc:
        raise click.ClickException(exc.message("en")) from None
    click.echo(f"{line_user_id} is no longer staff")
    _unlink_staff_menu(line_user_id)


def _unlink_staff_menu(line_user_id: str) -> None:
    config = _ctx()["config"]
    if config.line_configured and not config.simulator:
        from bot.line.client import LineClient
        from bot.line.richmenu import unlink_staff

        unlink_staff(LineClient(config).api, line_user_id)
        click.echo("staff menu unlinked")


@staff_group.command("list")
def staff_list() -> None:
    """List the active staff."""
    with _ctx()["sessions"]() as session:
        workers = staff.active_staff(session)
    for worker in workers:
        click.echo(f"{worker.line_user_id}  {worker.name}")
    if not workers:
        click.echo("no staff yet: `flask --app bot staff add U...` or `staff invite`")


@staff_group.command("invite")
@click.option("--name", default="", help="The new staff member's name.")
def staff_invite(name: str) -> None:
    """Create a one-time invite code; the new staff member sends `員工 CODE` to the bot."""
    with transaction(_ctx()["sessions"]) as session:
        code = staff.create_invite(session, utcnow(), name=name, actor="cli:owner")
    click.echo(f"send this to the bot from the new staff member's LINE within 3 days:\n"
               f"員工 {format_code(code)}")


@click.group("jobs", cls=AppGroup)
def jobs_group() -> None:
    """List the scheduled jobs or run one by hand."""


@jobs_group.command("list")
def jobs_list() -> None:
    """Every job with its schedule (shop time) and its last run."""
    from bot.jobs import JOBS
    from bot.models import JobRun

    with _ctx()["sessions"]() as session:
        runs = {row.name: row for row in session.scalars(select(JobRun))}
    for job in JOBS.values():
        row = runs.get(job.name)
        when = row.last_completed_at.isoformat() if row and row.last_completed_at else "never"
        cron = " ".join(f"{k}={v}" for k, v in job.cron.items())
        click.echo(f"{job.name:<16} {cron:<20} last {when}  {job.description}")
        if row and row.last_summary:
            click.echo(f"{'':<16} {row.last_summary}")


@jobs_group.command("run")
@click.argument("name")
@click.option("--now", "when", help="Act as of this ISO-8601 time (default: now).")
def jobs_run(name: str, when: str | None) -> None:
    """Run job NAME once, as of --now."""
    from bot.jobs import JOBS, run_job
    from bot.scheduler import runtime

    if name not in JOBS:
        raise click.ClickException(f"no job {name!r}; jobs: {', '.join(JOBS)}")
    click.echo(run_job(runtime(_ctx()), JOBS[name], _parse_now(when)))


@click.command("report")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First local day (default: 29 days before --to).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last local day, included (default: today).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text")
def report_command(first, last, fmt: str) -> None:
    """How the program is doing: members, repurchase, coupons, points, stamps, tiers, pushes."""
    import json

    from bot.loyalty.report import build_report, render_csv, render_text, report_period

    ctx, now = _ctx(), utcnow()
    program = ctx["program"]
    try:
        start, end = report_period(program, first and first.date(), last and last.date(), now)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with ctx["sessions"]() as session:
        report = build_report(session, program, start, end, now,
                              quota=program.monthly_push_budget)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_csv(report) if fmt == "csv" else render_text(report), nl=fmt == "text")


def register_cli(app: Flask) -> None:
    from bot.api.cli import api_token_group
    from bot.campaign_cli import campaign_group, tags_group
    from bot.line.richmenu import richmenu_group

    for command in (db_group, program_group, points_group, members_group, staff_group,
                    richmenu_group, jobs_group, api_token_group, report_command, tags_group,
                    campaign_group):
        app.cli.add_command(command)
