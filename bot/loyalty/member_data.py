"""Member data in bulk: import a POS export, export CSV, link an imported record, erase.

Import. A POS export (phone, name, birthday, opening points, external id) becomes members
without a LINE account (line_user_id NULL, status 'active'). The POS's external id is the
re-run key: a row whose external id is already in the database is skipped as "already
imported". A member row and its opening-points lot (ledger.credit, kind 'adjust') are always
written in the same transaction (one per batch of rows), so after a crash a member either
exists with exactly its opening points or not at all, and a re-run credits nothing twice; the
unique external id makes two imports running at once skip each other's rows the same way.
Every row that is not imported is reported with its line number and the reason. The file is
read a batch at a time as it is imported (after one pass that checks and counts it), so the
memory an import takes does not grow with the file: see read_csv and CsvRows.

Link. A LINE member claims an imported record (its member code and matching phone). The
record's ledger rows are moved, not copied: every point entry (lots with their remainders
and expiries, draws, expiries), purchase, refund, coupon, redemption, stamp card, tag and
notice of the record becomes the LINE member's, and the record's cached balance is added to
the LINE member's. Because all of the record's entries move together, the ledger invariant
(cached balance == sum of lot remainders == sum of entries) holds for both members after the
merge (the record ends with 0 == 0 == 0), each lot keeps its own expiry, and a later refund of
a moved purchase finds its own lot on the member who now owns the purchase. The audit trail
is not rewritten: "member.merged" (-points) on the record and "member.link" (+points) on the
LINE member record the move. The record is then closed with status 'merged', and a second
link of it is refused.

Erase. A member's personal data is removed on request; the ledger, purchases, coupons and
redemptions stay for the accounts, referencing only the member id.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.db import transaction
from bot.loyalty import audit
from bot.loyalty.codes import new_code, normalize_code
from bot.loyalty.errors import (
    ImportFileError,
    InvalidPhone,
    LinkAlreadyLinked,
    LinkNeedsLineMember,
    LinkNoRecordForPhone,
    LinkNotImported,
    LinkPhoneMismatch,
    LinkRecordClosed,
    LinkToSelf,
    LinkUnknownRecord,
    MemberBlocked,
    UnknownMember,
)
from bot.loyalty.ledger import credit, lock_members, settle_expired
from bot.loyalty.members import welcome_key
from bot.loyalty.stamps import add_stamps
from bot.loyalty.tiers import TierChange, evaluate_tier
from bot.loyalty.timeutil import local_date
from bot.models import (
    AuditLog,
    Coupon,
    Member,
    MemberTag,
    Notice,
    OutboxBatch,
    OutboxMessage,
    PendingAction,
    PointEntry,
    Purchase,
    Redemption,
    Staff,
    StaffInvite,
    Stamp,
    StampCard,
)
from bot.program import Program

IMPORT_COLUMNS = ("phone", "name", "birthday", "points", "external_id")
EXPORT_COLUMNS = ("member_code", "external_id", "line_linked", "phone", "name", "birthday",
                  "tier", "points_balance", "status", "joined_at")
OPENING_REASON = "opening balance (import)"
MAX_OPENING_POINTS = 10_000_000
BATCH_SIZE = 500
DEFAULT_TIMEZONE = ZoneInfo("Asia/Taipei")  # the program file's default shop timezone

# Audit actions
IMPORTED, LINKED, MERGED, ERASED = "member.import", "member.link", "member.merged", "member.erase"
ERASED_ACTOR = "erased-member"


# -- errors ------------------------------------------------------------------------------------


# -- values ------------------------------------------------------------------------------------
_PHONE_NOISE = re.compile(r"[\s\-‐‑‒–—―ー.()]")
_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
_INTEGER = re.compile(r"\d+|\d{1,3}(,\d{3})+")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula


def normalize_phone(text: str | None) -> str | None:
    """A Taiwan mobile number as stored (0912345678), or None if it is not one.

    Accepts spaces, dashes, dots and brackets anywhere, full-width digits, +886 / 00886 / 886
    prefixes (with or without the trunk 0), and the 9 digits a spreadsheet leaves when it
    drops the leading zero (912345678).
    """
    digits = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", text or ""))
    for prefix in ("+886", "00886", "886"):
        if digits.startswith(prefix) and len(digits) - len(prefix) in (9, 10):
            digits = "0" + digits[len(prefix):].removeprefix("0")
            break
    if len(digits) == 9 and digits.startswith("9"):
        digits = "0" + digits
    return digits if len(digits) == 10 and digits.startswith("09") and digits.isascii() \
        and digits.isdigit() else None


def spreadsheet_safe(value: str) -> str:
    """The value with a leading apostrophe if a spreadsheet would run it as a formula.

    Values starting with = + - @, a tab or a carriage return are escaped, and so are those
    that only apostrophes separate from one ("'=1"), so that from_spreadsheet_safe gives
    back exactly the value this was given, whatever it was."""
    return "'" + value if value.lstrip("'").startswith(_FORMULA_STARTS) else value


def from_spreadsheet_safe(value: str) -> str:
    """Undo spreadsheet_safe (a value it did not escape comes back unchanged)."""
    return value[1:] if value.startswith("'") and value.lstrip("'").startswith(
        _FORMULA_STARTS) else value


def find_by_phone(session: Session, text: str) -> Member:
    """The member with this phone, written any common way (the POS import's rules)."""
    phone = normalize_phone(text)
    found = phone and session.scalar(select(Member).where(Member.phone == phone))
    if not found:
        raise UnknownMember()
    return found


def _parse_birthday(text: str, today: dt.date) -> tuple[dt.date | None, str | None]:
    folded = unicodedata.normalize("NFKC", text).strip()
    if not folded:
        return None, None
    match = _DATE.fullmatch(folded)
    try:
        day = dt.date(*map(int, match.groups())) if match else None
    except ValueError:
        day = None
    if day is None:
        return None, f"bad birthday {text!r}: not a date as YYYY-MM-DD or YYYY/MM/DD"
    if not dt.date(1900, 1, 1) <= day <= today:
        return None, f"bad birthday {text!r}: not between 1900-01-01 and today"
    return day, None


def _parse_points(text: str) -> tuple[int, str | None]:
    folded = unicodedata.normalize("NFKC", text).strip()
    if not folded:
        return 0, None
    if folded.startswith("-") and _INTEGER.fullmatch(folded[1:]) and int(
            folded[1:].replace(",", "")):
        return 0, f"bad points {text!r}: opening points must not be negative"
    if not _INTEGER.fullmatch(folded.removeprefix("+")):
        return 0, f"bad points {text!r}: not a whole number"
    points = int(folded.removeprefix("+").replace(",", ""))
    if points > MAX_OPENING_POINTS:
        return 0, f"bad points {text!r}: more than {MAX_OPENING_POINTS:,}"
    return points, None


# -- import ------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0  # already imported (their external id or member code is known)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    points: int = 0  # opening points credited by this run

    @property
    def rows(self) -> int:
        """Every data row read: each is imported, skipped or an error, none is dropped."""
        return self.imported + self.skipped + len(self.errors)


@dataclass(frozen=True)
class _Row:
    line: int
    external_id: str
    phone: str | None
    name: str
    birthday: dt.date | None
    points: int
    member_code: str | None  # rows of an exported file carry one


class CsvRows:
    """The data rows of a CSV file read_csv checked, read from the file as they are iterated.

    len() is the number of rows. `repeats` holds the external ids ("id") and phones
    ("phone") that may be on more than one row: every one that is, and a few others (about
    one key in a thousand for rows of 40 bytes), the only ones import_members remembers.
    Each iteration reads the file again from where read_csv began: iterate once at a time.
    """

    def __init__(self, stream: TextIO, start: int, count: int,
                 repeats: dict[str, frozenset[str]]) -> None:
        self._stream, self._start, self._count, self.repeats = stream, start, count, repeats

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[int, dict[str | None, str | None]]]:
        self._stream.seek(self._start)
        reader = csv.reader(self._stream)
        try:
            columns = _check_header(next(reader, []))
            yield from _data_rows(reader, columns)
        except csv.Error as exc:  # the file changed since read_csv read it
            raise ImportFileError(detail=f"line {reader.line_num}: {exc}") from None


