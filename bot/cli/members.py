"""`flask --app bot points|members ...`: one member's points and birthday, and members in
bulk (import, export, erase)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from bot.bootstrap import Runtime
from bot.cli.common import ctx, fail
from bot.cli.staff import unlink_staff_menu
from bot.db import transaction
from bot.loyalty.erasure import erase_member
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.import_file import CsvRows, read_csv
from bot.loyalty.member_export import export_members
from bot.loyalty.member_import import ImportResult, import_members
from bot.loyalty.members import adjust_points, find_by_code, set_birthday
from bot.loyalty.summary import member_summary
from bot.loyalty.timeutil import utcnow


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
    state, now = ctx(), utcnow()
    try:
        with transaction(state.sessions) as session:
            member = find_by_code(session, member_code)
            adjust_points(session, state.program, member.id, delta, now, reason=reason,
                          actor=f"cli:{actor}")
            balance = member.points_balance
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{member_code}: {delta:+d} points, balance now {balance}")


@click.group("members", cls=AppGroup)
def members_group() -> None:
    """Look up, import, export and erase members."""


@members_group.command("show")
@click.argument("member_code")
def members_show(member_code: str) -> None:
    """Show a member's balance, expiring points, tier, stamp card and wallet."""
    state, now = ctx(), utcnow()
    try:
        with transaction(state.sessions) as session:
            s = member_summary(session, state.program, find_by_code(session, member_code), now)
    except LoyaltyError as exc:
        raise fail(exc) from None
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
    state, now = ctx(), utcnow()
    try:
        with transaction(state.sessions) as session:
            member = find_by_code(session, member_code)
            set_birthday(session, member.id, birthday, now, actor="cli:owner", by_owner=True)
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{member_code}: birthday set to {birthday}")


@members_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
def members_import(csv_file: str) -> None:
    """Import a POS export: columns phone, name, birthday, points, external_id.

    Every bad row is reported with its line and reason; rows already imported (by
    external_id) are skipped, so the import is safe to run again."""
    state = ctx()
    try:  # the file is read twice: checked and counted, then imported a batch at a time
        with open(csv_file, encoding="utf-8-sig", newline="") as stream:
            rows = read_csv(stream)
            result = _import_with_progress(state, rows)
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


def _import_with_progress(state: Runtime, rows: CsvRows) -> ImportResult:
    """Each batch is committed as it is stored: a re-run after a crash carries on."""
    with click.progressbar(length=len(rows), label="importing", file=sys.stderr) as bar, \
            state.sessions() as session:
        done = 0

        def progress(count: int, _total: int | None) -> None:
            nonlocal done
            bar.update(count - done)
            done = count
        return import_members(session, state.program, rows, utcnow(), commit=session.commit,
                              progress=progress, actor="cli:owner")


@members_group.command("export")
@click.argument("csv_file", type=click.Path(dir_okay=False, writable=True), default="-")
def members_export(csv_file: str) -> None:
    """Write every member as CSV to CSV_FILE (default: standard output)."""
    state = ctx()
    with state.sessions() as session:
        if csv_file == "-":
            export_members(session, sys.stdout, tz=state.program.timezone)
            return
        try:
            with open(csv_file, "w", encoding="utf-8", newline="") as stream:
                count = export_members(session, stream, tz=state.program.timezone)
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
    if not yes:
        click.confirm(f"Erase the personal data of {member}? This cannot be undone",
                      abort=True)
    try:
        with transaction(ctx().sessions) as session:
            result = erase_member(session, member, utcnow(), actor="cli:owner")
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{result.member_code}: " + ("already erased" if result.already_erased else
               f"personal data erased ({result.tags} tags, {result.outbox_deleted} queued "
               f"messages removed)"))
    if result.unlink_menu_of:
        click.echo("they were staff: their staff rights have ended")
        unlink_staff_menu(result.unlink_menu_of)
