"""Members join once, keep everything when they leave, and set a birthday once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.loyalty.errors import BirthdayAlreadySet, InvalidAmount, InvalidBirthday, UnknownMember
from bot.loyalty.members import (
    adjust_points,
    find_by_code,
    register_member,
    set_birthday,
    unfollow,
)
from bot.models import AuditLog, Coupon, Member
from tests.helpers import balance, join


def register(sessions, program, now, user="U-alice", **kwargs):
    with transaction(sessions) as session:
        return register_member(session, program, user, now, **kwargs)


def test_joining_gives_a_member_code_and_the_welcome_coupon(sessions, program, now):
    joined = register(sessions, program, now, display_name="小美 \"Mei\" 🌸", language="en")
    assert joined.created and joined.welcome_coupon is not None
    assert len(joined.member.member_code) == 9
    assert joined.member.display_name == "小美 \"Mei\" 🌸"
    with sessions() as session:
        assert find_by_code(session, joined.member.member_code.lower()).id == joined.member.id


def test_leaving_and_rejoining_gives_no_second_welcome_coupon(sessions, program, now):
    first = register(sessions, program, now)
    with transaction(sessions) as session:
        unfollow(session, "U-alice", now + dt.timedelta(days=1))
    with sessions() as session:
        assert session.get(Member, first.member.id).status == "blocked"
    again = register(sessions, program, now + dt.timedelta(days=2))
    assert again.reactivated and not again.created
    assert again.member.id == first.member.id and again.welcome_coupon is None
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Coupon)) == 1
        assert session.get(Member, first.member.id).status == "active"


def test_a_member_keeps_points_while_away(sessions, program, now):
    member = join(sessions, program, now)
    with transaction(sessions) as session:
        adjust_points(session, program, member, 40, now, reason="gift", actor="owner")
        unfollow(session, "U-alice", now)
    register(sessions, program, now)
    assert balance(sessions, member) == 40


def test_a_birthday_is_set_once_and_only_the_owner_changes_it(sessions, program, now):
    member = join(sessions, program, now)
    with transaction(sessions) as session:
        set_birthday(session, member, "2000-02-29", now, actor="U-alice")
    with pytest.raises(BirthdayAlreadySet), transaction(sessions) as session:
        set_birthday(session, member, "2000-03-01", now, actor="U-alice")
    with transaction(sessions) as session:
        set_birthday(session, member, dt.date(2000, 3, 1), now, actor="owner", by_owner=True)
    with sessions() as session:
        assert session.get(Member, member).birthday == dt.date(2000, 3, 1)
        assert session.scalar(select(func.count()).select_from(AuditLog)
                              .where(AuditLog.action == "member.birthday")) == 2


@pytest.mark.parametrize("value", ["2001-02-29", "not a date", "2999-01-01", "1800-01-01"])
def test_an_impossible_birthday_is_refused(sessions, program, now, value):
    member = join(sessions, program, now)
    with pytest.raises(InvalidBirthday), transaction(sessions) as session:
        set_birthday(session, member, value, now, actor="U-alice")
    with sessions() as session:
        assert session.get(Member, member).birthday is None


def test_a_manual_adjustment_needs_a_reason_and_is_audited(sessions, program, now):
    member = join(sessions, program, now)
    with pytest.raises(InvalidAmount), transaction(sessions) as session:
        adjust_points(session, program, member, 10, now, reason="  ", actor="owner")
    with pytest.raises(InvalidAmount), transaction(sessions) as session:
        adjust_points(session, program, member, 0, now, reason="nothing", actor="owner")
    with transaction(sessions) as session:
        adjust_points(session, program, member, 10, now, reason="coffee spilled", actor="owner")
    with sessions() as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "points.adjust")).one()
    assert (entry.points_delta, entry.reason, entry.actor) == (10, "coffee spilled", "owner")


def test_an_unknown_member_code_is_reported_as_such(sessions):
    with pytest.raises(UnknownMember), sessions() as session:
        find_by_code(session, "not-a-code")


def test_a_name_of_one_or_two_characters_is_found_in_any_case_and_a_missing_one_is_not(
        sessions, program):
    from bot.loyalty.directory import search_members

    joined = dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC)
    with transaction(sessions) as session:
        for n, name in enumerate(("王小美", "Grace Chen", "陳美華", "林志明")):
            register_member(session, program, f"U-{n}", joined, display_name=name)
    with sessions() as session:
        def names(text: str) -> set[str]:
            return {m.display_name for m in search_members(session, text)}
        assert names("美") == {"王小美", "陳美華"}
        assert names("小美") == {"王小美"}
        assert names("GR") == names("gr") == {"Grace Chen"}
        assert names("e C") == {"Grace Chen"}
        assert names("某某") == names("某") == set()
