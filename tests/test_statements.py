"""The hot paths stay lean: a row already locked is not locked again, a purchase asks what it
needs in one statement, and the webhook's events run a known number of statements."""

from __future__ import annotations

import contextlib
import re

import pytest
from sqlalchemy import event, select

from bot.db import transaction
from bot.loyalty.ledger import lock_member
from bot.loyalty.members import find_by_code
from bot.models import Member
from tests.helpers import buy, join


@contextlib.contextmanager
def statements(engine):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(re.sub(r"\s+", " ", statement))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_member_locked_in_this_transaction_is_not_selected_again(engine, sessions, program,
                                                                   now):
    code = _code(sessions, join(sessions, program, now))
    with transaction(sessions) as session:
        member = find_by_code(session, code, lock=True)
        with statements(engine) as seen:
            assert lock_member(session, member.id) is member
            with session.begin_nested():
                assert lock_member(session, member.id) is member
        assert [s for s in seen if "members" in s] == []


def test_a_lock_taken_in_a_savepoint_that_rolled_back_is_taken_again(engine, sessions,
                                                                     program, now):
    member_id = join(sessions, program, now)
    with transaction(sessions) as session:
        try:
            with session.begin_nested():
                lock_member(session, member_id).points_balance = 99
                raise RuntimeError
        except RuntimeError:
            pass
        with statements(engine) as seen:
            member = lock_member(session, member_id)
        assert member.points_balance == 0
        assert len([s for s in seen if s.startswith("SELECT members.")]) == 1


def test_a_lock_from_an_earlier_transaction_is_not_trusted(engine, sessions, program, now):
    member_id = join(sessions, program, now)
    with sessions() as session:
        with session.begin():
            lock_member(session, member_id)
        with session.begin(), statements(engine) as seen:
            lock_member(session, member_id)
    assert len([s for s in seen if s.startswith("SELECT members.")]) == 1


def test_a_purchase_reads_its_facts_once_and_does_not_relock_or_reread(engine, sessions,
                                                                       program, now):
    member_id = join(sessions, program, now)
    buy(sessions, program, member_id, 100, now)
    with statements(engine) as seen:
        result = buy(sessions, program, member_id, 300, now)
    selects = [s for s in seen if s.startswith("SELECT")]
    assert result.points == 10 and not result.duplicate
    assert len(selects) == 2, selects  # the member (locked), then the purchase's facts
    assert not any("FROM purchases WHERE purchases.source" in s for s in seen)


def test_a_repeated_order_is_found_after_its_insert_is_skipped(sessions, program, now):
    member_id = join(sessions, program, now)
    first = buy(sessions, program, member_id, 300, now, order_id="same")
    again = buy(sessions, program, member_id, 300, now, order_id="same")
    assert again.duplicate and again.purchase.id == first.purchase.id
    assert again.points == first.points


def _code(sessions, member_id: int) -> str:
    with sessions() as session:
        return session.get(Member, member_id).member_code



def test_the_sender_and_their_staff_record_come_in_one_statement(engine, sessions, program,
                                                                 now):
    from bot.loyalty.errors import UnknownCode
    from bot.loyalty.staff import (
        FAILED_LIMIT,
        add_staff,
        guessing,
        record_refusal,
        remove_staff,
        sender,
    )

    staff_user, customer = "U" + "a" * 32, "U" + "b" * 32
    join(sessions, program, now, user=staff_user)
    join(sessions, program, now, user=customer)
    with transaction(sessions) as session:
        add_staff(session, staff_user, now, name="Mei", actor="test")
    with sessions() as session, statements(engine) as seen:
        member, worker = sender(session, staff_user, now)
        assert (member.line_user_id, worker.name) == (staff_user, "Mei")
        assert not guessing(session, worker, now)  # counted with the sender
        assert sender(session, customer, now)[1] is None
        assert sender(session, "U-nobody", now) == (None, None)
    assert len([s for s in seen if s.startswith("SELECT")]) == 3
    with transaction(sessions) as session:
        for _ in range(FAILED_LIMIT):
            record_refusal(session, worker, "verify", UnknownCode(), now)
    with transaction(sessions) as session, statements(engine) as seen:
        member, worker = sender(session, staff_user, now)
        assert guessing(session, worker, now)  # the refusals are counted
        assert len([s for s in seen if s.startswith("SELECT")]) == 1
        record_refusal(session, worker, "verify", UnknownCode(), now)
        assert guessing(session, worker, now)  # after a refusal, asked again
        assert len([s for s in seen if s.startswith("SELECT")]) == 2
    with transaction(sessions) as session:
        remove_staff(session, staff_user, now, actor="test")
    with sessions() as session:
        assert sender(session, staff_user, now)[1] is None