def read_csv(stream: TextIO) -> CsvRows:
    """The (line number, row) pairs of a CSV file, checked and counted before any is imported.

    The header must name the import columns (phone, name, birthday, points, external_id, in
    any order) or be a file written by export_members (its points_balance is then the opening
    points, member_code also identifies a row already imported, its other columns are
    ignored). Header names are matched without regard to case or surrounding spaces, and a
    UTF-8 byte order mark is dropped. Anything else raises ImportFileError, as does a file the
    csv module cannot read (and UnicodeDecodeError one that is not in the stream's encoding);
    either way before anything is imported: the whole file is read once here, a row at a
    time, to count its rows and find the ids and phones that may repeat (see CsvRows), and
    again as it is imported. So `stream` must be seekable (a file, io.StringIO).

    Line numbers are the file's lines (the header is line 1; a quoted value spanning lines
    counts them all); empty lines are passed over. A row with too many fields has them under
    the key None and one with too few has None values, as csv.DictReader does.
    """
    start = stream.tell()
    size = stream.seek(0, io.SEEK_END) - start
    stream.seek(start)
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError(detail="the file is empty (no header line)")
        count, repeats = _scan(_data_rows(reader, _check_header(header)), bits=size)
    except csv.Error as exc:
        raise ImportFileError(detail=f"line {reader.line_num}: {exc}") from None
    return CsvRows(stream, start, count, repeats)


