"""Staff verify coupons and record purchases by chat; customers cannot."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.loyalty.codes import format_code
from bot.loyalty.coupons import issue_coupon
from bot.loyalty.staff import add_staff, create_invite, remove_staff
from bot.loyalty.timeutil import utcnow
from bot.models import Coupon, Member, Purchase, Redemption, Staff
from tests.line_helpers import flat, follow, post, postback, text, user_id

ALICE, CLERK = user_id(1), user_id(9)


@pytest.fixture
def shop(client, app, fake_line):
    """Alice has joined; the clerk is staff; returns Alice's member code and welcome coupon."""
    post(client, [follow(ALICE)])
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        add_staff(session, CLERK, utcnow(), name="阿明", actor="test")
        member = alice(session)
        coupon = alice_coupon(session)
    fake_line.reset()
    return member.member_code, coupon.code


def alice(session) -> Member:
    return session.scalars(select(Member).where(Member.line_user_id == ALICE)).one()


def alice_coupon(session) -> Coupon:
    return session.scalars(select(Coupon).where(Coupon.member_id == alice(session).id)
                           .order_by(Coupon.id)).first()


def state_of(app):
    return app.extensions["loyalty"]


def reply_text(fake_line) -> str:
    return flat(fake_line.replies()[-1]["messages"])


def test_verifying_a_coupon_redeems_it_and_tells_the_customer(client, app, fake_line, shop):
    _, code = shop
    post(client, [text(CLERK, f"核銷 {format_code(code).lower()}")])
    assert len(fake_line.replies()) == 1
    fake_line.wait_for(lambda: fake_line.messages_to(ALICE))
    with state_of(app).sessions() as session:
        assert alice_coupon(session).status == "redeemed"
        assert session.scalars(select(Redemption)).one().staff_id is not None


def test_a_second_verification_says_already_used_with_when_and_by_whom(client, fake_line, shop):
    _, code = shop
    post(client, [text(CLERK, f"核銷 {code}")])
    post(client, [text(CLERK, f"verify {code}")])
    answer = reply_text(fake_line)
    assert "阿明" in answer and "used" in answer.lower()


def test_verifying_with_an_amount_checks_the_minimum_and_records_the_purchase(
        client, app, fake_line, shop):
    _, code = shop  # the welcome coupon: NT$50 off from NT$150
    post(client, [text(CLERK, f"核銷 {code} 120")])
    assert "150" in reply_text(fake_line)
    post(client, [text(CLERK, f"核銷　{code}　300")])  # full-width spaces
    with state_of(app).sessions() as session:
        purchase = session.scalars(select(Purchase)).one()
        assert purchase.amount == 250  # after the discount
        assert session.scalars(select(Redemption)).one().purchase_id == purchase.id


def test_an_unknown_code_is_answered_as_such(client, fake_line, shop):
    post(client, [text(CLERK, "核銷 ZZZ-ZZZ-ZZZ")])
    assert "查無此代碼" in reply_text(fake_line)


def test_recording_a_purchase_replies_with_points_and_tells_the_customer(
        client, app, fake_line, shop):
    member_code, _ = shop
    post(client, [text(CLERK, f"集點 {member_code} 300")])
    assert "10" in reply_text(fake_line)
    fake_line.wait_for(lambda: fake_line.messages_to(ALICE))
    with state_of(app).sessions() as session:
        assert alice(session).points_balance == 10


def test_a_big_purchase_needs_the_staff_to_confirm_first(client, app, fake_line, shop):
    member_code, _ = shop
    post(client, [text(CLERK, f"earn {member_code} 5000")])
    answer = fake_line.replies()[-1]["messages"]
    token = flat(answer).split("action=earn_confirm&token=")[1].split('"')[0]
    with state_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Purchase)) == 0
    post(client, [postback(CLERK, f"action=earn_confirm&token={token}")])
    post(client, [postback(CLERK, f"action=earn_confirm&token={token}")])
    with state_of(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Purchase)) == 1


