"""A membership moved to the customer's new LINE account: everything comes along once, the
new account's own points are added, the old LINE account is no longer the member's, and
every refusal changes nothing."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.loyalty import coupons, staff
from bot.loyalty.codes import format_code
from bot.loyalty.errors import (
    LoyaltyError,
    MoveAlreadyDone,
    MoveFromNoLine,
    MoveFromStaffAccount,
    MoveNeedsLineAccount,
    MoveTargetHasHistory,
    MoveToSelf,
    MoveToStaffAccount,
    MoveUnknownAccount,
    ReasonRequired,
    UnknownMember,
)
from bot.loyalty.members import (
    adjust_points,
    find_by_line_user,
    register_member,
    set_birthday,
)
from bot.loyalty.moving import move_to_new_account
from bot.loyalty.stamps import adjust_stamps
from bot.models import AuditLog, Coupon, Member, MemberTag, OutboxMessage, PointEntry, Tag
from bot.outbox import enqueue
from tests.helpers import balance, buy, join, ledger_totals
from tests.line_helpers import user_id

DAY = dt.timedelta(days=1)


def move(sessions, program, member_id: int, code: str, now: dt.datetime,
         reason: str = "new phone, ID checked"):
    with transaction(sessions) as session:
        return move_to_new_account(session, program, member_id, code, now, reason=reason,
                                   actor="console:owner@cafe.tw")


def member(sessions, member_id: int) -> Member:
    with sessions() as session:
        return session.get(Member, member_id)


def lots(sessions, member_id: int) -> list[tuple]:
    with sessions() as session:
        return sorted(session.execute(select(PointEntry.expires_at, PointEntry.remaining)
                                      .where(PointEntry.member_id == member_id,
                                             PointEntry.remaining > 0)).all())


def snapshot(sessions) -> list[tuple]:
    """Every member's LINE id, status and balance, and how many audit rows there are."""
    with sessions() as session:
        rows = session.execute(select(Member.id, Member.line_user_id, Member.status,
                                      Member.points_balance).order_by(Member.id)).all()
        return [*rows, session.scalar(select(func.count()).select_from(AuditLog))]


def test_the_membership_moves_to_the_new_account_with_its_history_and_the_new_points(
        sessions, program, now):
    old = join(sessions, program, now, "U-old-phone")
    buy(sessions, program, old, 600, now)
    with transaction(sessions) as session:
        set_birthday(session, old, "1988-02-29", now, actor="line:U-old-phone")
        coupons.give_coupon(session, program, old, next(iter(program.coupons)), now,
                            reason="goodwill", actor="test")
        tag = Tag(name="regular")
        session.add(tag)
        session.flush()
        session.add(MemberTag(member_id=old, tag_id=tag.id, tagged_at=now))
    later = now + 40 * DAY
    new = join(sessions, program, later, "U-new-phone")
    with transaction(sessions) as session:  # a new account's few points and a stamp
        adjust_points(session, program, new, 15, later, reason="sign-up gift", actor="test")
        adjust_stamps(session, program, new, 1, later, reason="first visit", actor="test")
    before = {"old": lots(sessions, old), "new": lots(sessions, new),
              "old_points": balance(sessions, old), "new_points": balance(sessions, new)}
    assert before["new_points"] > 0
    code, old_code = member(sessions, new).member_code, member(sessions, old).member_code
    with sessions() as session:
        wallets = [session.scalar(select(func.count()).where(Coupon.member_id == who,
                                                             Coupon.status == "issued"))
                   for who in (old, new)]
        assert wallets == [2, 1]  # the welcome coupon, and one given; the new one's welcome

    result = move(sessions, program, old, format_code(code).lower(), later + DAY)
    assert (result.merged.points, result.merged.stamps_carried) == (before["new_points"], 1)
    assert result.welcome_voided == 1  # one welcome gift per customer
    moved, closed = member(sessions, old), member(sessions, new)
    assert (moved.line_user_id, moved.member_code, moved.status) == (
        "U-new-phone", old_code, "active")
    assert moved.birthday == dt.date(1988, 2, 29) and moved.joined_at == now
    assert (closed.line_user_id, closed.status, closed.points_balance) == (None, "merged", 0)
    total = before["old_points"] + before["new_points"]
    assert ledger_totals(sessions, old) == (total, total, total)
    assert lots(sessions, old) == sorted(before["old"] + before["new"])  # expiries kept
    with sessions() as session:
        assert find_by_line_user(session, "U-new-phone").id == old
        with pytest.raises(UnknownMember):  # the lost account is nobody's now
            find_by_line_user(session, "U-old-phone")
        wallet = session.execute(select(Coupon.reason, Coupon.status)
                                 .where(Coupon.member_id == old)).all()
        assert sorted(wallet) == [("manual", "issued"), ("welcome", "issued"),
                                  ("welcome", "void")]  # the new account's, kept as history
        assert session.scalar(select(func.count()).where(MemberTag.member_id == old)) == 1
        logs = session.execute(select(AuditLog.member_id, AuditLog.points_delta,
                                      AuditLog.actor, AuditLog.reason)
                               .where(AuditLog.action.in_(["member.moved", "member.merged"]))
                               .order_by(AuditLog.id)).all()
    assert logs == [(new, -before["new_points"], "console:owner@cafe.tw",
                     f"merged into member {old_code}, moved to this LINE account"),
                    (old, before["new_points"], "console:owner@cafe.tw",
                     "new phone, ID checked")]

    with transaction(sessions) as session:  # the lost phone follows again: an empty member
        again = register_member(session, program, "U-old-phone", later + 2 * DAY).member
        assert again.id not in (old, new) and again.member_code != old_code