def test_a_summary_reads_card_and_spend_together_and_starts_a_missing_card(engine, sessions,
                                                                           program, now):
    from bot.loyalty.summary import member_summary
    from bot.models import StampCard

    member_id = join(sessions, program, now)
    buy(sessions, program, member_id, 300, now)
    with transaction(sessions) as session:
        for card in session.query(StampCard).filter_by(member_id=member_id):
            card.status = "expired"
    with transaction(sessions) as session, statements(engine) as seen:
        summary = member_summary(session, program, session.get(Member, member_id), now)
    assert (summary.spend, summary.stamps, summary.stamp_goal) == (300, 0, program.stamps.goal)
    assert len([s for s in seen if "stamp_cards" in s and s.startswith("SELECT")]) == 1


def test_a_card_screen_asks_the_outbox_only_with_the_member(app, client, fake_line):
    """A tap on 點數 runs its known statements: the event's claim, the member read with
    whether anything waits for them, the points, the card with the spend, the wallet and the
    tap count. Something waiting is then taken and rides the reply."""
    from bot.loyalty.timeutil import utcnow
    from bot.outbox import enqueue_many
    from tests.line_helpers import follow, post, postback, user_id

    state, alice = app.extensions["loyalty"], user_id(1)
    post(client, [follow(alice), postback(alice, "action=points")])  # (starts a card)
    with statements(state.engine) as seen:
        post(client, [postback(alice, "action=points")])
    work = [" ".join(re.match(r"(SELECT|INSERT|WITH) (?:INTO )?(\w+)", s).groups())
            for s in seen if not s.startswith(("BEGIN", "PRAGMA", "SELECT set_config"))]
    reads = ["SELECT members", "SELECT point_entries", "SELECT stamp_cards", "SELECT coupons"]
    if state.engine.dialect.name == "sqlite":  # read first, beside the writer (db.reading)
        assert work == [*reads, "INSERT processed_events", "INSERT tap_counts"], work
    else:  # read first, then the claim and the count in one statement
        assert work == [*reads, "WITH unsynced"], work  # (then claimed, then the count)
    with transaction(state.sessions) as session:
        member = session.scalar(select(Member).where(Member.line_user_id == alice))
        enqueue_many(session, state.program, [(member, "nudge", "nudge:1", [
            {"type": "text", "text": "nudge"}])], utcnow())
    post(client, [postback(alice, "action=points")])
    assert [m["type"] for m in fake_line.replies()[-1]["messages"]] == ["flex", "text"]


def test_a_staff_purchase_asks_the_outbox_only_with_the_members(app, client, fake_line):
    """`集點 CODE AMOUNT` reads the clerk with their guesses and whether anything waits for
    them, and the customer (locked) with whether anything waits for them: with nothing
    waiting, neither the reply nor the receipt push asks the outbox again, and no separate
    count of guesses is made. Something waiting for the customer still joins the push."""
    from bot.loyalty.staff import add_staff
    from bot.loyalty.timeutil import utcnow
    from bot.outbox import enqueue_many
    from tests.line_helpers import follow, post, text, user_id

    state, alice, clerk = app.extensions["loyalty"], user_id(1), user_id(2)
    post(client, [follow(alice), follow(clerk)])
    with transaction(state.sessions) as session:
        add_staff(session, clerk, utcnow(), name="阿明", actor="test")
        member = session.scalar(select(Member).where(Member.line_user_id == alice))
        code = member.member_code
    with statements(state.engine) as seen:
        post(client, [text(clerk, f"集點 {code} 120")])
    fake_line.wait_for(lambda: fake_line.pushes())
    reads = [re.match(r"SELECT (.{0,60})", s).group(1) for s in seen if s.startswith("SELECT")]
    assert not [r for r in reads if "outbox" in r or "count(*)" in r], reads
    assert len([s for s in seen if s.startswith("UPDATE members")]) == 1  # all its changes
    assert len(fake_line.pushes()) == 1 and len(fake_line.pushes()[0]["messages"]) == 1
    with transaction(state.sessions) as session:
        enqueue_many(session, state.program, [(session.get(Member, member.id), "nudge",
                                               "nudge:1", [{"type": "text", "text": "nudge"}])],
                     utcnow())
    post(client, [text(clerk, f"集點 {code} 230")])
    fake_line.wait_for(lambda: len(fake_line.pushes()) == 2)
    assert [m.get("text") for m in fake_line.pushes()[-1]["messages"]][0] == "nudge"
    assert len(fake_line.pushes()[-1]["messages"]) == 2  # the nudge, then the receipt