def _data_rows(reader: Iterator[list[str]], columns: list[str]
               ) -> Iterator[tuple[int, dict[str | None, str | None]]]:
    last = reader.line_num
    for fields in reader:
        line, last = last + 1, reader.line_num
        if not any(value.strip() for value in fields):
            continue
        row: dict[str | None, str | None] = dict(
            itertools.zip_longest(columns, fields[:len(columns)]))
        if len(fields) > len(columns):
            row[None] = fields[len(columns):]
        yield line, row


def _scan(rows: Iterable[tuple[int, Mapping[str | None, object]]], bits: int
          ) -> tuple[int, dict[str, frozenset[str]]]:
    """How many rows there are, and the external ids and phones that may be on several."""
    sightings = _Sightings(bits)
    count = 0
    for line, raw in rows:
        count += 1
        values, _ = _values(raw)
        if values is not None:
            _identify(line, values, sightings)
    return count, {kind: frozenset(keys) for kind, keys in sightings.repeats.items()}


class _Sightings:
    """Notes every key in a Bloom filter of `bits` bits, to find the keys that may repeat.

    A key seen before is always caught (it goes into `repeats`); a new one is taken for
    seen now and then (with 20 bits a key, about once in a thousand), which only costs
    remembering it while importing. A million rows of 40 bytes take 5 MB instead of the
    210 MB that remembering every id and phone with its line takes."""

    HASHES = 4

    def __init__(self, bits: int) -> None:
        self._bits = bytearray(max(bits, 1024) // 8)
        self._size = len(self._bits) * 8
        self.repeats: dict[str, set[str]] = {"id": set(), "phone": set()}

    def first(self, kind: str, key: str, line: int) -> int:
        """This line: the scan reports nothing, it only collects `repeats`."""
        digest = hashlib.blake2b(f"{kind}:{key}".encode(), digest_size=16).digest()
        at, step = int.from_bytes(digest[:8]), int.from_bytes(digest[8:]) | 1
        new = False
        for _ in range(self.HASHES):
            at = (at + step) % self._size
            byte, bit = at >> 3, 1 << (at & 7)
            if not self._bits[byte] & bit:
                self._bits[byte] |= bit
                new = True
        if not new:
            self.repeats[kind].add(key)
        return line


class _FirstLines:
    """The line each external id and phone was first on, for the duplicate report.

    With `watch` (CsvRows.repeats) only the keys in it are remembered: any other is on one
    line only. Without it every key is, about 210 bytes per row for the two."""

    def __init__(self, watch: Mapping[str, AbstractSet[str]] | None) -> None:
        self._watch = watch
        self._lines: dict[str, dict[str, int]] = {"id": {}, "phone": {}}

    def first(self, kind: str, key: str, line: int) -> int:
        if self._watch is not None and key not in self._watch[kind]:
            return line
        return self._lines[kind].setdefault(key, line)


def _check_header(header: list[str]) -> list[str]:
    names = [name.removeprefix("\ufeff").strip().lower() for name in header]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ImportFileError(detail=f"column(s) named twice: {', '.join(twice)}; the "
                              f"columns are {', '.join(IMPORT_COLUMNS)}")
    known = set(IMPORT_COLUMNS) | set(EXPORT_COLUMNS)
    unknown = [n or "(blank)" for n in names if n not in known]
    if "points" not in names and "points_balance" in names:  # an exported file
        names = ["points" if n == "points_balance" else n for n in names]
    missing = [n for n in IMPORT_COLUMNS if n not in names]
    if unknown or missing:
        parts = ([f"unknown column(s): {', '.join(unknown)}"] if unknown else []) + \
                ([f"missing column(s): {', '.join(missing)}"] if missing else [])
        raise ImportFileError(detail="; ".join(parts) + "; the columns are "
                              + ", ".join(IMPORT_COLUMNS))
    return names


def import_members(sessions: sessionmaker[Session], program: Program,
                   rows: Iterable[tuple[int, Mapping[str | None, object]]], now: dt.datetime, *,
                   progress: Callable[[int, int | None], None] | None = None,
                   total: int | None = None, actor: str = "import",
                   batch_size: int = BATCH_SIZE) -> ImportResult:
    """Import (line number, row) pairs (see read_csv) as members without a LINE account.

    Each batch of rows is one transaction (if another writer takes one of its keys
    meanwhile, the batch is redone a row at a time); `progress(done, total)` is called after
    each batch is committed (`total` is len(rows) if it has one, else None).
    Safe to re-run and to run twice at once: a row whose external_id (or, in an exported
    file, member_code) is already in the database is skipped, and its opening points are
    never credited again. Imported members get a member code, no line_user_id, status
    'active', joined_at = now, language zh-TW, the lowest tier, and their opening points as
    one 'adjust' lot (reason "opening balance (import)") that expires like points earned now.
    A value escaped for spreadsheets (see spreadsheet_safe) is read without its apostrophe.
    An external id or phone on two lines of the file is reported on the second with the
    first's line number: for read_csv's rows only the keys its pass found that may repeat
    are remembered, for any other iterable every one (about 210 MB for a million rows).
    """
    if total is None and isinstance(rows, Sized):
        total = len(rows)
    result = ImportResult()
    seen = _FirstLines(rows.repeats if isinstance(rows, CsvRows) else None)
    today = local_date(now, program.timezone)
    done = 0
    pairs = iter(rows)
    while chunk := list(itertools.islice(pairs, batch_size)):
        valid = []
        for line, raw in chunk:
            row, reasons = _parse_row(line, raw, today, seen)
            if reasons:
                result.errors.append((line, "; ".join(reasons)))
            else:
                valid.append(row)
        if valid:
            with transaction(sessions) as session:
                _store(session, program, valid, now, actor, result)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    result.errors.sort(key=lambda error: error[0])
    if result.rows:
        with transaction(sessions) as session:
            audit.record(session, "members.import", member_id=None, actor=actor, at=now,
                         opening_points=result.points, imported=result.imported,
                         skipped=result.skipped, errors=len(result.errors))
    return result


def _parse_row(line: int, raw: Mapping[str | None, object], today: dt.date,
               seen: _FirstLines) -> tuple[_Row | None, list[str]]:
    """The row's values, or None with every reason it cannot be imported."""
    values, problem = _values(raw)
    if values is None:
        return None, [problem]
    phone, reasons = _identify(line, values, seen)
    name = values["name"]
    if len(name) > 200:
        reasons.append("name is longer than 200 characters")
    birthday, problem = _parse_birthday(values["birthday"], today)
    points, problem_points = _parse_points(values["points"])
    reasons += [p for p in (problem, problem_points) if p]
    if reasons:
        return None, reasons
    return _Row(line, values["external_id"], phone, name, birthday, points,
                normalize_code(values["member_code"])), []


def _values(raw: Mapping[str | None, object]) -> tuple[dict[str, str] | None, str]:
    """The row's values (trimmed, spreadsheet escapes undone, the external id in NFKC), or
    None and why the row cannot be read at all."""
    extra = raw.get(None)
    if extra or any(value is None for key, value in raw.items() if key is not None):
        found = sum(1 for k, v in raw.items() if k is not None and v is not None)
        found += len(extra) if isinstance(extra, list | tuple) else 0
        return None, f"{found} fields, but the header has {len(raw) - (None in raw)}"
    values = {key: from_spreadsheet_safe(str(raw.get(key) or "").strip())
              for key in (*IMPORT_COLUMNS, "member_code")}
    if any("\x00" in value for value in values.values()):
        return None, "contains a NUL character"
    values["external_id"] = unicodedata.normalize("NFKC", values["external_id"])
    return values, ""


def _identify(line: int, values: dict[str, str], seen: _FirstLines | _Sightings
              ) -> tuple[str | None, list[str]]:
    """The row's phone (None without one), and what is wrong with its external id and phone.

    An external id or phone seen on an earlier line (even one with other problems) makes
    this row a duplicate: the file does not say which of the two is right."""
    reasons = []
    external_id = values["external_id"]
    if not external_id:
        if not normalize_code(values["member_code"]):  # else known by it (checked when stored)
            reasons.append("missing external_id")
    elif len(external_id) > 128:
        reasons.append("external_id is longer than 128 characters")
    elif (first := seen.first("id", external_id, line)) != line:
        reasons.append(f"duplicate external_id {external_id!r} (first on line {first})")
    phone = normalize_phone(values["phone"]) if values["phone"] else None
    if values["phone"] and phone is None:
        reasons.append(f"bad phone {values['phone']!r}: not a Taiwan mobile number (09xxxxxxxx)")
    elif phone and (first := seen.first("phone", phone, line)) != line:
        reasons.append(f"phone {phone} is also on line {first}")
    return phone, reasons


def _store(session: Session, program: Program, rows: list[_Row], now: dt.datetime, actor: str,
           result: ImportResult) -> None:
    known_ids, known_codes, owners = _holders(session, rows)
    new = []
    for row in rows:
        if row.external_id in known_ids or row.member_code in known_codes:
            result.skipped += 1
        elif row.phone in owners:
            result.errors.append((row.line, f"phone {row.phone} already belongs to member "
                                             f"{owners[row.phone]}"))
        elif not row.external_id:  # a row of an exported file, of a member not in this database
            result.errors.append((row.line, "missing external_id"))
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


def _holders(session: Session, rows: list[_Row]
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


def _add_members(session: Session, program: Program, rows: list[_Row], codes: list[str],
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


def _insert(session: Session, program: Program, row: _Row, now: dt.datetime, actor: str,
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
                result.errors.append((row.line, f"phone {row.phone} already belongs to "
                                                f"member {owners[row.phone]}"))
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


# -- export ------------------------------------------------------------------------------------
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


# -- link --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkResult:
    member: Member  # the LINE member, now holding the record's points and history
    record: Member  # the imported record, now closed
    points: int  # points moved
    lots: int  # lots with points left that moved, each with its own expiry
    purchases: int
    coupons: int
    stamp_cards: int
    stamps_carried: int  # stamps moved onto the LINE member's current card
    filled: tuple[str, ...]  # the LINE member's empty fields filled from the record
    tier_change: TierChange | None


def link_member(session: Session, program: Program, line_member_id: int, member_code: str,
                phone: str, now: dt.datetime, *, actor: str) -> LinkResult:
    """Merge the imported record with this member code and phone into a LINE member, once.

    Refused: an unknown code (LinkUnknownRecord), the LINE member's own code (LinkToSelf),
    another LINE member's code (LinkNotImported), a record already merged
    (LinkAlreadyLinked) or closed/erased (LinkRecordClosed), a phone that is not a mobile
    number (InvalidPhone) or not the record's (LinkPhoneMismatch), a target that is not a
    LINE member (LinkNeedsLineMember) or not active (MemberBlocked). Both rows are locked in
    id order. See the module docstring for what moves and why the ledger stays balanced.
    """
    code = normalize_code(member_code)
    record_id = code and session.scalar(select(Member.id).where(Member.member_code == code))
    if not record_id:
        raise LinkUnknownRecord()
    if record_id == line_member_id:
        raise LinkToSelf()
    locked = {m.id: m for m in lock_members(session, [line_member_id, record_id])}
    member, record = locked.get(line_member_id), locked[record_id]
    if member is None:
        raise UnknownMember()
    if member.line_user_id is None:
        raise LinkNeedsLineMember()
    if member.status != "active":
        raise MemberBlocked()
    if record.line_user_id is not None:
        raise LinkNotImported()
    if record.status == "merged":
        raise LinkAlreadyLinked()
    if record.status != "active":
        raise LinkRecordClosed()
    wanted = normalize_phone(phone)
    if wanted is None:
        raise InvalidPhone()
    if record.phone != wanted:
        raise LinkPhoneMismatch()

    settle_expired(session, record, now)
    settle_expired(session, member, now)
    points = record.points_balance
    lots = session.scalar(select(func.count()).select_from(PointEntry)
                          .where(PointEntry.member_id == record.id, PointEntry.remaining > 0))
    own_card, their_card = _current_card(session, member.id, now), \
        _current_card(session, record.id, now)
    moved = {model.__tablename__: _move(session, model, record.id, member.id)
             for model in (PointEntry, Purchase, Coupon, Redemption, StampCard, Stamp, Notice,
                           PendingAction)}
    _move_tags(session, record.id, member.id)
    carried = _carry_stamps(session, program, member, own_card, their_card, now)
    member.points_balance += points
    record.points_balance = 0
    filled = _fill_in(session, member, record, now)
    record.status = "merged"
    if record.last_purchase_at and (member.last_purchase_at is None
                                    or record.last_purchase_at > member.last_purchase_at):
        member.last_purchase_at = record.last_purchase_at
    member.last_activity_at = now
    counts = dict(lots=lots, purchases=moved["purchases"], coupons=moved["coupons"],
                  stamp_cards=moved["stamp_cards"])
    audit.record(session, MERGED, member_id=record.id, actor=actor, at=now, points_delta=-points,
                 reason=f"merged into member {member.member_code}", into_member_id=member.id,
                 **counts)
    audit.record(session, LINKED, member_id=member.id, actor=actor, at=now, points_delta=points,
                 reason=f"linked imported record {record.member_code}", record_id=record.id,
                 stamps_carried=carried, filled=list(filled), **counts)
    tier_change = evaluate_tier(session, program, member, now)  # the record's purchases count
    session.flush()
    return LinkResult(member, record, points, lots, moved["purchases"], moved["coupons"],
                      moved["stamp_cards"], carried, filled, tier_change)


def link_by_phone(session: Session, program: Program, line_member_code: str, phone: str,
                  now: dt.datetime, *, actor: str) -> LinkResult:
    """Staff's `綁定 MEMBERCODE PHONE`: the customer shows their LINE member card (its code)
    and gives the phone their POS record was imported with; after checking the person,
    the record with that phone merges into their LINE membership (link_member's rules)."""
    wanted = normalize_phone(phone)
    if wanted is None:
        raise InvalidPhone()
    code = normalize_code(line_member_code)
    member = code and session.scalar(select(Member).where(Member.member_code == code))
    if not member:
        raise UnknownMember()
    record = session.scalar(select(Member).where(Member.phone == wanted))
    if record is not None and record.id == member.id:  # the phone came with a linked record
        raise LinkAlreadyLinked()
    if record is None:
        raise LinkNoRecordForPhone()
    try:
        return link_member(session, program, member.id, record.member_code, wanted, now,
                           actor=actor)
    except (LinkNotImported, LinkRecordClosed):  # whose phone it is stays unsaid
        raise LinkNoRecordForPhone() from None


def _has_audit(session: Session, member_id: int, action: str) -> bool:
    return session.scalar(select(AuditLog.id).where(AuditLog.member_id == member_id,
                                                    AuditLog.action == action).limit(1)) is not None


def _move(session: Session, model: type, from_id: int, to_id: int) -> int:
    return session.execute(update(model).where(model.member_id == from_id)
                           .values(member_id=to_id)
                           .execution_options(synchronize_session="fetch")).rowcount


def _move_tags(session: Session, from_id: int, to_id: int) -> None:
    has = select(MemberTag.tag_id).where(MemberTag.member_id == to_id)
    session.execute(update(MemberTag).where(MemberTag.member_id == from_id,
                                            MemberTag.tag_id.not_in(has))
                    .values(member_id=to_id).execution_options(synchronize_session=False))
    session.execute(delete(MemberTag).where(MemberTag.member_id == from_id)
                    .execution_options(synchronize_session=False))


def _current_card(session: Session, member_id: int, now: dt.datetime) -> StampCard | None:
    """The card stamps would go on now (as stamps.active_card picks it), if there is one."""
    card = session.scalar(select(StampCard).where(StampCard.member_id == member_id,
                                                  StampCard.status == "active")
                          .order_by(StampCard.id.desc()))
    return None if card is None or (card.expires_at is not None and card.expires_at <= now) \
        else card


def _carry_stamps(session: Session, program: Program, member: Member,
                  own: StampCard | None, theirs: StampCard | None, now: dt.datetime) -> int:
    """Both had a current card: the record's (now moved) card is closed and its stamps go on
    the LINE member's card, with the usual milestone and completion coupons."""
    if own is None or theirs is None:
        return 0  # the record's current card (if any) simply became the member's
    carried, theirs.stamps, theirs.status = theirs.stamps, 0, "expired"
    if carried:
        session.add(Stamp(card_id=theirs.id, member_id=member.id, count=-carried,
                          local_day=local_date(now, program.timezone), reason="merge",
                          created_at=now))
        session.flush()
        add_stamps(session, program, member, carried, "merge", now)
    return carried


def _fill_in(session: Session, member: Member, record: Member, now: dt.datetime
             ) -> tuple[str, ...]:
    """Move the record's phone, birthday and external id to the member where theirs is empty."""
    filled = tuple(name for name in ("phone", "birthday", "external_id")
                   if getattr(member, name) is None and getattr(record, name) is not None)
    values = {name: getattr(record, name) for name in filled}
    for name in filled:
        setattr(record, name, None)
    session.flush()  # the unique phone and external id leave the record first
    for name, value in values.items():
        setattr(member, name, value)
    if "birthday" in filled:
        member.birthday_set_at = record.birthday_set_at or now
        record.birthday_set_at = None
    return filled


# -- erase -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EraseResult:
    member_id: int
    member_code: str
    already_erased: bool
    records: tuple[int, ...] = ()  # imported records once merged into the member, erased too
    tags: int = 0
    pending_actions: int = 0
    outbox_deleted: int = 0  # pending pushes
    outbox_scrubbed: int = 0  # pushes already made: their recipient and content blanked
    staff: int = 0  # staff records of the person: rights ended, name and LINE id removed
    # that staff member's LINE id, for the caller to unlink their staff menu (not stored)
    unlink_menu_of: str | None = None


def find_member(session: Session, handle: int | str) -> Member:
    """A member by id (int), LINE user id or member code (any case, dashes allowed)."""
    if isinstance(handle, int) and not isinstance(handle, bool):
        found = session.get(Member, handle)
    else:
        text = str(handle).strip()
        found = text and session.scalar(select(Member).where(Member.line_user_id == text))
        code = not found and normalize_code(text)
        if code:
            found = session.scalar(select(Member).where(Member.member_code == code))
    if not found:
        raise UnknownMember()
    return found


def erase_member(session: Session, member_id_or_code: int | str, now: dt.datetime, *,
                 actor: str) -> EraseResult:
    """Remove a member's personal data on request; keep an anonymised ledger for the accounts.

    `member_id_or_code` is a member id (int), LINE user id or member code. Name, phone,
    birthday, external id and LINE user id are blanked and the member is closed (status
    'erased'), and so are the imported records
    once merged into it. Points, purchases, coupons and redemptions stay, referencing the
    member id only. Tags, pending staff actions and pending pushes are deleted; pushes
    already made lose their recipient and content; the LINE user id is replaced in audit and
    ledger actors, and birthdays in the audit trail are removed. The audit rows carry no
    personal data. Idempotent: erasing again changes nothing (by LINE user id it reports
    UnknownMember: that id is no longer stored).
    """
    person = find_member(session, member_id_or_code)
    uid = person.line_user_id
    records = tuple(sorted(
        details["record_id"] for details in session.scalars(
            select(AuditLog.details).where(AuditLog.member_id == person.id,
                                           AuditLog.action == LINKED))
        if isinstance(details, dict) and isinstance(details.get("record_id"), int)))
    locked = lock_members(session, [person.id, *records])
    already = person.status == "erased"
    totals = dict.fromkeys(("tags", "pending_actions", "outbox_deleted", "outbox_scrubbed",
                            "staff"), 0)
    for member in locked:
        counts = _erase_one(session, member)
        if not _has_audit(session, member.id, ERASED):
            merged = {"merged_into": person.id} if member.id != person.id else {}
            audit.record(session, ERASED, member_id=member.id, actor=actor, at=now, **merged,
                         **counts)
        for key, value in counts.items():
            totals[key] += value
    session.flush()
    return EraseResult(person.id, person.member_code, already, records, **totals,
                       unlink_menu_of=uid if totals["staff"] else None)


def _erase_one(session: Session, member: Member) -> dict[str, int]:
    uid = member.line_user_id
    member.display_name, member.phone, member.external_id, member.line_user_id = \
        "", None, None, None
    member.birthday = member.birthday_set_at = None
    member.status = "erased"
    counts = {
        "tags": session.execute(delete(MemberTag).where(MemberTag.member_id == member.id)
                                .execution_options(synchronize_session=False)).rowcount,
        "pending_actions": session.execute(
            delete(PendingAction).where(PendingAction.member_id == member.id)
            .execution_options(synchronize_session=False)).rowcount,
        "outbox_deleted": session.execute(
            delete(OutboxMessage).where(OutboxMessage.member_id == member.id,
                                        OutboxMessage.status == "pending")
            .execution_options(synchronize_session=False)).rowcount,
        "outbox_scrubbed": session.execute(
            update(OutboxMessage).where(OutboxMessage.member_id == member.id,
                                        OutboxMessage.line_user_id != "")
            .values(line_user_id="", payload={"messages": [], "erased": True})
            .execution_options(synchronize_session=False)).rowcount,
    }
    session.execute(update(AuditLog).where(AuditLog.member_id == member.id,
                                           AuditLog.action == "member.birthday")
                    .values(details={}).execution_options(synchronize_session=False))
    if uid:
        actors = [uid, f"line:{uid}"]
        for model in (AuditLog, PointEntry):
            session.execute(update(model).where(model.actor.in_(actors))
                            .values(actor=ERASED_ACTOR)
                            .execution_options(synchronize_session=False))
        _drop_from_batches(session, uid)
        session.execute(update(Coupon).where(Coupon.issue_key == f"welcome:{member.id}")
                        .values(issue_key=welcome_key(uid))  # a key of before welcome_key
                        .execution_options(synchronize_session=False))
        counts["staff"] = _erase_staff(session, uid)
    return counts


def _erase_staff(session: Session, uid: str) -> int:
    """A customer who is (or was) staff: their rights end, and their name and LINE id leave
    the staff list, the invites they used and the audit trail's staff entries."""
    worker = session.scalar(select(Staff).where(Staff.line_user_id == uid))
    invites = set(session.scalars(select(StaffInvite.id).where(StaffInvite.used_by == uid)))
    session.execute(update(StaffInvite).where(StaffInvite.id.in_(invites))
                    .values(used_by=ERASED_ACTOR, name="")
                    .execution_options(synchronize_session=False))
    if worker is not None:
        worker.line_user_id, worker.name, worker.active = None, "", False
    for entry in session.scalars(select(AuditLog).where(AuditLog.action.like("staff.%"))):
        details = entry.details if isinstance(entry.details, dict) else {}
        if (worker and details.get("staff_id") == worker.id
                or details.get("invite_id") in invites) and "name" in details:
            entry.details = {k: v for k, v in details.items() if k != "name"}
    return int(worker is not None)


def _drop_from_batches(session: Session, uid: str) -> None:
    """Take the user id out of multicast recipient lists: sent ones (history) and pending ones
    never attempted. A pending batch already attempted keeps its list: its retry must repeat
    the same request under the same retry key."""
    batches = session.scalars(select(OutboxBatch).where(
        cast(OutboxBatch.recipients, String).contains(uid)).with_for_update()).all()
    for batch in batches:
        recipients = list(batch.recipients.get("to", []))
        if uid not in recipients or (batch.status == "pending" and batch.attempts):
            continue
        recipients = [r for r in recipients if r != uid]
        batch.recipients = {**batch.recipients, "to": recipients}
        if batch.status == "pending" and not recipients:
            batch.status, batch.last_error = "failed", "every recipient was erased"
