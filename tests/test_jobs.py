"""Scheduled jobs: each message once, whatever the clock does (twice, late, or two at once)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.config import Config
from bot.db import transaction
from bot.jobs import JOBS, JobContext, run_job, send_campaign
from bot.line.client import LineClient, SendResult
from bot.line.context import render_context
from bot.loyalty.campaigns import create_campaign, reach
from bot.loyalty.members import register_member, set_birthday, set_marketing, unfollow
from bot.loyalty.purchases import refund_order
from bot.loyalty.staff import add_staff
from bot.models import Coupon, CouponTemplateRow, Member, OutboxMessage
from bot.outbox import deliver, enqueue
from bot.outbox.sender import send_pending
from bot.program import Program
from tests.helpers import buy
from tests.line_helpers import user_id

TAIPEI = ZoneInfo("Asia/Taipei")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TAIPEI)


@pytest.fixture
def rt(sessions, program, line_config):
    """The jobs under the example program, every kind pushed as soon as it may be: waiting
    for a free reply and dropping stale nudges are tested in test_messaging.py."""
    return make_runtime(sessions, at_once(program), line_config)


def at_once(program: Program) -> Program:
    return dataclasses.replace(program, wait_hours={}, drop_after_days={})


def make_runtime(sessions, program, config: Config) -> JobContext:
    return JobContext(program=program, sessions=sessions,
                   render=partial(render_context, config, program),
                   deliver=partial(send_pending, sessions, LineClient(config), program))


JOINED = at(2026, 1, 1, 12)


def member_born(sessions, program, n: int, born: str, joined=JOINED) -> int:
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(n), joined).member
        set_birthday(session, member.id, born, joined, actor="test")
        return member.id


def queued(sessions, kind: str | None = None) -> list[OutboxMessage]:
    with sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        return list(session.scalars(query))


def coupons_of(sessions, member_id: int, key: str) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Coupon).join(CouponTemplateRow)
                              .where(Coupon.member_id == member_id,
                                     CouponTemplateRow.key == key))


def run(rt, name, now):
    return run_job(rt, JOBS[name], now)


def test_a_birthday_gets_the_tier_coupon_and_a_card_once_even_if_run_twice(rt, sessions,
                                                                            program):
    member = member_born(sessions, program, 1, "1990-12-01")
    member_born(sessions, program, 2, "1990-12-02")
    run(rt, "birthday", at(2026, 12, 1, 9))
    run(rt, "birthday", at(2026, 12, 1, 9, 30))
    assert coupons_of(sessions, member, "bday_member") == 1
    [row] = queued(sessions, "birthday")
    assert row.member_id == member


def test_a_feb_29_birthday_is_celebrated_on_feb_28_in_other_years(rt, sessions, program):
    leapling = member_born(sessions, program, 1, "2000-02-29")
    run(rt, "birthday", at(2027, 2, 28, 9))
    assert coupons_of(sessions, leapling, "bday_member") == 1
    run(rt, "birthday", at(2028, 2, 28, 9))
    run(rt, "birthday", at(2028, 2, 29, 9))
    assert coupons_of(sessions, leapling, "bday_member") == 2  # 2027 and 2028, once each


def test_a_clock_that_was_down_for_a_day_catches_up_without_duplicates(rt, sessions,
                                                                       program):
    first = member_born(sessions, program, 1, "1990-12-01")
    second = member_born(sessions, program, 2, "1990-12-02")
    run(rt, "birthday", at(2026, 11, 30, 9))
    run(rt, "birthday", at(2026, 12, 2, 9))  # the clock missed Dec 1
    run(rt, "birthday", at(2026, 12, 2, 9, 5))
    assert coupons_of(sessions, first, "bday_member") == 1
    assert coupons_of(sessions, second, "bday_member") == 1
    assert len(queued(sessions, "birthday")) == 2


def test_birthdays_are_days_in_the_shop_timezone(rt, sessions, program):
    member = member_born(sessions, program, 1, "1990-12-01")
    run(rt, "birthday", dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC))  # Dec 1, 00:30 Taipei
    assert coupons_of(sessions, member, "bday_member") == 1


def test_month_mode_celebrates_on_the_first_of_the_birth_month(sessions, program, line_config):
    monthly = dataclasses.replace(program, birthday_when="month")
    rt = make_runtime(sessions, monthly, line_config)
    member = member_born(sessions, monthly, 1, "1990-12-20")
    run(rt, "birthday", at(2026, 12, 1, 9))
    assert coupons_of(sessions, member, "bday_member") == 1


def test_a_member_who_blocked_the_account_gets_no_birthday_message(rt, sessions, program):
    member_born(sessions, program, 1, "1990-12-01")
    with transaction(sessions) as session:
        unfollow(session, user_id(1), at(2026, 6, 1, 12))
    run(rt, "birthday", at(2026, 12, 1, 9))
    assert queued(sessions, "birthday") == []


def test_two_clocks_at_once_send_nothing_twice(rt, sessions, program):
    members = [member_born(sessions, program, n, "1990-12-01") for n in range(1, 6)]
    barrier = threading.Barrier(2)
    errors = []

    def clock():
        barrier.wait()
        try:
            run(rt, "birthday", at(2026, 12, 1, 9))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=clock) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(queued(sessions, "birthday")) == 5
    assert all(coupons_of(sessions, m, "bday_member") == 1 for m in members)


def test_expiry_warnings_come_once_per_lot_and_horizon(rt, sessions, program):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), at(2025, 11, 10, 12)).member.id
    buy(sessions, program, member, 300, at(2025, 11, 10, 12))  # expires after 2026-11-30
    run(rt, "expiry-warnings", at(2026, 11, 5, 10))   # 25 days left: the 30-day horizon
    run(rt, "expiry-warnings", at(2026, 11, 6, 10))
    assert len(queued(sessions, "expiry_warning")) == 1
    run(rt, "expiry-warnings", at(2026, 11, 24, 10))  # 6 days left: the 7-day horizon
    assert len(queued(sessions, "expiry_warning")) == 2


def test_the_expiry_warning_also_warns_of_an_unfinished_stamp_card_in_the_same_message(
        rt, sessions, program):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), at(2025, 11, 10, 12)).member.id
    buy(sessions, program, member, 300, at(2025, 11, 10, 12))  # a card valid to 2026-11-09
    run(rt, "expiry-warnings", at(2026, 11, 5, 10))  # the card: 4 days; points: 25 days
    [warning] = queued(sessions, "expiry_warning")
    shown = json.dumps(warning.payload["messages"], ensure_ascii=False)
    assert "2026/11/09" in shown and "2/10 章" in shown and "2026/11/30" in shown
    assert warning.payload["messages"][0]["altText"] == "10 點、集點卡即將到期"
    run(rt, "expiry-warnings", at(2026, 11, 6, 10))  # same horizons: nothing new
    assert len(queued(sessions, "expiry_warning")) == 1


def test_a_nudge_comes_once_per_crossing(rt, sessions, program):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), at(2026, 11, 1, 12)).member.id
    for day in range(2):  # 1 starter + 2 visits = 3 stamps: 2 short of the 5th
        buy(sessions, program, member, 100, at(2026, 11, 1 + day, 12))
    run(rt, "nudges", at(2026, 11, 3, 11))
    run(rt, "nudges", at(2026, 11, 4, 11))
    assert len(queued(sessions, "nudge")) == 1


def test_a_dormant_member_gets_one_comeback_coupon_and_double_points(rt, sessions, program):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), at(2026, 1, 1, 12)).member.id
    buy(sessions, program, member, 300, at(2026, 1, 1, 12))
    run(rt, "winback", at(2026, 3, 10, 15))
    run(rt, "winback", at(2026, 3, 11, 15))
    assert coupons_of(sessions, member, "comeback") == 1
    assert buy(sessions, program, member, 300, at(2026, 3, 12, 12)).points == 20
    assert buy(sessions, program, member, 300, at(2026, 3, 13, 12)).points == 10
    run(rt, "winback", at(2026, 6, 1, 15))  # a new dormant spell
    assert coupons_of(sessions, member, "comeback") == 2


def test_win_back_goes_to_lapsed_customers_not_to_staff_or_who_never_really_bought(
        rt, sessions, program, fake_line):
    with transaction(sessions) as session:
        lapsed, never, refunded, clerk = [
            register_member(session, program, user_id(n), JOINED).member.id for n in (1, 2, 3, 4)]
        add_staff(session, user_id(4), JOINED, name="Amy", actor="owner")
    for member in (lapsed, refunded, clerk):
        buy(sessions, program, member, 300, JOINED, order_id=f"order-{member}")
    with transaction(sessions) as session:
        refund_order(session, program, 300, JOINED, source="pos", order_id=f"order-{refunded}",
                     refund_id="refund-1", actor="test")
    run(rt, "winback", at(2026, 3, 10, 15))
    run(rt, "send", at(2026, 3, 10, 15, 1))
    assert [coupons_of(sessions, m, "comeback") for m in (lapsed, never, refunded, clerk)] \
        == [1, 0, 0, 0]
    assert [len(fake_line.messages_to(user_id(n))) for n in (1, 2, 3, 4)] == [1, 0, 0, 0]


def test_staff_get_no_nudges_but_still_their_birthday_and_expiry_warnings(
        rt, sessions, program, fake_line):
    with transaction(sessions) as session:
        customer, clerk = [register_member(session, program, user_id(n), JOINED).member.id
                           for n in (1, 2)]
        add_staff(session, user_id(2), JOINED, name="Amy", actor="owner")
        set_birthday(session, clerk, "1990-01-05", JOINED, actor="test")
    for member in (customer, clerk):  # 1 starter + 2 visits = 3 stamps: 2 short of the 5th
        for day in (1, 2):
            buy(sessions, program, member, 100, at(2026, 1, day, 12))
    run(rt, "nudges", at(2026, 1, 3, 11))
    run(rt, "birthday", at(2026, 1, 5, 9))
    run(rt, "expiry-warnings", at(2027, 1, 5, 10))  # January's points end with the 31st
    run(rt, "send", at(2027, 1, 5, 11))
    assert received(sessions, fake_line, 1) == ["expiry_warning", "nudge"]
    assert received(sessions, fake_line, 2) == ["birthday", "expiry_warning"]


def test_a_member_who_stopped_promotions_gets_no_nudge_win_back_or_campaign_but_still_warnings(
        rt, sessions, program, fake_line):
    with transaction(sessions) as session:
        keen, quiet = [register_member(session, program, user_id(n), JOINED).member.id
                       for n in (1, 2)]
    for member in (keen, quiet):  # 1 starter + 2 visits = 3 stamps: 2 short of the 5th
        for day in (1, 2):
            buy(sessions, program, member, 100, at(2026, 1, day, 12))
    with transaction(sessions) as session:
        set_marketing(session, quiet, False, at(2026, 1, 2, 13), actor="test")
        made = create_campaign(session, program, "spring", template="nt50",
                               now=at(2026, 1, 3, 9), push=True)
        assert reach(session, made).members == 1
    run(rt, "nudges", at(2026, 1, 3, 11))
    send_campaign(rt, "spring", at(2026, 1, 3, 11))
    run(rt, "winback", at(2026, 3, 10, 15))
    run(rt, "expiry-warnings", at(2027, 1, 5, 10))
    run(rt, "send", at(2027, 1, 5, 11))
    assert received(sessions, fake_line, 1) == ["campaign", "expiry_warning", "nudge", "winback"]
    assert received(sessions, fake_line, 2) == ["expiry_warning"]
    assert coupons_of(sessions, quiet, "comeback") == coupons_of(sessions, quiet, "nt50") == 0
    with transaction(sessions) as session:  # promotions again: the next spell is won back
        set_marketing(session, quiet, True, at(2027, 1, 6, 9), actor="test")
    run(rt, "winback", at(2027, 1, 6, 15))
    assert coupons_of(sessions, quiet, "comeback") == 1


def test_marketing_queued_before_a_stop_is_skipped(rt, sessions, program, fake_line):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), JOINED).member.id
    for day in (1, 2):
        buy(sessions, program, member, 100, at(2026, 1, day, 12))
    run(rt, "nudges", at(2026, 1, 3, 11))  # the nudge waits for a free reply
    with transaction(sessions) as session:
        set_marketing(session, member, False, at(2026, 1, 3, 12), actor="test")
    run(rt, "send", at(2026, 1, 9, 11))
    assert [row.status for row in queued(sessions, "nudge")] == ["skipped"]
    assert fake_line.messages_to(user_id(1)) == []


def received(sessions, fake_line, n: int) -> list[str]:
    """The kinds of message member n has in LINE, sorted."""
    delivered = fake_line.messages_to(user_id(n))
    return sorted(row.kind for row in queued(sessions) if row.line_user_id == user_id(n)
                  and all(message in delivered for message in row.payload["messages"]))


def test_quiet_hours_hold_scheduled_messages_but_not_receipts(rt, sessions, program, fake_line):
    member_born(sessions, program, 1, "1990-12-01")
    run(rt, "birthday", at(2026, 12, 1, 0, 30))  # queued in the night
    with transaction(sessions) as session:
        from bot.outbox import enqueue

        member = session.scalars(select(Member)).one()
        enqueue(session, member, "receipt", "receipt:x", [{"type": "text", "text": "hi"}],
                at(2026, 12, 1, 0, 30))
    run(rt, "send", at(2026, 12, 1, 0, 31))
    assert [m["text"] for m in fake_line.messages_to(user_id(1))] == ["hi"]
    run(rt, "send", at(2026, 12, 1, 9, 1))
    assert len(fake_line.messages_to(user_id(1))) == 2
    assert {row.status for row in queued(sessions)} == {"sent"}


def test_the_budget_sends_the_most_important_kinds_first(sessions, program, line_config,
                                                         fake_line):
    tight = dataclasses.replace(program, monthly_push_budget=2, quiet_hours=None, reserve=0)
    rt = make_runtime(sessions, tight, line_config)
    kinds = ("winback", "nudge", "receipt", "birthday")
    with transaction(sessions) as session:
        from bot.outbox import enqueue

        for n, kind in enumerate(kinds, 1):  # one each: a member's own would go as one push
            member = register_member(session, tight, user_id(n), at(2026, 12, 1, 9)).member
            enqueue(session, member, kind, f"{kind}:1", [{"type": "text", "text": kind}],
                    at(2026, 12, 1, 9))
    run(rt, "send", at(2026, 12, 1, 10))
    assert [[m["text"] for m in fake_line.messages_to(user_id(n))] for n in (1, 2, 3, 4)] == [
        [], [], ["receipt"], ["birthday"]]


def test_a_429_is_retried_on_the_next_run_and_delivered_once(rt, sessions, program, fake_line):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), at(2026, 12, 1, 9)).member
        from bot.outbox import enqueue

        enqueue(session, member, "receipt", "r:1", [{"type": "text", "text": "hi"}],
                at(2026, 12, 1, 9))
    fake_line.fail_next("/message/push", 429)
    run(rt, "send", at(2026, 12, 1, 10))
    assert fake_line.messages_to(user_id(1)) == []
    run(rt, "send", at(2026, 12, 1, 10, 1))
    run(rt, "send", at(2026, 12, 1, 10, 2))
    assert len(fake_line.messages_to(user_id(1))) == 1


XMAS = [{"type": "text", "text": "聖誕快樂"}]


def queue_same_text(sessions, program, numbers, now, kind: str = "campaign") -> None:
    """One identical message to each of these members, as a campaign queues it."""
    with transaction(sessions) as session:
        for n in numbers:
            member = register_member(session, program, user_id(n), now).member
            enqueue(session, member, kind, f"{kind}:{n}", XMAS, now)


def received_counts(fake_line, numbers) -> list[int]:
    return [len(fake_line.messages_to(user_id(n))) for n in numbers]


@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.parametrize("members", [1, 2], ids=["push", "multicast"])
def test_a_push_that_failed_before_quiet_hours_is_retried_in_the_morning(
        rt, sessions, program, fake_line, status, members):
    numbers = range(1, members + 1)
    queue_same_text(sessions, program, numbers, at(2026, 12, 1, 20, 58))
    fake_line.fail_next("/message/push" if members == 1 else "/message/multicast", status)
    run(rt, "send", at(2026, 12, 1, 20, 59))
    run(rt, "send", at(2026, 12, 1, 21, 1))
    run(rt, "send", at(2026, 12, 2, 8, 59))
    assert received_counts(fake_line, numbers) == [0] * members  # no phone buzzes at night
    run(rt, "send", at(2026, 12, 2, 9, 1))
    assert received_counts(fake_line, numbers) == [1] * members


def test_a_retried_multicast_stays_within_the_monthly_push_budget(sessions, program,
                                                                   line_config, fake_line):
    tight = dataclasses.replace(program, monthly_push_budget=2, quiet_hours=None)
    rt = make_runtime(sessions, tight, line_config)
    queue_same_text(sessions, tight, (1, 2), at(2026, 12, 1, 10))
    fake_line.fail_next("/message/multicast", 500)
    run(rt, "send", at(2026, 12, 1, 10, 1))
    with transaction(sessions) as session:  # a receipt goes at once, as the API sends it
        member = session.scalar(select(Member).where(Member.line_user_id == user_id(1)))
        receipt = enqueue(session, member, "receipt", "r:1", [{"type": "text", "text": "收據"}],
                          at(2026, 12, 1, 10, 2))
        session.flush()
        receipt_id = receipt.id
    deliver(sessions, LineClient(line_config), [receipt_id], at(2026, 12, 1, 10, 2))
    run(rt, "send", at(2026, 12, 1, 10, 3))  # one push of the budget is left: not two
    assert [[m["text"] for m in fake_line.messages_to(user_id(n))] for n in (1, 2)] \
        == [["收據"], []]


@pytest.mark.parametrize("members", [1, 2], ids=["push", "multicast"])
def test_a_push_whose_fate_is_unknown_for_a_day_is_never_sent_again(
        rt, sessions, program, fake_line, members):
    numbers = range(1, members + 1)
    queue_same_text(sessions, program, numbers, at(2026, 12, 1, 10), kind="receipt")
    fake_line.fail_next("/message/push" if members == 1 else "/message/multicast", 500)
    run(rt, "send", at(2026, 12, 1, 10))  # LINE may have it: only the retry key can tell
    run(rt, "send", at(2026, 12, 2, 10, 1))  # the clock was down; LINE forgot the key
    assert received_counts(fake_line, numbers) == [0] * members
    assert {row.status for row in queued(sessions)} == {"failed"}


def test_a_push_that_timed_out_is_retried_alone_even_when_its_twin_is_queued(
        rt, sessions, program, line_config, fake_line):
    queue_same_text(sessions, program, [1], at(2026, 12, 1, 10))
    real = LineClient(line_config)

    class DeliveredButTimedOut:
        def push(self, user, messages, key, unit=None):
            real.push(user, messages, key)
            return SendResult(False, retry=True, error="read timed out")

    deliver(sessions, DeliveredButTimedOut(), [queued(sessions)[0].id], at(2026, 12, 1, 10))
    queue_same_text(sessions, program, [2], at(2026, 12, 1, 10, 1))  # the same text
    run(rt, "send", at(2026, 12, 1, 10, 2))
    assert received_counts(fake_line, (1, 2)) == [1, 1]


def test_a_sender_that_crashes_mid_batch_resumes_without_duplicates_or_losses(
        rt, sessions, program, line_config, fake_line):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), at(2026, 12, 1, 9)).member
        ids = []
        for n in range(5):
            row = enqueue(session, member, "receipt", f"r:{n}",
                          [{"type": "text", "text": f"receipt {n}"}], at(2026, 12, 1, 9))
            session.flush()
            ids.append(row.id)
    real = LineClient(line_config)

    class CrashAfterSecondPush:
        calls = 0

        def push(self, user, messages, key, unit=None):
            outcome = real.push(user, messages, key)
            self.calls += 1
            if self.calls == 2:  # LINE has it, but the process dies before recording it
                raise RuntimeError("killed")
            return outcome

    with pytest.raises(RuntimeError):
        deliver(sessions, CrashAfterSecondPush(), ids, at(2026, 12, 1, 10))
    run(rt, "send", at(2026, 12, 1, 10, 1))
    texts = [m["text"] for m in fake_line.messages_to(user_id(1))]
    assert texts == [f"receipt {n}" for n in range(5)]
    assert {row.status for row in queued(sessions)} == {"sent"}


def test_the_expire_job_expires_points_and_coupons_as_of_its_time(rt, sessions, program):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), at(2025, 1, 5, 12)).member.id
    buy(sessions, program, member, 300, at(2025, 1, 5, 12))
    summary = run(rt, "expire", at(2026, 2, 1, 0, 5))
    assert summary == "expired 10 points of 1 members and 1 coupons"
    assert run(rt, "expire", at(2026, 2, 2, 0, 5)).startswith("expired 0 points")


def test_the_tiers_job_downgrades_after_the_grace_and_tells_the_member(rt, sessions, program):
    with transaction(sessions) as session:
        member = register_member(session, program, user_id(1), at(2025, 1, 5, 12)).member.id
    buy(sessions, program, member, 6000, at(2025, 1, 5, 12))
    run(rt, "tiers", at(2025, 6, 1, 3))
    assert queued(sessions, "tier") == []  # still silver: spend is inside the window
    run(rt, "tiers", at(2026, 1, 6, 3))
    run(rt, "tiers", at(2026, 1, 7, 3))
    with sessions() as session:
        assert session.get(Member, member).tier == "member"
    assert len(queued(sessions, "tier")) == 1


def test_identical_messages_go_as_one_multicast_and_a_crash_never_doubles_them(
        rt, sessions, program, line_config, fake_line):
    from bot.outbox import deliver_batches, make_batches

    same = [{"type": "text", "text": "聖誕快樂"}]
    with transaction(sessions) as session:
        ids = []
        for n in range(1, 4):
            member = register_member(session, program, user_id(n), at(2026, 12, 1, 9)).member
            row = enqueue(session, member, "receipt", f"xmas:{n}", same, at(2026, 12, 1, 9))
            session.flush()
            ids.append(row.id)
    grouped = make_batches(sessions, ids, at(2026, 12, 1, 10))
    assert grouped.singles == []
    real = LineClient(line_config)

    class DiesAfterSending:
        def multicast(self, users, messages, key, unit=None):
            real.multicast(users, messages, key)
            raise RuntimeError("killed before recording")

    with pytest.raises(RuntimeError):
        deliver_batches(sessions, DiesAfterSending(), at(2026, 12, 1, 10), grouped.batches)
    run(rt, "send", at(2026, 12, 1, 10, 1))  # resumes the stored batch: 409 = delivered
    [multicast] = fake_line.multicasts()
    assert sorted(multicast["to"]) == sorted(user_id(n) for n in range(1, 4))
    assert all(len(fake_line.messages_to(user_id(n))) == 1 for n in range(1, 4))
    assert {row.status for row in queued(sessions)} == {"sent"}


def test_tidy_forgets_webhook_events_a_month_old_and_keeps_recent_ones(rt, sessions,
                                                                      monkeypatch):
    """Each handled webhook event leaves its claim, so that LINE sending it again changes
    nothing twice; the tidy job forgets claims older than 30 days, a chunk per transaction,
    so the table stops growing with every event the shop ever had. A recent event sent
    again is still recognised."""
    import bot.jobs
    from bot.loyalty.idempotency import claim_event
    from bot.models import ProcessedEvent

    now = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC)
    ages = {f"old{i}": dt.timedelta(days=31 + i) for i in range(5)}
    ages |= {"month": dt.timedelta(days=29, hours=23), "today": dt.timedelta(minutes=5)}
    with transaction(sessions) as session:
        for event_id, age in ages.items():
            assert claim_event(session, event_id, "message", now - age)
    monkeypatch.setattr(bot.jobs, "FORGET_CHUNK", 2)  # 5 old claims: 3 transactions
    summary = run_job(rt, JOBS["tidy"], now)
    assert summary.startswith("forgot 5 webhook events handled before 2026-11-07 20:00")
    with transaction(sessions) as session:
        assert set(session.scalars(select(ProcessedEvent.event_id))) == {"month", "today"}
        assert not claim_event(session, "today", "message", now)  # sent again: still known
    assert run_job(rt, JOBS["tidy"], now).startswith("forgot 0 ")