def test_a_second_move_with_the_same_code_is_refused_and_says_where_it_went(
        sessions, program, now):
    old = join(sessions, program, now, "U-old-phone")
    new = join(sessions, program, now, "U-new-phone")
    other = join(sessions, program, now, "U-someone")
    code = member(sessions, new).member_code
    move(sessions, program, old, code, now)
    unchanged = snapshot(sessions)
    for target in (old, other):
        with pytest.raises(MoveAlreadyDone) as refused:
            move(sessions, program, target, code, now)
        assert refused.value.message("en") == (
            f"The account with the code {format_code(code)} was already moved (into "
            f"{format_code(member(sessions, old).member_code)}): nothing was moved again.")
    assert snapshot(sessions) == unchanged


def test_a_move_is_refused_with_the_reason_and_nothing_changes(sessions, program, now):
    old = join(sessions, program, now, "U-old-phone")
    used = join(sessions, program, now, "U-shopper")
    buy(sessions, program, used, 300, now)
    worker = join(sessions, program, now, user_id(7))
    with transaction(sessions) as session:
        staff.add_staff(session, user_id(7), now, name="阿明", actor="test")
    fresh = join(sessions, program, now, "U-fresh")
    with transaction(sessions) as session:  # a record imported from a POS: no LINE
        record = Member(member_code="ABCDEFGHJ", tier=program.tiers[0].key, tier_since=now,
                        joined_at=now, last_activity_at=now)
        session.add(record)
        session.flush()
        record_id = record.id

    def code(member_id: int) -> str:
        return member(sessions, member_id).member_code
    unchanged = snapshot(sessions)
    cases = [
        (MoveUnknownAccount, old, "ZZZ-ZZZ-ZZZ", "x"),
        (MoveUnknownAccount, old, "", "x"),
        (MoveToSelf, old, code(old), "x"),
        (MoveTargetHasHistory, old, code(used), "x"),
        (MoveToStaffAccount, old, code(worker), "x"),
        (MoveFromStaffAccount, worker, code(fresh), "x"),
        (MoveNeedsLineAccount, old, "ABC-DEF-GHJ", "x"),
        (MoveFromNoLine, record_id, code(fresh), "x"),
        (ReasonRequired, old, code(fresh), "  "),
    ]
    for error, source, typed, reason in cases:
        with pytest.raises(error) as refused:
            move(sessions, program, source, typed, now, reason=reason)
        assert isinstance(refused.value, LoyaltyError)
        assert refused.value.message("zh-TW") != refused.value.message("en")
    assert snapshot(sessions) == unchanged


def test_messages_waiting_for_the_lost_account_go_to_the_new_one(sessions, program, now):
    old = join(sessions, program, now, "U-old-phone")
    new = join(sessions, program, now, "U-new-phone")
    text = [{"type": "text", "text": "2 more stamps"}]
    with transaction(sessions) as session:
        lost = session.get(Member, old)
        waiting = enqueue(session, lost, "nudge", "nudge:1", text, now).id
        keyed = enqueue(session, lost, "nudge", "nudge:2", text, now, push_key="k-1").id
        welcome = enqueue(session, session.get(Member, new), "receipt", "r:1", text, now).id
    move(sessions, program, old, member(sessions, new).member_code, now)
    with sessions() as session:
        rows = {row.id: (row.member_id, row.line_user_id) for row in
                session.scalars(select(OutboxMessage))}
    assert rows == {waiting: (old, "U-new-phone"),
                    keyed: (old, "U-old-phone"),  # already given its push: sent as it is
                    welcome: (old, "U-new-phone")}


def test_two_moves_at_once_with_one_code_move_it_once(sessions, program, now):
    first, second = (join(sessions, program, now, user) for user in ("U-first", "U-second"))
    code = member(sessions, join(sessions, program, now, "U-new-phone")).member_code
    start, outcomes = threading.Barrier(2), []

    def attempt(member_id: int) -> None:
        start.wait()
        try:
            move(sessions, program, member_id, code, now)
            outcomes.append("moved")
        except MoveAlreadyDone:
            outcomes.append("refused")
    threads = [threading.Thread(target=attempt, args=(m,)) for m in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["moved", "refused"]
    with sessions() as session:
        owners = session.scalars(select(Member.id).where(Member.line_user_id == "U-new-phone")
                                 ).all()
    assert len(owners) == 1 and owners[0] in (first, second)