def test_a_coupon_is_verified_with_one_read_of_it_and_its_owner(app, client, fake_line):
    """`核銷 CODE` reads the clerk (with guesses and waits) and the coupon with its owner and
    whether anything waits for them, once: the owner's "coupon used" push needs no other
    read, and nothing else is selected."""
    from bot.loyalty.coupons import issue_coupon
    from bot.loyalty.staff import add_staff
    from bot.loyalty.timeutil import utcnow
    from tests.line_helpers import follow, post, text, user_id

    state, alice, clerk = app.extensions["loyalty"], user_id(1), user_id(2)
    post(client, [follow(alice), follow(clerk)])
    with transaction(state.sessions) as session:
        add_staff(session, clerk, utcnow(), name="阿明", actor="test")
        member = session.scalar(select(Member).where(Member.line_user_id == alice))
        template = next(iter(state.program.coupons))
        code = issue_coupon(session, state.program, member.id, template, utcnow(),
                            reason="test").code
    with statements(state.engine) as seen:
        post(client, [text(clerk, f"核銷 {code}")])
    fake_line.wait_for(lambda: fake_line.pushes())
    reads = [re.match(r"SELECT (.{0,40})", s).group(1) for s in seen if s.startswith("SELECT")
             and not s.startswith("SELECT set_config")]
    assert len(reads) == 2, reads  # the clerk, the coupon with its owner
    (push,) = fake_line.pushes()
    assert push["to"] == alice


