"""Import members from a POS export (or a file export_members wrote), safe to re-run.

Each row (phone, name, birthday, opening points, external id) becomes a member without a
LINE account (line_user_id NULL, status 'active'). The POS's external id is the re-run key: a
row whose external id is already in the database is skipped as "already imported". A member
row and its opening-points lot (ledger.credit, kind 'adjust') are always written in the same
transaction (one per batch of rows), so after a crash a member either exists with exactly its
opening points or not at all, and a re-run credits nothing twice; the unique external id
makes two imports running at once skip each other's rows the same way. Every row that is not
imported is reported with its line number and the reason.

Unlike the other verbs, an import ends transactions while it runs: a file of a million rows
in one transaction would hold its write locks (on SQLite, the whole database's) for as long
as the import runs, keeping the webhook and the clock waiting, and a crash near the end would
lose all of it; committed a batch at a time, a re-run carries on where it stopped. So the
caller hands it the commit to run after each batch (`commit=session.commit`); this module
never commits by itself.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import new_code
from bot.loyalty.import_file import CsvRows
from bot.loyalty.import_rows import FirstLines, Row, parse_row
from bot.loyalty.ledger import credit
from bot.loyalty.timeutil import local_date
from bot.models import Member
from bot.program import Program

OPENING_REASON = "opening balance (import)"
BATCH_SIZE = 500
IMPORTED = "member.import"  # audit action, one per member imported


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0  # already imported (their external id or member code is known)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    points: int = 0  # opening points credited by this run
    refused: int = 0  # rows not imported, each with a reason (in errors, or given to keep)
    last_line: int = 0  # the file line of the last row read
    # where refused rows go instead of `errors` (a file of many bad rows then takes no memory)
    keep: Callable[[int, str], None] | None = field(default=None, repr=False, compare=False)

    @property
    def rows(self) -> int:
        """Every data row read: each is imported, skipped or refused, none is dropped."""
        return self.imported + self.skipped + self.refused

    def refuse(self, line: int, reason: str) -> None:
        self.refused += 1
        if self.keep is None:
            self.errors.append((line, reason))
        else:
            self.keep(line, reason)


def import_members(session: Session, program: Program,
                   rows: Iterable[tuple[int, Mapping[str | None, object]]], now: dt.datetime, *,
                   commit: Callable[[], None],
                   progress: Callable[[int, int | None], None] | None = None,
                   total: int | None = None, actor: str = "import",
                   batch_size: int = BATCH_SIZE, result: ImportResult | None = None,
                   start_after: int = 0) -> ImportResult:
    """Import (line number, row) pairs (see read_csv) as members without a LINE account.

    Each batch of rows is written in `session`, then `commit()` is called: with
    session.commit each batch is one transaction (if another writer takes one of its keys
    meanwhile, the batch is redone a row at a time). The run's summary in the audit trail
    is written and committed the same way at the end. Give it a session with nothing
    pending. `progress(done, total)` is called after each batch is committed (`total` is
    len(rows) if it has one, else None).
    Safe to re-run and to run twice at once: a row whose external_id (or, in an exported
    file, member_code) is already in the database is skipped, and its opening points are
    never credited again. Imported members get a member code, no line_user_id, status
    'active', joined_at = now, language zh-TW, the lowest tier, and their opening points as
    one 'adjust' lot (reason "opening balance (import)") that expires like points earned now.
    A value escaped for spreadsheets (see spreadsheet_safe) is read without its apostrophe.
    An external id or phone on two lines of the file is reported on the second with the
    first's line number: for read_csv's rows only the keys its pass found that may repeat
    are remembered, for any other iterable every one (about 210 MB for a million rows).

    A run that carries on after an earlier one stopped gives `start_after`, the last line
    the earlier run committed: rows up to it are read only to know where keys were first
    seen. `result` collects the counts as the batches go (a caller's `commit` may record
    them with each batch); `commit()` is called after every batch, stored rows or not.
    """
    if total is None and isinstance(rows, Sized):
        total = len(rows)
    result = ImportResult() if result is None else result
    seen = FirstLines(rows.repeats if isinstance(rows, CsvRows) else None)
    today = local_date(now, program.timezone)
    done = 0
    pairs = iter(rows)
    while chunk := list(itertools.islice(pairs, batch_size)):
        valid = []
        for line, raw in chunk:
            row, reasons = parse_row(line, raw, today, seen)
            if line <= start_after:  # committed by an earlier run
                continue
            if reasons:
                result.refuse(line, "; ".join(reasons))
            else:
                valid.append(row)
        result.last_line = chunk[-1][0]
        if valid:
            _store(session, program, valid, now, actor, result)
        commit()
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    result.errors.sort(key=lambda error: error[0])
    if result.rows:
        audit.record(session, "members.import", member_id=None, actor=actor, at=now,
                     opening_points=result.points, imported=result.imported,
                     skipped=result.skipped, errors=result.refused)
        session.flush()
        commit()
    return result


def _store(session: Session, program: Program, rows: list[Row], now: dt.datetime, actor: str,
           result: ImportResult) -> None:
    known_ids, known_codes, owners = _holders(session, rows)
    new = []
    for row in rows:
        if row.external_id in known_ids or row.member_code in known_codes:
            result.skipped += 1
        elif row.phone in owners:
            result.refuse(row.line, f"phone {row.phone} already belongs to member "
                                         f"{owners[row.phone]}")
        elif not row.external_id:  # a row of an exported file, of a member not in this database
            result.refuse(row.line, "missing external_id")
        else:
            new.append(row)
    if not new:
        return
    try:
        with session.begin_nested():  # the usual case: the whole batch at once
            _add_members(session, program, new, _unused_member_codes(session, len(new)), now,
                         actor)
    except IntegrityError:  # a concurrent import or member took a key: one row at a time
        for row in new:
            _insert(session, program, row, now, actor, result)
        return
    result.imported += len(new)
    result.points += sum(row.points for row in new)


def _holders(session: Session, rows: list[Row]
             ) -> tuple[set[str], set[str], dict[str, str]]:
    """Which of the rows' external ids and member codes are taken, and who owns their phones.

    One statement, so the three answers are of one moment: asked one after another, an import
    committing in between made a row look new by its id yet taken by its phone (refused
    instead of skipped)."""
    ids = {row.external_id for row in rows if row.external_id}
    codes = {row.member_code for row in rows if row.member_code}
    phones = {row.phone for row in rows if row.phone}
    found = session.execute(select(Member.external_id, Member.member_code, Member.phone).where(
        or_(Member.external_id.in_(ids), Member.member_code.in_(codes),
            Member.phone.in_(phones)))).all()
    return ({external_id for external_id, _, _ in found if external_id in ids},
            {code for _, code, _ in found if code in codes},
            {phone: code for _, code, phone in found if phone in phones})


def _add_members(session: Session, program: Program, rows: list[Row], codes: list[str],
                 now: dt.datetime, actor: str) -> None:
    """New members (one INSERT for them all), each with its opening points as a ledger lot."""
    members = [Member(member_code=code, external_id=row.external_id, phone=row.phone,
                      display_name=row.name, birthday=row.birthday,
                      birthday_set_at=now if row.birthday else None, language="zh-TW",
                      status="active", points_balance=0, tier=program.tiers[0].key,
                      tier_since=now, joined_at=now, last_activity_at=now)
               for row, code in zip(rows, codes, strict=True)]
    session.add_all(members)
    session.flush()
    for row, member in zip(rows, members, strict=True):
        if row.points:  # the member is new: its row is this transaction's alone
            credit(session, program, member, row.points, "adjust", now, actor=actor,
                   reason=OPENING_REASON)
        audit.record(session, IMPORTED, member_id=member.id, actor=actor, at=now,
                     line=row.line, opening_points=row.points)
    session.flush()


def _insert(session: Session, program: Program, row: Row, now: dt.datetime, actor: str,
            result: ImportResult) -> None:
    """One row in its own savepoint, telling apart what another writer took meanwhile."""
    for _ in range(3):
        try:
            with session.begin_nested():
                _add_members(session, program, [row], _unused_member_codes(session, 1), now,
                             actor)
        except IntegrityError:
            known_ids, known_codes, owners = _holders(session, [row])
            if row.external_id in known_ids or row.member_code in known_codes:
                result.skipped += 1
                return
            if row.phone in owners:
                result.refuse(row.line, f"phone {row.phone} already belongs to "
                                            f"member {owners[row.phone]}")
                return
            continue  # the member code was taken meanwhile: another one
        result.imported += 1
        result.points += row.points
        return
    raise RuntimeError(f"line {row.line}: could not store the member")


def _unused_member_codes(session: Session, count: int) -> list[str]:
    codes: set[str] = set()
    while len(codes) < count:
        fresh = {new_code() for _ in range(count - len(codes))} - codes
        taken = set(session.scalars(select(Member.member_code)
                                    .where(Member.member_code.in_(fresh))))
        codes |= fresh - taken
    return list(codes)
