"""Every push counts: a member's messages share one billed push, waiting notices ride the
free reply to the member's own message, and the month's allowance is respected."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from functools import partial
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.bootstrap import JobContext
from bot.db import transaction
from bot.jobs import JOBS, run_job
from bot.line.client import LineClient
from bot.line.context import render_context
from bot.loyalty.members import register_member
from bot.loyalty.report import build_report
from bot.loyalty.staff import add_staff
from bot.loyalty.timeutil import utcnow
from bot.models import Coupon, Member, OutboxMessage, SendHold
from bot.outbox import enqueue_many
from bot.outbox.holds import month_turn
from bot.outbox.sender import month_sent, send_pending
from bot.program import Program
from tests.line_helpers import follow, post, postback, text, user_id

ALICE, CLERK = user_id(1), user_id(9)
TAIPEI = ZoneInfo("Asia/Taipei")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TAIPEI)


def runtime(sessions, program: Program, config, client: LineClient | None = None
            ) -> JobContext:
    return JobContext(program=program, sessions=sessions,
                      render=partial(render_context, config, program),
                      deliver=partial(send_pending, sessions, client or LineClient(config),
                                      program))


def note(words: str) -> list[dict]:
    return [{"type": "text", "text": words}]


def queue(sessions, program: Program, n: int, kinds: list[str], now: dt.datetime) -> None:
    """Member n (joined if new) is due one text message per kind, as the jobs queue them."""
    with transaction(sessions) as session:
        member = session.scalar(select(Member).where(Member.line_user_id == user_id(n))) \
            or register_member(session, program, user_id(n), now).member
        enqueue_many(session, program, [(member, kind, f"{kind}:{n}:{i}:{now}", note(kind))
                                        for i, kind in enumerate(kinds)], now)


def rows(sessions) -> list[OutboxMessage]:
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def texts(request_body: dict) -> list[str]:
    return [m.get("text") for m in request_body["messages"]]


def pushes_to(fake_line, user: str) -> list[list[str]]:
    return [texts(body) for body in fake_line.pushes() if body["to"] == user]


@pytest.fixture
def now_program(program) -> Program:
    """The example program with every kind pushed as soon as it may be."""
    return dataclasses.replace(program, wait_hours={}, drop_after_days={}, quiet_hours=None)


# -- combining -------------------------------------------------------------------------------
def test_a_members_due_messages_go_as_one_push_in_order_five_at_most(
        sessions, now_program, line_config, fake_line):
    kinds = ["expiry_warning", "nudge", "birthday", "tier", "winback", "campaign", "nudge"]
    queue(sessions, now_program, 1, kinds, at(2026, 12, 1, 10))
    run_job(runtime(sessions, now_program, line_config), JOBS["send"], at(2026, 12, 1, 10, 1))
    # the five most urgent first, each push in the order they were queued
    assert pushes_to(fake_line, ALICE) == [
        ["expiry_warning", "nudge", "birthday", "tier", "nudge"], ["winback", "campaign"]]
    assert {row.status for row in rows(sessions)} == {"sent"}
    with sessions() as session:  # two requests: two billed messages, not seven
        assert month_sent(session, now_program, at(2026, 12, 1, 11)) == 2
        pushes = build_report(session, now_program, at(2026, 12, 1), at(2027, 1, 1),
                              at(2026, 12, 11), quota=now_program.allowance).pushes
    assert (pushes.sent, pushes.billed, pushes.by_reply) == (7, 2, 0)
    # each push counted once, for the most urgent kind it carried
    assert [(k.kind, k.sent) for k in pushes.billed_by_kind] == [("expiry_warning", 1),
                                                                 ("winback", 1)]
    assert pushes.forecast == 6  # 2 in the first 10 days of 31
    assert pushes.quota_left == now_program.allowance - 2


def test_members_with_one_identical_message_each_still_share_a_multicast(
        sessions, now_program, line_config, fake_line):
    for n in (1, 2, 3):
        queue(sessions, now_program, n, ["campaign"], at(2026, 12, 1, 10))
    queue(sessions, now_program, 1, ["nudge"], at(2026, 12, 1, 10))
    run_job(runtime(sessions, now_program, line_config), JOBS["send"], at(2026, 12, 1, 10, 1))
    assert pushes_to(fake_line, ALICE) == [["campaign", "nudge"]]
    assert [body["to"] for body in fake_line.multicasts()] == [[user_id(2), user_id(3)]]


def test_a_receipt_and_its_coupon_used_go_as_one_push(client, app, fake_line):
    post(client, [follow(ALICE)])  # joins, with the welcome coupon
    state = app.extensions["loyalty"]  # a shop without claim codes: the receipt is pushed
    state.program = dataclasses.replace(state.program, claims=dataclasses.replace(
        state.program.claims, enabled=False))
    with transaction(state.sessions) as session:
        add_staff(session, CLERK, utcnow(), name="阿明", actor="test")
        code = session.scalars(select(Coupon)).one().code
    fake_line.reset()
    post(client, [text(CLERK, f"核銷 {code} 200")])
    fake_line.wait_for(lambda: fake_line.pushes())
    (push,) = fake_line.pushes()
    assert push["to"] == ALICE and len(push["messages"]) == 2
    assert {row.kind for row in rows(state.sessions)} == {"receipt", "coupon_used"}


# -- waiting for a free reply ----------------------------------------------------------------
def test_a_waiting_nudge_rides_the_reply_to_the_members_tap_and_is_never_pushed(
        client, app, fake_line):
    state = app.extensions["loyalty"]
    queue(state.sessions, state.program, 1, ["nudge"], utcnow())
    post(client, [postback(ALICE, "action=points")])
    reply = fake_line.replies()[-1]["messages"]
    assert [m["type"] for m in reply] == ["flex", "text"] and reply[1]["text"] == "nudge"
    (row,) = rows(state.sessions)
    assert (row.status, row.via) == ("sent", "reply")
    run_job(runtime(state.sessions, state.program, app.extensions["loyalty"].config),
            JOBS["send"], utcnow() + dt.timedelta(days=3))
    assert fake_line.pushes() == []
    with state.sessions() as session:  # replies are free
        assert month_sent(session, state.program, utcnow()) == 0
        pushes = build_report(session, state.program, utcnow() - dt.timedelta(days=1),
                              utcnow() + dt.timedelta(days=1), utcnow()).pushes
    assert (pushes.sent, pushes.by_reply, pushes.billed) == (1, 1, 0)


def test_a_reply_line_refuses_puts_what_it_carried_back_in_the_queue(client, app, fake_line):
    state = app.extensions["loyalty"]
    queue(state.sessions, state.program, 1, ["nudge"], utcnow())
    fake_line.fail_next("/message/reply", 400)
    post(client, [postback(ALICE, "action=points")])
    (row,) = rows(state.sessions)
    assert (row.status, row.via) == ("pending", None)
    post(client, [postback(ALICE, "action=points")])
    assert fake_line.replies()[-1]["messages"][-1]["text"] == "nudge"


def test_a_nudge_nobody_saw_is_dropped_after_three_days_and_never_pushed_alone(
        sessions, program, line_config, fake_line):
    quiet_free = dataclasses.replace(program, quiet_hours=None)
    rt = runtime(sessions, quiet_free, line_config)
    queue(sessions, quiet_free, 1, ["nudge"], at(2026, 12, 1, 10, 59))
    run_job(rt, JOBS["send"], at(2026, 12, 3, 10))  # 2 days: still waiting for a reply
    assert [row.status for row in rows(sessions)] == ["pending"]
    run_job(rt, JOBS["send"], at(2026, 12, 4, 10, 59))  # 3 days: stale, never pushed
    assert [row.status for row in rows(sessions)] == ["dropped"]
    assert fake_line.pushes() == []


def test_a_kind_whose_wait_ends_before_it_goes_stale_is_pushed_after_its_wait(
        sessions, program, line_config, fake_line):
    patient = dataclasses.replace(program, quiet_hours=None, wait_hours={"tier": 48},
                                  drop_after_days={})
    rt = runtime(sessions, patient, line_config)
    queue(sessions, patient, 1, ["tier"], at(2026, 12, 1, 10))
    run_job(rt, JOBS["send"], at(2026, 12, 2, 10))
    assert fake_line.pushes() == []
    run_job(rt, JOBS["send"], at(2026, 12, 3, 10, 1))
    assert pushes_to(fake_line, ALICE) == [["tier"]]


def test_a_waiting_reminder_joins_the_receipt_push_of_the_next_purchase(
        client, app, fake_line):
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        member = register_member(session, state.program, ALICE, utcnow()).member
        add_staff(session, CLERK, utcnow(), name="阿明", actor="test")
    queue(state.sessions, state.program, 1, ["expiry_warning"], utcnow())
    fake_line.reset()
    post(client, [text(CLERK, f"集點 {member.member_code} 300")])
    fake_line.wait_for(lambda: fake_line.pushes())
    (push,) = fake_line.pushes()
    assert push["messages"][0]["text"] == "expiry_warning" and len(push["messages"]) == 2
    assert {row.status for row in rows(state.sessions)} == {"sent"}


# -- the month's allowance -------------------------------------------------------------------
def test_the_monthly_limit_holds_every_push_until_the_month_turns_then_sends_once(
        sessions, now_program, line_config, fake_line):
    client = LineClient(line_config)
    rt = runtime(sessions, now_program, line_config, client)
    for n in range(1, 6):
        queue(sessions, now_program, n, ["campaign", "nudge"], at(2026, 12, 10, 10))
    assert client.pushes_left() == 10_000  # read a moment ago ...
    fake_line.set_quota(3)  # ... then the owner broadcast from LINE's own manager
    run_job(rt, JOBS["send"], at(2026, 12, 10, 10, 1))
    assert len(fake_line.pushes()) == 3
    with sessions() as session:
        hold = session.get(SendHold, "line-monthly-limit")
        assert hold is not None and hold.until == month_turn(at(2026, 12, 10, 10, 1))
    calls = len(fake_line.calls)
    summary = run_job(rt, JOBS["send"], at(2026, 12, 20, 10))  # 10 days on: still held,
    assert "held until" in summary and len(fake_line.calls) == calls  # nothing tried
    assert {row.status for row in rows(sessions)} == {"sent", "pending"}
    assert all(row.first_attempt_at is None for row in rows(sessions)
               if row.status == "pending")  # LINE never took them: no 24-hour lapse
    fake_line.set_quota(1000, used=0)  # a new month
    run_job(rt, JOBS["send"], at(2027, 1, 1, 0, 5))
    assert sorted(len(pushes_to(fake_line, user_id(n))) for n in range(1, 6)) == [1] * 5
    assert {row.status for row in rows(sessions)} == {"sent"}


def test_marketing_leaves_the_reserve_to_receipts_and_expiry_warnings(
        sessions, now_program, line_config, fake_line):
    tight = dataclasses.replace(now_program, monthly_push_budget=10, reserve=4)
    for n in range(1, 9):
        queue(sessions, tight, n, ["campaign"], at(2026, 12, 1, 10))
    with transaction(sessions) as session:  # different texts: no multicast
        for row in session.scalars(select(OutboxMessage)):
            row.payload = {"messages": note(f"campaign {row.id}")}
    queue(sessions, tight, 9, ["expiry_warning"], at(2026, 12, 1, 10))
    run_job(runtime(sessions, tight, line_config), JOBS["send"], at(2026, 12, 1, 10, 1))
    sent = [row.kind for row in rows(sessions) if row.status == "sent"]
    # 10 a month, 4 kept back: marketing stops once 6 are used, the warning still goes
    assert sent.count("campaign") == 5 and sent.count("expiry_warning") == 1


# -- two clocks ------------------------------------------------------------------------------
def test_two_clocks_sending_at_once_deliver_each_combined_push_once(
        sessions, now_program, line_config, fake_line):
    for n in range(1, 21):
        queue(sessions, now_program, n, ["expiry_warning", "nudge", "birthday"],
              at(2026, 12, 1, 10))
    rts = [runtime(sessions, now_program, line_config) for _ in range(2)]
    barrier = threading.Barrier(2)

    def clock(rt):
        barrier.wait(timeout=10)
        send_pending(rt.sessions, LineClient(line_config), now_program, at(2026, 12, 1, 10, 1))

    threads = [threading.Thread(target=clock, args=(rt,)) for rt in rts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for n in range(1, 21):
        assert [m["text"] for m in fake_line.messages_to(user_id(n))] == [
            "expiry_warning", "nudge", "birthday"]


# -- marketing frequency ---------------------------------------------------------------------
def test_marketing_reaches_a_member_at_most_once_a_day_and_three_times_a_week(
        sessions, now_program, line_config, fake_line):
    rt = runtime(sessions, now_program, line_config)
    for day in range(1, 8):  # a campaign or a win-back message queued every day of a week
        queue(sessions, now_program, 1, ["campaign"], at(2026, 12, day, 10))
        queue(sessions, now_program, 1, ["winback"], at(2026, 12, day, 10))
        run_job(rt, JOBS["send"], at(2026, 12, day, 10, 1))
    # one push a day (its two messages together) until three in the week, then none
    assert len(pushes_to(fake_line, ALICE)) == 3
    queue(sessions, now_program, 1, ["expiry_warning"], at(2026, 12, 7, 11))
    summary = run_job(rt, JOBS["send"], at(2026, 12, 7, 11, 1))
    # not marketing: it goes, carrying 4 of the 8 messages that waited, for free
    assert "expiry_warning" in pushes_to(fake_line, ALICE)[-1]
    assert len(pushes_to(fake_line, ALICE)) == 4 and len(pushes_to(fake_line, ALICE)[-1]) == 5
    assert summary.startswith("5 messages delivered in 1 pushes")
    assert "4 for the marketing cap" in summary  # the rest: a push each, not admitted


def test_a_capped_campaign_still_rides_the_members_next_reply(client, app, fake_line):
    state = app.extensions["loyalty"]
    # without quiet hours: 20 hours ago is inside them for half of every day
    state.program = dataclasses.replace(state.program, quiet_hours=None)
    queue(state.sessions, state.program, 1, ["campaign"], utcnow() - dt.timedelta(days=1))
    run_job(state.jobs(), JOBS["send"], utcnow() - dt.timedelta(hours=20))
    queue(state.sessions, state.program, 1, ["campaign"], utcnow())
    summary = run_job(state.jobs(), JOBS["send"], utcnow())
    assert "1 for the marketing cap" in summary and len(fake_line.pushes()) == 1
    post(client, [postback(ALICE, "action=points")])
    assert fake_line.replies()[-1]["messages"][-1]["text"] == "campaign"


# -- what the review of the first version found ----------------------------------------------
def test_a_multicast_refused_for_the_monthly_limit_is_kept_and_holds_the_queue(
        sessions, now_program, line_config, fake_line):
    for n in (1, 2, 3):
        queue(sessions, now_program, n, ["campaign"], at(2026, 12, 10, 10))
    fake_line.set_quota(0)
    client = LineClient(line_config)
    rt = runtime(sessions, dataclasses.replace(now_program, monthly_push_budget=None,
                                               line_plan=None, reserve=0), line_config, client)
    with mock.patch.object(client, "pushes_left", lambda: None):  # LINE's count unknown
        run_job(rt, JOBS["send"], at(2026, 12, 10, 10, 1))
    with sessions() as session:
        assert session.get(SendHold, "line-monthly-limit") is not None
    run_job(rt, JOBS["send"], at(2026, 12, 12, 10))  # two days on: kept, not lapsed
    assert {row.status for row in rows(sessions)} == {"pending"}
    fake_line.set_quota(1000, used=0)
    run_job(rt, JOBS["send"], at(2027, 1, 2, 10))
    assert [len(fake_line.messages_to(user_id(n))) for n in (1, 2, 3)] == [1, 1, 1]


def test_a_waiting_nudge_beside_five_due_messages_is_not_pushed_on_its_own(
        sessions, now_program, line_config, fake_line):
    waits = dataclasses.replace(now_program, wait_hours={"nudge": 72})
    queue(sessions, waits, 1, ["expiry_warning"] * 5, at(2026, 12, 1, 10))
    queue(sessions, waits, 1, ["nudge"], at(2026, 12, 1, 10, 0, 30))
    run_job(runtime(sessions, waits, line_config), JOBS["send"], at(2026, 12, 1, 10, 1))
    assert pushes_to(fake_line, ALICE) == [["expiry_warning"] * 5]
    assert [row.status for row in rows(sessions)][-1] == "pending"


def test_a_push_the_budget_holds_leaves_the_waiting_nudge_free_for_a_reply(
        client, app, fake_line):
    state = app.extensions["loyalty"]
    broke = dataclasses.replace(state.program, monthly_push_budget=0, reserve=0,
                                quiet_hours=None)
    queue(state.sessions, broke, 1, ["tier"], utcnow() - dt.timedelta(days=3))
    queue(state.sessions, broke, 1, ["nudge"], utcnow())
    rt = runtime(state.sessions, broke, state.config)
    assert "1 for the budget" in run_job(rt, JOBS["send"], utcnow())
    post(client, [postback(ALICE, "action=points")])
    assert [m.get("text") for m in fake_line.replies()[-1]["messages"][1:]] == ["tier", "nudge"]
    assert fake_line.pushes() == []


# -- LINE's per-unit statistics --------------------------------------------------------------
def test_pushes_and_multicasts_name_their_unit_when_the_program_asks(app, fake_line):
    state = app.extensions["loyalty"]
    # (no quiet hours: the send job runs a day from now, whatever the time of day)
    program = dataclasses.replace(state.program, aggregation_units=True, quiet_hours=None)
    client = LineClient(state.config, aggregation_units=True)
    queue(state.sessions, program, 1, ["expiry_warning", "nudge"], utcnow())
    with transaction(state.sessions) as session:  # the same campaign card to two members
        members = [register_member(session, program, user_id(n), utcnow()).member
                   for n in (2, 3)]
        enqueue_many(session, program, [(m, "campaign", f"campaign:spring_sale:{m.id}",
                                         note("spring")) for m in members], utcnow())
    run_job(runtime(state.sessions, program, state.config, client), JOBS["send"],
            utcnow() + dt.timedelta(days=1))
    (push,) = fake_line.pushes()
    assert push["customAggregationUnits"] == ["expiry_warning"]  # the weightier kind
    (multicast,) = fake_line.multicasts()
    assert multicast["customAggregationUnits"] == ["campaign_spring_sale"]
    assert len(multicast["to"]) == 2


def test_a_unit_line_refuses_is_dropped_and_the_message_still_goes_once(app, fake_line):
    state = app.extensions["loyalty"]
    # (no quiet hours: the send job runs a day from now, whatever the time of day)
    program = dataclasses.replace(state.program, aggregation_units=True, quiet_hours=None)
    client = LineClient(state.config, aggregation_units=True)
    fake_line.units_refused = True  # the account never applied for units
    for n in (1, 2):
        queue(state.sessions, program, n, ["expiry_warning"], utcnow())
        run_job(runtime(state.sessions, program, state.config, client), JOBS["send"],
                utcnow() + dt.timedelta(days=1, minutes=n))
    assert [p["to"] for p in fake_line.pushes()] == [ALICE, user_id(2)]
    assert all("customAggregationUnits" not in p for p in fake_line.pushes())
    assert len(fake_line.rejections) == 1  # asked once with a unit, never again
    assert {row.status for row in rows(state.sessions)} == {"sent"}


def test_the_insight_command_shows_each_units_figures_hiding_those_under_20(app, fake_line):
    state = app.extensions["loyalty"]
    fake_line.unit_recipients.update({"receipt": 57, "campaign_spring": 12})
    state.program = dataclasses.replace(state.program, aggregation_units=True)
    result = app.test_cli_runner().invoke(args=["insight", "--from", "2027-03-01",
                                                "--to", "2027-03-31"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()[2:]}
    assert lines == {"campaign_spring": ["<20", "<20"], "receipt": ["57", "<20"]}
    (call,) = fake_line.calls_to("/v2/bot/insight/message/event/aggregation")[:1]
    assert call.query["from"] == "20270301" and call.query["to"] == "20270331"
    too_long = app.test_cli_runner().invoke(args=["insight", "--from", "2027-03-01",
                                                  "--to", "2027-04-15"])
    assert too_long.exit_code != 0 and "30 days" in too_long.output


# -- the bot's own tap counts ----------------------------------------------------------------
def test_taps_are_counted_by_where_the_button_was_and_what_it_asked(app, client, fake_line):
    from bot.line import messages
    from bot.report_format import render_text
    from bot.simulator.samples import member as sample_member

    state = app.extensions["loyalty"]
    post(client, [follow(ALICE)])
    ctx = render_context(state.config, state.program, "zh-TW")
    nudge = messages.nudge(ctx, sample_member(), "stamps", 2, "Any drink")
    data = [a["data"] for a in _actions(nudge) if a["type"] == "postback"]
    assert data and all(d.endswith("&via=nudge") for d in data)  # buttons say where they are
    post(client, [postback(ALICE, "action=points"), postback(ALICE, "action=points"),
                  postback(ALICE, data[0]), postback(ALICE, "action=claim&campaign=spring"),
                  postback(ALICE, "action=bogus&via=<script>")])
    with state.sessions() as session:
        report = build_report(session, state.program, utcnow() - dt.timedelta(days=1),
                              utcnow() + dt.timedelta(days=1), utcnow())
    counted = {(row.source, row.action): row.taps for row in report.taps}
    nudge_action = dict(p.split("=") for p in data[0].split("&"))["action"]
    assert counted == {("menu", "points"): 2, ("nudge", nudge_action): 1,
                       ("campaign_spring", "claim"): 1, ("other", "unknown"): 1}
    assert "Taps" in render_text(report)


def _actions(node):
    if isinstance(node, dict):
        if isinstance(node.get("action"), dict):
            yield node["action"]
        for value in node.values():
            yield from _actions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _actions(item)