def test_void_cancels_the_staff_members_last_purchase(client, app, fake_line, shop):
    member_code, _ = shop
    post(client, [text(CLERK, f"集點 {member_code} 300")])
    post(client, [text(CLERK, "撤銷")])
    with state_of(app).sessions() as session:
        assert alice(session).points_balance == 0
    post(client, [text(CLERK, "void")])
    assert "nothing" in reply_text(fake_line).lower()


def test_void_undoes_a_redemption_so_the_coupon_can_be_used_again(client, app, fake_line, shop):
    _, code = shop
    post(client, [text(CLERK, f"核銷 {code}")])
    post(client, [text(CLERK, "撤銷")])
    with state_of(app).sessions() as session:
        assert alice_coupon(session).status == "issued"
    post(client, [text(CLERK, f"核銷 {code}")])
    with state_of(app).sessions() as session:
        assert alice_coupon(session).status == "redeemed"
        # the void is a correction recorded on the first redemption, not a delete
        first, second = session.scalars(select(Redemption).order_by(Redemption.id)).all()
        assert first.voided_at is not None and first.voided_by.startswith("staff:")
        assert second.voided_at is None


def test_a_second_void_does_not_undo_the_same_redemption_twice(client, app, fake_line, shop):
    _, code = shop
    post(client, [text(CLERK, f"核銷 {code}")])
    post(client, [text(CLERK, "撤銷")])
    post(client, [text(CLERK, "撤銷")])
    assert "nothing" in reply_text(fake_line).lower() or "沒有" in reply_text(fake_line)
    with state_of(app).sessions() as session:
        assert session.scalars(select(Redemption)).one().voided_at is not None


@pytest.mark.parametrize("command", ["核銷 {code}", "集點 {member} 300", "撤銷", "void"])
def test_a_customer_who_sends_a_staff_command_is_refused_and_nothing_changes(
        client, app, fake_line, shop, command):
    member_code, code = shop
    post(client, [text(ALICE, command.format(code=code, member=member_code))])
    assert fake_line.replies()[-1]["messages"][0]["type"] == "text"
    with state_of(app).sessions() as session:
        assert alice_coupon(session).status == "issued"
        assert session.scalar(select(func.count()).select_from(Purchase)) == 0


def test_a_removed_staff_member_loses_their_rights_at_once(client, app, fake_line, shop):
    _, code = shop
    with transaction(state_of(app).sessions) as session:
        remove_staff(session, CLERK, utcnow(), actor="test")
    post(client, [text(CLERK, f"核銷 {code}")])
    with state_of(app).sessions() as session:
        assert alice_coupon(session).status == "issued"


def test_failed_verifications_are_throttled_per_staff_member(client, app, fake_line, shop):
    _, code = shop
    for _ in range(10):
        post(client, [text(CLERK, "核銷 ABC-DEF-GHJ")])
    post(client, [text(CLERK, f"核銷 {code}")])
    with state_of(app).sessions() as session:
        assert alice_coupon(session).status == "issued"


def test_an_invite_code_makes_the_sender_staff_once(client, app, fake_line, shop):
    newcomer = user_id(10)
    post(client, [follow(newcomer)])
    with transaction(state_of(app).sessions) as session:
        code = create_invite(session, utcnow(), name="小華", actor="test")
    post(client, [text(newcomer, f"員工 {format_code(code)}")])
    post(client, [text(user_id(11), f"員工 {code}")])
    with state_of(app).sessions() as session:
        names = session.scalars(select(Staff.name).where(Staff.active)).all()
    assert sorted(names) == ["小華", "阿明"]


def test_an_expired_coupon_is_refused_with_its_date(client, app, fake_line, shop):
    state = state_of(app)
    past = utcnow() - dt.timedelta(days=400)
    with transaction(state.sessions) as session:
        member = alice(session)
        old = issue_coupon(session, state.program, member.id, "nt50", past, reason="t")
    post(client, [text(CLERK, f"核銷 {old.code}")])
    assert "過期" in reply_text(fake_line)
