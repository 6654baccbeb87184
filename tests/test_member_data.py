"""Member data in bulk: a POS import that reports every bad row and is safe to re-run, CSV
export, linking an imported record to a LINE member once, and erasing personal data."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy import text as sql_text

from bot.db import transaction
from bot.loyalty.codes import format_code
from bot.loyalty.erasure import erase_member
from bot.loyalty.errors import (
    ImportFileError,
    InvalidPhone,
    LinkAlreadyLinked,
    LinkNeedsLineMember,
    LinkNotImported,
    LinkPhoneMismatch,
    LinkRecordClosed,
    LinkToSelf,
    LinkUnknownRecord,
    UnknownMember,
)
from bot.loyalty.import_file import read_csv
from bot.loyalty.ledger import lot_expiry
from bot.loyalty.linking import link_member
from bot.loyalty.member_csv import EXPORT_COLUMNS
from bot.loyalty.member_export import export_members
from bot.loyalty.member_import import OPENING_REASON, import_members
from bot.loyalty.members import register_member, set_birthday
from bot.loyalty.phones import normalize_phone
from bot.loyalty.purchases import refund_order
from bot.models import (
    AuditLog,
    Coupon,
    Member,
    MemberTag,
    OutboxBatch,
    OutboxMessage,
    PendingAction,
    PointEntry,
    Purchase,
    Staff,
    StaffInvite,
    StampCard,
    Tag,
)
from bot.outbox import enqueue
from tests.helpers import balance, buy, join, ledger_totals

DAY = dt.timedelta(days=1)

# Line numbers as the file has them: the header is line 1, the quoted name of P013 spans two.
POS_FILE = """\ufeffExternal_ID, Phone ,name,birthday,points
P001,0912-345-678,王小明,1990-01-05,120
P002,+886 922 333 444,"Lin, Mei",1985/7/9,0
P003,,No Phone,,
,0933111222,No Id,1990-01-01,10
P005,12345,Bad Phone,1990-01-01,10
P006,0933111223,Bad Date,2001-02-29,10
P007,0933111224,Negative,1990-01-01,-5
P008,0933111225,Fraction,1990-01-01,12.5
P001,0933111226,Dup Id,1990-01-01,10
P010,0912345678,Dup Phone,1990-01-01,10
P011,0955 000 111,Taken Phone,,10
P012,0966000111,Too Many,,10,extra
P013,０９７７－０００－１１１,"two
lines",2000-02-29,"1,200"
P014,0988000111,Future,2999-01-01,5