@contextlib.contextmanager
def modes(engine):
    """Each statement, with how it ran: on SQLite the statement list shows BEGIN (a reader)
    and BEGIN IMMEDIATE (a writer); on PostgreSQL, whether its connection was autocommit."""
    seen: list[tuple[str, bool | None]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        auto = getattr(conn.connection.dbapi_connection, "autocommit", None) \
            if engine.dialect.name == "postgresql" else None
        seen.append((re.sub(r"\s+", " ", statement), auto))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_screen_is_read_first_and_then_claimed_and_counted_in_one_short_step(app, client,
                                                                            fake_line):
    """A card screen is read in a transaction that only reads: on SQLite a plain (deferred)
    one, which takes no write lock and waits for no writer, then a write transaction, begun
    IMMEDIATE, only claims the event and counts the tap; on PostgreSQL each read is its own
    (autocommit) and the claim and count are one statement. A first tap, which starts a
    stamp card, and a tap by someone who is not yet a member are written whole as before."""
    from bot.models import StampCard
    from tests.line_helpers import follow, post, postback, user_id

    state, alice, bob = app.extensions["loyalty"], user_id(1), user_id(2)
    sqlite = state.engine.dialect.name == "sqlite"
    post(client, [follow(alice)])
    with modes(state.engine) as first:
        post(client, [postback(alice, "action=stamps")])
    assert any(s.startswith("INSERT INTO stamp_cards") for s, _ in first)  # written
    with modes(state.engine) as seen:
        post(client, [postback(alice, "action=stamps")])
    if sqlite:
        begins = [i for i, (s, _) in enumerate(seen) if s.startswith("BEGIN")]
        assert [seen[i][0] for i in begins] == ["BEGIN", "BEGIN IMMEDIATE"]
        assert all(s.startswith("SELECT") for s, _ in seen[1:begins[1]])
        writer = [re.match(r"(\w+ (?:INTO )?\w+)", s).group(1) for s, _ in seen[begins[1] + 1:]]
        assert writer == ["INSERT INTO processed_events", "INSERT INTO tap_counts"], writer
    else:
        work = [(s, auto) for s, auto in seen if not s.startswith("SELECT set_config")]
        assert all(auto for _, auto in work), work
        assert all(s.startswith("SELECT") for s, _ in work[:-1])
        assert work[-1][0].startswith("WITH unsynced AS (SELECT set_config('synchronous_commit',"
                                      " 'off', true)), claimed AS (INSERT INTO processed_events")
    with modes(state.engine) as joining:
        post(client, [postback(bob, "action=points")])  # never followed: joins now
    assert any(s.startswith("INSERT INTO members") for s, _ in joining)
    if sqlite:
        assert [s for s, _ in joining if s.startswith("BEGIN")] == ["BEGIN", "BEGIN IMMEDIATE"]
    else:
        assert not [s for s, auto in joining if s.startswith("INSERT") and auto]
    assert len(fake_line.replies()) == 4  # the welcome, then every tap
    with transaction(state.sessions) as session:
        assert session.query(StampCard).count() == 2  # alice's, bob's


def test_a_redelivered_screen_is_answered_and_counted_once(app, client, fake_line):
    from bot.models import TapCount
    from tests.line_helpers import follow, post, postback, user_id

    state, alice = app.extensions["loyalty"], user_id(1)
    post(client, [follow(alice), postback(alice, "action=points")])
    tap = postback(alice, "action=wallet")
    post(client, [tap])
    post(client, [tap])  # LINE sends it again
    assert len(fake_line.replies()) == 3  # the welcome, the points tap, the wallet once
    with transaction(state.sessions) as session:
        taps = {row.action: row.taps for row in session.scalars(select(TapCount))}
    assert taps == {"points": 1, "wallet": 1}


def test_a_screen_that_writes_is_written_whole_in_the_event_transaction(app, client,
                                                                        fake_line, monkeypatch):
    """A screen's read on SQLite cannot write: a change it makes through the ORM, or any
    statement but a SELECT, raises NeedsWrite before it reaches SQLite. The tap then runs
    again as a writer, and its write is made once, with the event's claim."""
    from bot.db import core
    from bot.line import handlers
    from bot.loyalty.taps import count_tap
    from bot.models import TapCount
    from tests.line_helpers import follow, post, postback, user_id

    state, alice = app.extensions["loyalty"], user_id(1)
    post(client, [follow(alice), postback(alice, "action=points")])
    shown = handlers.CUSTOMER_ACTIONS["points"]

    def counting_too(session, env, member, data):  # a Core write, as a later change might
        count_tap(core(session), env.now.date(), "test", "extra")
        return shown(session, env, member, data)

    monkeypatch.setitem(handlers.CUSTOMER_ACTIONS, "points", counting_too)
    with statements(state.engine) as seen:
        post(client, [postback(alice, "action=points")])
    assert len(fake_line.replies()) == 3  # the welcome, both taps
    with transaction(state.sessions) as session:
        taps = {(row.source, row.action): row.taps for row in session.scalars(select(TapCount))}
    assert taps[("test", "extra")] == 1 and taps[("menu", "points")] == 2
    if state.engine.dialect.name == "sqlite":
        assert [s for s in seen if s.startswith("BEGIN")] == ["BEGIN", "BEGIN IMMEDIATE"]
        writer = seen[seen.index("BEGIN IMMEDIATE"):]  # the whole tap, run again as a writer
    else:
        writer = seen[[s.startswith("INSERT INTO processed_events") for s in seen].index(True):]
    assert any(s.startswith("SELECT members") for s in writer)
    assert len([s for s in writer if s.startswith("INSERT INTO tap_counts")]) == 2


def test_a_reader_refuses_every_statement_but_a_select_and_its_engine_still_writes(tmp_path):
    from sqlalchemy import text

    from bot import migrate
    from bot.db import NeedsWrite, make_engine, reading

    url = f"sqlite:///{tmp_path / 'one.db'}"
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        write = text("INSERT INTO processed_events (event_id, event_type, processed_at) "
                     "VALUES (:id, 'test', CURRENT_TIMESTAMP)")
        readers = reading(engine, 5)
        for statement in (write, text("DELETE FROM processed_events"),
                          text("UPDATE members SET tier = tier")):
            with pytest.raises(NeedsWrite), transaction(readers) as session:
                session.execute(text("SELECT 1"))
                session.execute(statement, {"id": "a"})
        with engine.begin() as conn:  # the same (only) connection, a writer again
            conn.execute(write, {"id": "b"})
            assert conn.execute(text("SELECT event_id FROM processed_events")).scalars().all() \
                == ["b"]
    finally:
        engine.dispose()


def test_pushes_that_went_are_marked_sent_in_one_statement_of_their_own(app, client,
                                                                        fake_line):
    """After the commit and the push, one UPDATE marks it sent: on PostgreSQL as its own
    transaction (autocommit, no BEGIN or COMMIT round trip), on SQLite in a write
    transaction of its own."""
    from bot.loyalty.staff import add_staff
    from bot.loyalty.timeutil import utcnow
    from tests.line_helpers import follow, post, text, user_id

    state, alice, clerk = app.extensions["loyalty"], user_id(1), user_id(2)
    post(client, [follow(alice), follow(clerk)])
    with transaction(state.sessions) as session:
        add_staff(session, clerk, utcnow(), name="阿明", actor="test")
        code = session.scalar(select(Member).where(Member.line_user_id == alice)).member_code
    with modes(state.engine) as seen:
        post(client, [text(clerk, f"集點 {code} 120")])
    assert len(fake_line.pushes()) == 1
    marks = [i for i, (s, _) in enumerate(seen) if s.startswith("UPDATE outbox SET status")]
    assert len(marks) == 1
    statement, auto = seen[marks[0]]
    if state.engine.dialect.name == "postgresql":
        assert auto is True
    else:
        assert seen[marks[0] - 1][0] == "BEGIN IMMEDIATE" and marks[0] == len(seen) - 1
    with transaction(state.sessions) as session:
        from bot.models import OutboxMessage
        assert session.scalar(select(OutboxMessage.status)) == "sent"


def test_only_a_screen_claim_skips_the_disk_sync_and_a_purchase_after_it_is_synced(
        app, client, fake_line):
    """A screen tap's claim and count are committed without waiting for the disk (a crash
    may undo the last few: a tap uncounted, nothing a customer holds), while a purchase
    right after it, on the same pooled connection, and its push's mark are synced to disk
    before LINE hears of them. SQLite: `PRAGMA synchronous` NORMAL for the claim's
    transaction alone; PostgreSQL: the claim's statement sets `synchronous_commit` off for
    its own transaction, and the connection is back on for the next."""
    from sqlalchemy import event as sa_event

    from bot.loyalty.staff import add_staff
    from bot.loyalty.timeutil import utcnow
    from tests.line_helpers import follow, post, postback, text, user_id

    state, alice, clerk = app.extensions["loyalty"], user_id(1), user_id(2)
    sqlite = state.engine.dialect.name == "sqlite"
    post(client, [follow(alice), follow(clerk), postback(alice, "action=stamps")])
    with transaction(state.sessions) as session:
        add_staff(session, clerk, utcnow(), name="阿明", actor="test")
        code = session.scalar(select(Member).where(Member.line_user_id == alice)).member_code
    levels: list[tuple[str, str]] = []

    def synced(conn, statement) -> str:
        """How the statement's transaction commits, as far as the connection says now."""
        raw = conn.connection.dbapi_connection
        if sqlite:
            level = raw.execute("PRAGMA synchronous").fetchone()[0]
            return {1: "unsynced", 2: "synced"}[level]
        if "set_config('synchronous_commit', 'off', true)" in statement:
            return "unsynced"  # set inside the statement, for its transaction
        with raw.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return {"off": "unsynced", "on": "synced"}[cursor.fetchone()[0]]

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith(("INSERT", "UPDATE", "WITH")):
            name = re.match(r"(?:WITH .*?\)\), claimed AS \()?(\w+ (?:INTO )?\w+)", statement)
            levels.append((name.group(1), synced(conn, statement)))

    sa_event.listen(state.engine, "before_cursor_execute", record)
    try:
        post(client, [postback(alice, "action=points")])
        post(client, [text(clerk, f"集點 {code} 120")])
        post(client, [postback(alice, "action=wallet")])
    finally:
        sa_event.remove(state.engine, "before_cursor_execute", record)
    tap = [("INSERT INTO processed_events", "unsynced")]
    tap += [("INSERT INTO tap_counts", "unsynced")] if sqlite else []
    assert levels[:len(tap)] == tap and levels[-len(tap):] == tap, levels
    purchase = levels[len(tap):-len(tap)]
    assert ("INSERT INTO purchases", "synced") in purchase
    assert ("UPDATE outbox", "synced") in purchase  # the receipt push, marked sent
    assert {level for _, level in purchase} == {"synced"}, purchase
    assert len(fake_line.pushes()) == 1
