"""Every member as CSV, in a form a spreadsheet opens safely and the import reads back."""

from __future__ import annotations

import csv
from typing import TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.loyalty.member_csv import EXPORT_COLUMNS, spreadsheet_safe
from bot.models import Member

DEFAULT_TIMEZONE = ZoneInfo("Asia/Taipei")  # the program file's default shop timezone


def export_members(session: Session, stream: TextIO, *, tz: ZoneInfo | None = None) -> int:
    """Write every member as CSV (EXPORT_COLUMNS) to `stream`; returns the rows written.

    Rows are streamed from the database (yield_per), never all loaded. joined_at is local ISO
    time in `tz` (pass program.timezone; Asia/Taipei by default). Every text value that a
    spreadsheet would run as a formula (= + - @, tab or carriage return at its start) is
    written with a leading apostrophe (spreadsheet_safe), which the import takes off again.
    Phones and birthdays never need it today (the import validates them), but the stored
    values are escaped all the same, not trusted to be so. Open the file with newline=""
    (and encoding "utf-8-sig" for Excel).
    """
    tz = tz or DEFAULT_TIMEZONE
    writer = csv.writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    rows = session.execute(
        select(Member.member_code, Member.external_id, Member.line_user_id, Member.phone,
               Member.display_name, Member.birthday, Member.tier, Member.points_balance,
               Member.status, Member.joined_at)
        .order_by(Member.id).execution_options(yield_per=1000))
    written = 0
    for row in rows:
        writer.writerow([
            spreadsheet_safe(row.member_code), spreadsheet_safe(row.external_id or ""),
            "yes" if row.line_user_id else "no", spreadsheet_safe(row.phone or ""),
            spreadsheet_safe(row.display_name or ""),
            row.birthday.isoformat() if row.birthday else "", spreadsheet_safe(row.tier),
            row.points_balance, spreadsheet_safe(row.status),
            row.joined_at.astimezone(tz).isoformat(timespec="seconds")])
        written += 1
    return written