"""
EXPECTED_ERRORS = [  # (line, a part of the reason)
    (5, "missing external_id"),
    (6, "bad phone '12345'"),
    (7, "bad birthday '2001-02-29'"),
    (8, "must not be negative"),
    (9, "bad points '12.5': not a whole number"),
    (10, "duplicate external_id 'P001' (first on line 2)"),
    (11, "phone 0912345678 is also on line 2"),
    (12, "phone 0955000111 already belongs to member "),
    (13, "6 fields, but the header has 5"),
    (16, "bad birthday '2999-01-01': not between 1900-01-01 and today"),
]


def import_rows(sessions, program, rows, now, **kwargs):
    """As `members import` does: each batch committed as it is stored."""
    with sessions() as session:
        return import_members(session, program, rows, now, commit=session.commit, **kwargs)


def run_import(sessions, program, text, now, **kwargs):
    return import_rows(sessions, program, read_csv(io.StringIO(text)), now, **kwargs)


def by_external_id(sessions, external_id):
    with sessions() as session:
        return session.scalar(select(Member).where(Member.external_id == external_id))


def member(sessions, member_id):
    with sessions() as session:
        return session.get(Member, member_id)


def count(sessions, model, *where):
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def member_with_phone(sessions, program, now, user, phone):
    member_id = join(sessions, program, now, user)
    with transaction(sessions) as session:
        session.execute(update(Member).where(Member.id == member_id).values(phone=phone))
    return member_id


def link(sessions, program, line_member_id, code, phone, now):
    with transaction(sessions) as session:
        return link_member(session, program, line_member_id, code, phone, now, actor="staff:1")


# -- import -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "phone"), [
    ("0912345678", "0912345678"), ("0912-345-678", "0912345678"),
    ("+886 912 345 678", "0912345678"), ("+886-912-345-678", "0912345678"),
    ("+886 0912 345 678", "0912345678"), ("886912345678", "0912345678"),
    ("00886912345678", "0912345678"), ("(0912) 345.678", "0912345678"),
    ("０９１２３４５６７８", "0912345678"), ("912345678", "0912345678"),
    ("02-2345-6789", None), ("091234567", None), ("09123456789", None), ("", None),
    ("09l2345678", None), ("+1 912 345 678", None), ("٠٩١٢٣٤٥٦٧٨", None),
])
def test_phones_are_taiwan_mobiles_in_one_form(text, phone):
    assert normalize_phone(text) == phone


def test_every_bad_row_is_reported_with_its_line_and_reason(sessions, program, now):
    taken = member_with_phone(sessions, program, now, "U-taken", "0955000111")
    result = run_import(sessions, program, POS_FILE, now)
    assert (result.imported, result.skipped, result.rows) == (4, 0, 14)  # none dropped
    assert [line for line, _ in result.errors] == [line for line, _ in EXPECTED_ERRORS]
    for (line, reason), (_, expected) in zip(result.errors, EXPECTED_ERRORS, strict=True):
        assert expected in reason, (line, reason)
    assert member(sessions, taken).member_code in dict(result.errors)[12]
    mei = by_external_id(sessions, "P002")
    assert (mei.phone, mei.display_name, mei.birthday) == ("0922333444", "Lin, Mei",
                                                           dt.date(1985, 7, 9))
    two_lines = by_external_id(sessions, "P013")
    assert (two_lines.phone, two_lines.display_name, two_lines.points_balance) == (
        "0977000111", "two\nlines", 1200)
    nobody = by_external_id(sessions, "P003")
    assert (nobody.phone, nobody.birthday, nobody.points_balance) == (None, None, 0)
    ming = by_external_id(sessions, "P001")
    assert len(ming.member_code) == 9 and ming.line_user_id is None
    assert (ming.status, ming.joined_at, ming.language, ming.tier) == (
        "active", now, "zh-TW", program.tiers[0].key)
    assert count(sessions, Member, Member.line_user_id.is_(None)) == 4


def test_a_row_with_several_problems_gives_every_reason(sessions, program, now):
    text = "phone,name,birthday,points,external_id\n0800,x,1990-13-01,abc,\n"
    [(line, reason)] = run_import(sessions, program, text, now).errors
    assert line == 2
    for part in ("missing external_id", "bad phone '0800'", "bad birthday '1990-13-01'",
                 "bad points 'abc'"):
        assert part in reason


@pytest.mark.parametrize(("header", "complaint"), [
    ("", "the file is empty"),
    ("phone,name,birthday,points", "missing column(s): external_id"),
    ("phone,name,birthday,points,external_id,email", "unknown column(s): email"),
    ("phone,name,birthday,external_id", "missing column(s): points"),
    ("phone,phone,name,birthday,points,external_id", "column(s) named twice: phone"),
    ("phone;name;birthday;points;external_id", "unknown column(s)"),
])
def test_a_bad_header_is_one_clear_error_and_nothing_is_imported(header, complaint):
    text = header + "\n0912345678,A,1990-01-01,10,P1\n" if header else ""
    with pytest.raises(ImportFileError) as raised:
        read_csv(io.StringIO(text))
    assert raised.value.code == "import_bad_file"
    assert complaint in raised.value.message("en")
    assert "phone, name, birthday, points, external_id" in raised.value.message("en") \
        or not header


def test_opening_points_are_a_ledger_lot_in_the_balance(sessions, program, now):
    run_import(sessions, program, POS_FILE, now)
    ming = by_external_id(sessions, "P001")
    assert ledger_totals(sessions, ming.id) == (120, 120, 120)
    with sessions() as session:
        [lot] = session.scalars(select(PointEntry).where(PointEntry.member_id == ming.id))
        [log] = session.scalars(select(AuditLog).where(AuditLog.member_id == ming.id,
                                                       AuditLog.action == "points.adjust"))
    assert (lot.kind, lot.points, lot.remaining, lot.reason) == ("adjust", 120, 120,
                                                                 OPENING_REASON)
    assert lot.expires_at == lot_expiry(program, now)
    assert (log.points_delta, log.reason, log.actor) == (120, OPENING_REASON, "import")
    for no_points in ("P002", "P003"):  # no lot for zero opening points
        assert count(sessions, PointEntry,
                     PointEntry.member_id == by_external_id(sessions, no_points).id) == 0


def test_a_rerun_imports_nothing_twice_and_credits_no_points_twice(sessions, program, now):
    member_with_phone(sessions, program, now, "U-taken", "0955000111")
    first = run_import(sessions, program, POS_FILE, now)
    entries, audit_rows = count(sessions, PointEntry), count(sessions, AuditLog)
    again = run_import(sessions, program, POS_FILE, now + DAY)
    assert (again.imported, again.skipped, again.points) == (0, 4, 0)
    assert again.errors == first.errors
    assert count(sessions, Member) == 5
    assert count(sessions, PointEntry) == entries
    assert count(sessions, AuditLog) == audit_rows + 1  # the run's summary only
    assert balance(sessions, by_external_id(sessions, "P013").id) == 1200


def test_a_crash_mid_import_and_a_rerun_never_double_credit(sessions, program, now):
    rows = "".join(f"0911{i:06d},n{i},,{10 + i},E{i}\n" for i in range(7))
    text = "phone,name,birthday,points,external_id\n" + rows
    calls = []

    def crash(done, total):
        calls.append((done, total))
        raise KeyboardInterrupt  # after the first batch is committed

    with pytest.raises(KeyboardInterrupt):
        run_import(sessions, program, text, now, batch_size=3, progress=crash)
    assert calls == [(3, 7)] and count(sessions, Member) == 3
    calls.clear()
    result = run_import(sessions, program, text, now, batch_size=3,
                        progress=lambda done, total: calls.append((done, total)))
    assert (result.imported, result.skipped, result.errors) == (4, 3, [])
    assert calls == [(3, 7), (6, 7), (7, 7)]
    for i in range(7):
        member_id = by_external_id(sessions, f"E{i}").id
        assert ledger_totals(sessions, member_id) == (10 + i,) * 3
    assert count(sessions, PointEntry) == 7


def test_two_imports_of_one_file_at_once_import_each_row_once(sessions, program, now):
    # batches of 5: 60 chances a run for one import to commit between the other's lookup
    # and its insert (with batches of 50 that happened in about one CI run of two)
    rows = "".join(f"0922{i:06d},n{i},,{1 + i},C{i}\n" for i in range(300))
    # a list: two imports cannot read one file object at once
    data = list(read_csv(io.StringIO("phone,name,birthday,points,external_id\n" + rows)))
    start = threading.Barrier(2)

    def run():
        start.wait()
        return import_rows(sessions, program, data, now, batch_size=5)

    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(run) for _ in range(2)]]
    assert [r.errors for r in results] == [[], []]
    assert sum(r.imported for r in results) == 300 and sum(r.skipped for r in results) == 300
    assert count(sessions, Member) == count(sessions, PointEntry) == 300
    with sessions() as session:
        assert session.scalar(select(func.sum(Member.points_balance))) == sum(range(1, 301))


def test_a_row_imported_by_another_import_after_the_lookup_is_skipped_not_refused(
        sessions, engine, program, now, db_url):
    """The other import commits right after this one looked its batch up: every row of the
    batch is then 'already imported', none is refused for its phone."""
    if db_url.startswith("sqlite"):
        pytest.skip("on SQLite a batch's lookup and insert hold the write lock together")
    data = list(read_csv(io.StringIO("phone,name,birthday,points,external_id\n" + "".join(
        f"0922{i:06d},n{i},,5,C{i}\n" for i in range(20)))))
    me, other = threading.get_ident(), []

    def after(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == me and not other and statement.lstrip().startswith(
                "SELECT") and "FROM members" in statement:
            with ThreadPoolExecutor(1) as pool:  # runs to its commit while this one waits
                other.append(pool.submit(import_rows, sessions, program, data, now).result())

    event.listen(engine, "after_cursor_execute", after)
    try:
        mine = import_rows(sessions, program, data, now)
    finally:
        event.remove(engine, "after_cursor_execute", after)
    assert (other[0].imported, other[0].errors) == (20, [])
    assert (mine.imported, mine.skipped, mine.errors) == (0, 20, [])
    assert count(sessions, Member) == count(sessions, PointEntry) == 20


def pos_file(first, rows):
    """A POS export of `rows` rows, phones and external ids counted from `first`."""
    return "phone,name,birthday,points,external_id\n" + "".join(
        f"09{i:08d},Member {i},1990-01-{1 + i % 28:02d},{i % 500},POS-{i}\n"
        for i in range(first, first + rows))


def test_rows_import_in_reported_batches_of_five_hundred_unless_told_otherwise(
        sessions, program, now):
    """How long 10,000 rows take on each database: benchmarks/member_import.py.

    Two imports: one whole default batch (500 rows, as the README says) and what is left,
    then twenty batches of a size passed in. (Twenty default batches, 10,000 rows, tested
    the same at ten times the cost.)"""
    credited = 0
    for text, kwargs, rows, batches in (
            (pos_file(0, 501), {}, 501, [(500, 501), (501, 501)]),
            (pos_file(501, 200), {"batch_size": 10}, 200,
             [(10 * (i + 1), 200) for i in range(20)])):
        seen = []
        result = run_import(sessions, program, text, now, progress=lambda done, total, seen=seen:
                            seen.append((done, total)), **kwargs)
        assert (result.imported, result.errors) == (rows, [])
        assert seen[-1] == (rows, rows) and seen == batches
        credited += result.points
        with sessions() as session:
            assert session.scalar(select(func.sum(Member.points_balance))) == credited
            assert session.scalar(select(func.sum(PointEntry.remaining))) == credited


class LineCountingText(io.StringIO):
    """A text file that counts the lines read from it."""
    lines = 0

    def __next__(self):
        line = super().__next__()
        self.lines += 1
        return line


def test_the_file_is_read_as_it_is_imported_not_first_in_full(sessions, program, now):
    rows = "".join(f"0933{i:06d},n{i},,1,S{i}\n" for i in range(600))
    stream = LineCountingText("phone,name,birthday,points,external_id\n" + rows)
    data = read_csv(stream)
    checked = stream.lines  # the header is checked (and the file counted) before importing
    at_batches = []
    result = import_rows(sessions, program, data, now, batch_size=100,
                         progress=lambda done, total: at_batches.append(
                             (done, total, stream.lines - checked)))
    assert (result.imported, result.errors) == (600, [])
    # each batch is read just before it is stored: the header and 100 rows, then 100 more
    assert at_batches == [(100 * (i + 1), 600, 1 + 100 * (i + 1)) for i in range(6)]


@pytest.mark.parametrize(("last_row", "error"), [
    (b"0955999999,\xff\xfe,,1,B-last\n", UnicodeDecodeError),  # not UTF-8
    (b'0955999999,"' + b"x" * 200_000 + b'",,1,B-last\n', ImportFileError),  # csv refuses it
])
def test_a_file_broken_at_its_end_is_refused_before_anything_is_imported(tmp_path, last_row,
                                                                         error):
    rows = "".join(f"0955{i:06d},n{i},,1,B{i}\n" for i in range(3000))
    path = tmp_path / "pos.csv"
    path.write_bytes(f"phone,name,birthday,points,external_id\n{rows}".encode() + last_row)
    with path.open(encoding="utf-8-sig", newline="") as stream, pytest.raises(error):
        read_csv(stream)


def test_duplicates_are_found_remembering_only_the_ids_and_phones_that_may_repeat(
        sessions, program, now):
    """A Bloom filter over the file finds the few keys that may repeat; only those are
    remembered while importing, and the report is the one remembering every key gives."""
    rows = [f"0944{i:06d},n{i},bad,1,D{i}" for i in range(20_000)]  # bad birthday: no writes
    rows[12_000] = "0944000003,late phone,bad,1,D12000"
    rows[19_999] = "0944019999,late id,bad,1,D7"
    rows[5] = ",no phone,bad,1,D5"
    text = "phone,name,birthday,points,external_id\n" + "\n".join(rows) + "\n"
    data = read_csv(io.StringIO(text))
    assert len(data) == 20_000
    assert {"D7"} <= data.repeats["id"] and {"0944000003"} <= data.repeats["phone"]
    assert len(data.repeats["id"]) + len(data.repeats["phone"]) < 40_000 // 100
    bounded = import_rows(sessions, program, data, now)
    every_key = import_rows(sessions, program, list(read_csv(io.StringIO(text))), now)
    assert bounded.errors == every_key.errors and len(bounded.errors) == 20_000
    reasons = dict(bounded.errors)
    assert "phone 0944000003 is also on line 5" in reasons[12_002]
    assert "duplicate external_id 'D7' (first on line 9)" in reasons[20_001]


# -- export -----------------------------------------------------------------------------------
def test_an_export_reimports_as_all_already_imported(sessions, program, now):
    run_import(sessions, program, POS_FILE, now)
    bob = join(sessions, program, now, "U-bob", display_name="=HYPERLINK(\"x\")")
    link(sessions, program, bob, by_external_id(sessions, "P002").member_code,
         "0922333444", now)
    with transaction(sessions) as session:
        erase_member(session, by_external_id(sessions, "P003").member_code, now, actor="cli")
    out = io.StringIO(newline="")
    with sessions() as session:
        assert export_members(session, out, tz=program.timezone) == 6
    exported = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(exported[0]) == EXPORT_COLUMNS
    rows = {row["member_code"]: row for row in exported}
    ming = rows[by_external_id(sessions, "P001").member_code]
    assert ming == {"member_code": ming["member_code"], "external_id": "P001",
                    "line_linked": "no", "phone": "0912345678", "name": "王小明",
                    "birthday": "1990-01-05", "tier": program.tiers[0].key,
                    "points_balance": "120", "status": "active",
                    "joined_at": "2026-11-22T10:00:00+08:00"}
    linked = rows[member(sessions, bob).member_code]
    assert (linked["line_linked"], linked["external_id"], linked["phone"]) == (
        "yes", "P002", "0922333444")
    assert linked["name"] == "'=HYPERLINK(\"x\")"  # not run as a formula by a spreadsheet

    again = run_import(sessions, program, out.getvalue(), now + DAY)
    assert (again.imported, again.skipped, again.errors) == (0, 6, [])
    assert count(sessions, Member) == 6


# What a spreadsheet would run as a formula (a value starting with = + - @, a tab or a
# carriage return), an escaped-looking value that must come back as it was, and one to leave.
RISKY = ['=HYPERLINK("http://x.example","click")', "@SUM(1)", "-2+3", "+1", "\t=1+1",
         "\r=1+1", "'=1", "''@x", "'plain"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def members_with_risky_values(sessions, program, now):
    """One imported member per RISKY value, as its external id and its name (written
    directly: an import trims a leading tab), and one with a risky tier key."""
    rows = "".join(f"09110000{i:02d},n{i},,5,R{i}\n" for i in range(len(RISKY)))
    run_import(sessions, program, "phone,name,birthday,points,external_id\n" + rows, now)
    with transaction(sessions) as session:
        for i, value in enumerate(RISKY):
            session.execute(update(Member).where(Member.external_id == f"R{i}")
                            .values(external_id=value, display_name=value))
        session.execute(update(Member).where(Member.external_id == RISKY[0])
                        .values(tier="-tier"))


def exported(sessions, program):
    out = io.StringIO(newline="")
    with sessions() as session:
        export_members(session, out, tz=program.timezone)
    return out.getvalue()


def test_an_export_escapes_every_value_a_spreadsheet_would_run_as_a_formula(
        sessions, program, now):
    members_with_risky_values(sessions, program, now)
    rows = list(csv.DictReader(io.StringIO(exported(sessions, program))))
    assert len(rows) == len(RISKY)
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(FORMULA_STARTS), (column, value)
    by_id = {row["external_id"]: row for row in rows}
    assert set(by_id) == {"'" + v if v.lstrip("'").startswith(FORMULA_STARTS) else v
                          for v in RISKY}
    assert by_id["'-2+3"]["name"] == "'-2+3" and by_id["'\t=1+1"]["name"] == "'\t=1+1"
    assert by_id["'plain"]["name"] == "'plain"  # nothing to escape: left as it is
    assert by_id["'" + RISKY[0]]["tier"] == "'-tier"


def test_an_escaped_export_imports_back_to_the_values_it_was_made_from(
        sessions, program, now):
    members_with_risky_values(sessions, program, now)
    rows = list(csv.DictReader(io.StringIO(exported(sessions, program))))
    for row in rows:  # by external id alone, as from a POS that kept them
        del row["member_code"]
    again = run_import(sessions, program, as_csv(rows), now + DAY)
    assert (again.imported, again.skipped, again.errors) == (0, len(RISKY), [])

    for row in rows:  # as new members: each name comes back as it was
        row["external_id"], row["phone"] = row["external_id"] + "-copy", ""
    copies = run_import(sessions, program, as_csv(rows), now + DAY)
    assert (copies.imported, copies.errors) == (len(RISKY), [])
    for value in RISKY:
        assert by_external_id(sessions, value + "-copy").display_name == value


def as_csv(rows):
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# -- link -------------------------------------------------------------------------------------
def lots(sessions, member_id):
    with sessions() as session:
        return {lot.id: (lot.expires_at, lot.remaining) for lot in session.scalars(
            select(PointEntry).where(PointEntry.member_id == member_id,
                                     PointEntry.remaining > 0))}


def test_linking_merges_the_record_into_the_line_member_once(sessions, program, now):
    run_import(sessions, program, POS_FILE, now)
    record = by_external_id(sessions, "P001")
    store = buy(sessions, program, record.id, 600, now + DAY, order_id="pos-1")  # by code
    later = now + dt.timedelta(days=70)  # another month: the member's own lot expires later
    alice = join(sessions, program, later)
    buy(sessions, program, alice, 300, later)
    with transaction(sessions) as session:
        vip, regular = Tag(name="vip"), Tag(name="regular")
        session.add_all([vip, regular])
        session.flush()
        session.add_all([MemberTag(member_id=m, tag_id=t.id, tagged_at=now)
                         for m, t in ((record.id, vip), (record.id, regular), (alice, regular))])
    before = {"record": lots(sessions, record.id), "alice": lots(sessions, alice)}
    points = balance(sessions, record.id)
    mine = balance(sessions, alice)
    assert points == 120 + store.points and mine == 10

    result = link(sessions, program, alice, format_code(record.member_code).lower(),
                  "+886 912-345-678", later + DAY)
    assert (result.points, result.lots, result.purchases) == (points, 2, 1)
    assert result.filled == ("phone", "birthday", "external_id")
    assert result.stamps_carried == 2  # the record's card (visit + starter) onto alice's
    assert ledger_totals(sessions, alice) == (points + mine,) * 3
    assert ledger_totals(sessions, record.id) == (0, 0, 0)
    assert lots(sessions, alice) == before["record"] | before["alice"]  # expiries kept
    assert {e for e, _ in before["record"].values()} != {e for e, _ in before["alice"].values()}
    merged, linked = member(sessions, record.id), member(sessions, alice)
    assert (merged.status, merged.phone, merged.external_id, merged.points_balance) == (
        "merged", None, None, 0)
    assert (linked.phone, linked.external_id, linked.birthday) == (
        "0912345678", "P001", dt.date(1990, 1, 5))
    assert count(sessions, Purchase, Purchase.member_id == alice) == 2
    assert count(sessions, MemberTag, MemberTag.member_id == alice) == 2
    assert count(sessions, MemberTag, MemberTag.member_id == record.id) == 0
    with sessions() as session:
        cards = session.scalars(select(StampCard).where(StampCard.member_id == alice)
                                .order_by(StampCard.id)).all()
        assert [(c.status, c.stamps) for c in cards] == [("expired", 0), ("active", 4)]
        logs = session.execute(select(AuditLog.member_id, AuditLog.points_delta)
                               .where(AuditLog.action.in_(["member.merged", "member.link"]))
                               .order_by(AuditLog.id)).all()
        assert logs == [(record.id, -points), (alice, points)]
        for member_id, cached in ((record.id, 0), (alice, points + mine)):
            assert session.scalar(select(func.sum(AuditLog.points_delta))
                                  .where(AuditLog.member_id == member_id)) == cached

    with pytest.raises(LinkAlreadyLinked):
        link(sessions, program, alice, record.member_code, "0912345678", later + 2 * DAY)
    bob = join(sessions, program, later, "U-bob")
    with pytest.raises(LinkAlreadyLinked):
        link(sessions, program, bob, record.member_code, "0912345678", later + 2 * DAY)
    assert ledger_totals(sessions, alice) == (points + mine,) * 3

    with transaction(sessions) as session:  # a refund of the record's order, after the merge
        refund_order(session, program, 600, later + 3 * DAY, source="pos", order_id="pos-1",
                     refund_id="r-1", actor="test")
    assert ledger_totals(sessions, alice) == (points + mine - store.points,) * 3


def test_a_link_is_refused_for_the_wrong_record_or_phone(sessions, program, now):
    run_import(sessions, program, POS_FILE, now)
    alice = join(sessions, program, now)
    bob = join(sessions, program, now, "U-bob")
    mei = by_external_id(sessions, "P002")
    refusals = [
        (LinkPhoneMismatch, alice, mei.member_code, "0912345678"),
        (InvalidPhone, alice, mei.member_code, "22333444"),
        (LinkUnknownRecord, alice, "ZZZZZZZZZ", "0922333444"),
        (LinkUnknownRecord, alice, "not a code", "0922333444"),
        (LinkToSelf, alice, member(sessions, alice).member_code, "0922333444"),
        (LinkNotImported, alice, member(sessions, bob).member_code, "0922333444"),
        (LinkNeedsLineMember, by_external_id(sessions, "P001").id, mei.member_code,
         "0922333444"),
        (UnknownMember, 999_999, mei.member_code, "0922333444"),
    ]
    for error, target, code, phone in refusals:
        with pytest.raises(error) as raised:
            link(sessions, program, target, code, phone, now)
        assert raised.value.code.startswith(("link_", "invalid_phone", "not_found"))
        assert raised.value.message("zh-TW") and raised.value.message("en")
    assert member(sessions, mei.id).status == "active"
    assert count(sessions, AuditLog, AuditLog.action.like("member.link%")) == 0

    with transaction(sessions) as session:
        erase_member(session, mei.id, now, actor="cli")
    with pytest.raises(LinkRecordClosed):
        link(sessions, program, alice, mei.member_code, "0922333444", now)


# -- erase ------------------------------------------------------------------------------------
def test_erasing_removes_personal_data_and_keeps_the_ledger(sessions, program, now):
    run_import(sessions, program, POS_FILE, now)
    with transaction(sessions) as session:
        carol = register_member(session, program, "U-carol", now,
                                display_name="Carol 陳").member.id
        set_birthday(session, carol, "1990-01-05", now, actor="line:U-carol")
    buy(sessions, program, carol, 900, now)
    record = by_external_id(sessions, "P001")
    link(sessions, program, carol, record.member_code, "0912345678", now)
    with transaction(sessions) as session:
        staff = Staff(line_user_id="U-staff", name="Ann", created_at=now)
        tag = Tag(name="regular")
        session.add_all([staff, tag])
        session.flush()
        session.add_all([MemberTag(member_id=carol, tag_id=tag.id, tagged_at=now),
                         PendingAction(token="t-1", staff_id=staff.id, member_id=carol,
                                       amount=5000, created_at=now, expires_at=now + DAY)])
        row = session.get(Member, carol)
        sent = enqueue(session, row, "receipt", "receipt:1", [{"type": "text",
                                                               "text": "Hi Carol"}], now)
        session.get(OutboxMessage, sent.id).status = "sent"
        enqueue(session, row, "nudge", "nudge:1", [{"type": "text", "text": "Carol!"}], now)
        session.add(OutboxBatch(recipients={"to": ["U-carol", "U-dave"]}, payload={},
                                status="sent", retry_key="k-1", created_at=now))
    totals = ledger_totals(sessions, carol)
    purchases, coupons = count(sessions, Purchase), count(sessions, Coupon)

    with transaction(sessions) as session:
        result = erase_member(session, "U-carol", now + DAY, actor="cli:owner")
    assert not result.already_erased and result.records == (record.id,)
    assert (result.tags, result.pending_actions, result.outbox_deleted,
            result.outbox_scrubbed) == (1, 1, 1, 1)
    erased = member(sessions, carol)
    assert (erased.display_name, erased.phone, erased.birthday, erased.external_id,
            erased.line_user_id, erased.status) == ("", None, None, None, None, "erased")
    assert member(sessions, record.id).display_name == ""  # the merged POS record too
    assert ledger_totals(sessions, carol) == totals and totals[0] > 0
    assert (count(sessions, Purchase), count(sessions, Coupon)) == (purchases, coupons)
    assert count(sessions, MemberTag) == count(sessions, PendingAction) == 0
    with sessions() as session:
        assert session.execute(select(OutboxMessage.line_user_id, OutboxMessage.status)
                               ).all() == [("", "sent")]
        assert session.scalar(select(OutboxBatch.recipients)) == {"to": ["U-dave"]}
        trail = json.dumps([[a.actor, a.reason, a.details] for a in session.scalars(
            select(AuditLog))], ensure_ascii=False)
        entries = json.dumps([list(row) for row in session.execute(
            select(PointEntry.actor, PointEntry.reason))], ensure_ascii=False)
        erase_logs = session.execute(select(AuditLog.member_id, AuditLog.actor, AuditLog.details)
                                     .where(AuditLog.action == "member.erase")
                                     .order_by(AuditLog.member_id)).all()
    for personal in ("U-carol", "Carol", "0912345678", "1990-01-05", "P001"):
        assert personal not in trail and personal not in entries, personal
    assert [(m, a, d.get("merged_into")) for m, a, d in erase_logs] == [
        (record.id, "cli:owner", carol), (carol, "cli:owner", None)]

    with transaction(sessions) as session:  # again: nothing more to do, no second audit row
        assert erase_member(session, erased.member_code.lower(), now + 2 * DAY,
                            actor="cli:owner").already_erased
    with pytest.raises(UnknownMember), transaction(sessions) as session:
        erase_member(session, "U-carol", now + 2 * DAY, actor="cli:owner")
    assert count(sessions, AuditLog, AuditLog.action == "member.erase") == 2  # and the record
    with transaction(sessions) as session:  # following again later makes a new member
        assert register_member(session, program, "U-carol", now + 3 * DAY).member.id != carol


def test_upgrading_marks_records_closed_before_as_merged_or_erased(db_url, sessions, program,
                                                                   now):
    from bot import migrate
    from bot.loyalty import audit

    sessions.kw["bind"].dispose()
    migrate.downgrade(db_url, "0007")
    try:
        with transaction(sessions) as session:
            ids = {}
            for n, (user, actions) in enumerate((("U-merged", ["member.merged"]),
                                                 ("U-erased", ["member.erase"]),
                                                 ("U-both", ["member.merged", "member.erase"]),
                                                 ("U-blocked", []))):
                # in SQL: members (and coupons) have later columns the ORM would write
                ids[user] = session.execute(sql_text(
                    "INSERT INTO members (line_user_id, member_code, display_name, language, "
                    "tier, tier_since, status, points_balance, joined_at, last_activity_at) "
                    "VALUES (:user, :code, '', 'zh-TW', 'member', :now, 'blocked', 0, :now, "
                    ":now) RETURNING id"), {"user": user, "code": f"OLD{n}",
                                            "now": now.replace(tzinfo=None)}).scalar_one()
                for action in actions:
                    audit.record(session, action, member_id=ids[user], actor="test", at=now)
    finally:  # the PostgreSQL schema is the whole run's: never leave it downgraded
        sessions.kw["bind"].dispose()
        migrate.upgrade(db_url)
    with sessions() as session:
        assert {user: session.get(Member, i).status for user, i in ids.items()} == {
            "U-merged": "merged", "U-erased": "erased", "U-both": "erased",
            "U-blocked": "blocked"}


def test_a_merged_record_or_an_erased_member_earns_nothing_and_staff_are_told_why(
        sessions, program, now):
    from bot.loyalty.errors import MemberClosed

    run_import(sessions, program, POS_FILE, now)
    record = by_external_id(sessions, "P001")
    alice = join(sessions, program, now)
    link(sessions, program, alice, record.member_code, "0912345678", now)
    with pytest.raises(MemberClosed, match="merged"):
        buy(sessions, program, record.id, 500, now + DAY)  # the old POS card
    bob = join(sessions, program, now, user="U-bob")
    with transaction(sessions) as session:
        erase_member(session, bob, now, actor="test")
    with pytest.raises(MemberClosed):
        buy(sessions, program, bob, 500, now + DAY)
    assert balance(sessions, record.id) == 0
    assert member(sessions, alice).points_balance == balance(sessions, alice)


# -- erasure of a customer who is also staff, and their next message ----------------------------
def test_erasing_a_staff_member_ends_their_rights_and_leaves_no_name_or_line_id(
        sessions, program, now):
    from bot.loyalty.staff import add_staff, create_invite

    kai = join(sessions, program, now, "U" + "k" * 32, display_name="Kai")
    with transaction(sessions) as session:
        add_staff(session, "U" + "k" * 32, now, name="Kai Lin", actor="cli:owner")
        code = create_invite(session, now, name="Kai Lin", actor="cli:owner")
        session.execute(update(StaffInvite)
                        .values(used_by="U" + "k" * 32, used_at=now))
    with transaction(sessions) as session:
        result = erase_member(session, kai, now, actor="cli:owner")
    assert result.staff == 1 and result.unlink_menu_of == "U" + "k" * 32
    with sessions() as session:
        worker = session.scalars(select(Staff)).one()
        assert (worker.line_user_id, worker.name, worker.active) == (None, "", False)
        everything = json.dumps([
            [a.actor, a.details] for a in session.scalars(select(AuditLog))], default=str)
        invites = [(i.used_by, i.name) for i in session.scalars(
            select(StaffInvite))]
    assert "k" * 32 not in everything and "Kai Lin" not in everything
    assert all("k" * 32 not in (used or "") and name == "" for used, name in invites)
    assert code


def test_an_erased_customer_who_writes_again_joins_afresh_without_a_second_welcome_gift(
        sessions, program, now):
    first = join(sessions, program, now, "U-dana")
    with transaction(sessions) as session:
        erase_member(session, first, now, actor="cli:owner")
    again = join(sessions, program, now + DAY, "U-dana")
    assert again != first
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Coupon).where(
            Coupon.member_id == again)) == 0
        assert session.scalar(select(func.count()).select_from(Coupon)) == 1
    other = join(sessions, program, now + DAY, "U-erin")  # everyone else still gets theirs
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Coupon).where(
            Coupon.member_id == other)) == 1
