"""The webhook when things go wrong: a database that fails or is held answers 503 so LINE
redelivers, a malformed event is one log line, and a group or room never sees a code."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest
from sqlalchemy import event, func, select, text

from bot.models import Coupon, Member, ProcessedEvent
from tests.line_helpers import flat, follow, post, postback, user_id
from tests.line_helpers import text as said

ALICE, BOB = user_id(1), user_id(2)


def count(app, model) -> int:
    with app.extensions["loyalty"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def fail_once_at(engine, statement_start: str, db_url: str) -> list[bool]:
    """The database goes away just as the first statement starting with `statement_start`
    runs: PostgreSQL's server ends the connection; SQLite's file turns read-only."""
    done: list[bool] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if done or not statement.lstrip().startswith(statement_start):
            return
        done.append(True)
        if db_url.startswith("sqlite"):
            cursor.connection.execute("PRAGMA query_only = 1")
        else:
            pid = conn.connection.dbapi_connection.info.backend_pid
            with engine.connect() as admin:  # another pooled connection: ends this one
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                admin.commit()

    event.listen(engine, "before_cursor_execute", before)
    return done


def test_a_database_lost_mid_event_answers_503_and_the_redelivery_is_handled_once(
        client, app, fake_line, db_url):
    engine = app.extensions["loyalty"].engine
    body_events = [follow(ALICE)]
    failed = fail_once_at(engine, "INSERT INTO members", db_url)
    assert post(client, body_events).status_code == 503
    engine.dispose()  # the database is back: fresh connections
    assert failed and count(app, Member) == 0 and fake_line.replies() == []
    redelivered = [dict(body_events[0], deliveryContext={"isRedelivery": True})]
    assert post(client, redelivered).status_code == 200
    assert post(client, redelivered).status_code == 200  # LINE may send it twice more
    assert (count(app, Member), count(app, Coupon), count(app, ProcessedEvent)) == (1, 1, 1)
    assert len(fake_line.replies()) == 1


def test_a_failing_event_does_not_stop_the_others_and_only_it_is_redone(
        client, app, fake_line, db_url):
    engine = app.extensions["loyalty"].engine
    post(client, [follow(BOB)])
    events = [said(BOB, "點數"), follow(ALICE)]
    fail_once_at(engine, "INSERT INTO members", db_url)
    assert post(client, events).status_code == 503
    assert len(fake_line.replies()) == 2  # Bob's welcome, then Bob's points
    engine.dispose()
    assert post(client, events).status_code == 200
    assert count(app, Member) == 2 and len(fake_line.replies()) == 3  # + Alice's welcome


def hold_write_lock(app, db_url: str, seconds: float) -> threading.Event:
    """Another writer holds the lock the event needs for `seconds` (or until set)."""
    release, held = threading.Event(), threading.Event()

    def hold() -> None:
        if db_url.startswith("sqlite"):
            conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn = app.extensions["loyalty"].engine.raw_connection()
            conn.cursor().execute("LOCK TABLE processed_events IN EXCLUSIVE MODE")
        held.set()
        release.wait(seconds)
        conn.rollback()
        conn.close()

    threading.Thread(target=hold, daemon=True).start()
    held.wait(10)
    return release


def test_an_event_waits_at_most_about_a_second_and_a_half_for_a_lock_then_answers_503(
        client, app, fake_line, db_url):
    """Without the bound the event would wait out the 6 s lock and answer 200 late, after
    LINE had given up on it."""
    release = hold_write_lock(app, db_url, seconds=6)
    try:
        assert post(client, [follow(ALICE)]).status_code == 503
    finally:
        release.set()
    assert count(app, Member) == 0
    assert post(client, [follow(ALICE)]).status_code == 200
    assert count(app, Member) == 1


def test_healthz_fails_when_the_database_can_be_read_but_not_written(app, db_url):
    engine = app.extensions["loyalty"].engine
    engine.dispose()

    @event.listens_for(engine, "connect")
    def read_only(dbapi_conn, record):
        cursor = dbapi_conn.cursor()
        if db_url.startswith("sqlite"):
            cursor.execute("PRAGMA query_only = 1")
        else:
            cursor.execute("SET default_transaction_read_only = on")
            dbapi_conn.commit()
        cursor.close()

    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "database unavailable"}
    raw = engine.raw_connection()  # reading still works: SELECT 1 alone would say "ok"
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1
    finally:
        raw.close()


# -- malformed events ---------------------------------------------------------------------------
@pytest.mark.parametrize("broken", [
    {"type": []}, {"type": {"x": 1}}, {"type": None}, {"type": "message", "source": "x"},
    {"type": "follow", "source": {"type": "user", "userId": ALICE}, "webhookEventId": [],
     "replyToken": "t", "mode": "active", "timestamp": 1, "deliveryContext": {}},
    {"type": "x" * 10_000}])
def test_a_malformed_event_is_one_log_line_without_a_traceback(client, app, caplog, broken):
    with caplog.at_level(logging.INFO, logger="bot"):
        assert post(client, [broken, follow(BOB)]).status_code == 200
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    assert all(len(r.getMessage()) < 400 for r in caplog.records)
    assert count(app, Member) == 1


def test_deeply_nested_json_is_a_400_not_a_500(client):
    body = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert post(client, [], body=body).status_code == 400


# -- groups and rooms --------------------------------------------------------------------------
def in_group(event: dict, kind: str = "group") -> dict:
    source = {"type": kind, f"{kind}Id": "C" + "1" * 32, "userId": ALICE}
    return dict(event, source=source)


@pytest.mark.parametrize("kind", ["group", "room"])
def test_in_a_group_or_room_the_bot_shows_no_codes_and_asks_for_a_private_chat(
        client, app, fake_line, kind):
    post(client, [follow(ALICE)])
    for sent in (said(ALICE, "優惠券"), said(ALICE, "會員卡"), postback(ALICE, "action=card"),
                  said(ALICE, "核銷 7KQ2M9XHF"), said(ALICE, "集點 ABC 100")):
        assert post(client, [in_group(sent, kind)]).status_code == 200
    group_replies = fake_line.replies()[1:]
    assert len(group_replies) == 5
    for reply in group_replies:
        assert [m["type"] for m in reply["messages"]] == ["text", "text"]
        assert "一對一" in flat(reply["messages"]) and "one-to-one" in flat(reply["messages"])
    with app.extensions["loyalty"].sessions() as session:
        member = session.scalars(select(Member)).one()
        code = session.scalars(select(Coupon.code)).one()
    assert member.member_code not in flat(group_replies) and code not in flat(group_replies)


def test_group_chatter_not_meant_for_the_bot_gets_no_answer(client, fake_line):
    post(client, [in_group(said(ALICE, "明天幾點見？"))])
    assert fake_line.replies() == []


@pytest.mark.parametrize("kind", ["group", "room"])
def test_added_to_a_group_or_room_the_bot_leaves_it(client, app, fake_line, kind):
    join = {"type": "join", "mode": "active", "timestamp": 1, "replyToken": "r",
            "webhookEventId": "J1", "deliveryContext": {"isRedelivery": False},
            "source": {"type": kind, f"{kind}Id": "C" + "2" * 32}}
    assert post(client, [join]).status_code == 200
    [call] = fake_line.calls_to("/leave")
    assert call.path == f"/v2/bot/{kind}/{'C' + '2' * 32}/leave"
    assert count(app, Member) == 0
