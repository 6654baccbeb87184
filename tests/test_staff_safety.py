"""Staff by chat under mistakes and abuse: amounts are digits within a limit, staff serve
no one's account but others', guessing is throttled, and a retyped purchase is asked about."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.loyalty.import_file import read_csv
from bot.loyalty.member_import import import_members
from bot.loyalty.staff import add_staff
from bot.loyalty.timeutil import utcnow
from bot.models import AuditLog, Coupon, Member, PendingAction, Purchase
from tests.line_helpers import flat, follow, post, postback, text, user_id

ALICE, CLERK, KAI = user_id(1), user_id(9), user_id(8)


@pytest.fixture
def shop(client, app, fake_line):
    """Alice and Kai have joined; the clerk and Kai are staff."""
    post(client, [follow(ALICE), follow(KAI), follow(CLERK)])
    with transaction(app.extensions["loyalty"].sessions) as session:
        add_staff(session, CLERK, utcnow(), name="阿明", actor="test")
        add_staff(session, KAI, utcnow(), name="Kai", actor="test")
    fake_line.reset()
    return {uid: member_of(app, uid) for uid in (ALICE, KAI)}


def member_of(app, uid: str) -> Member:
    with app.extensions["loyalty"].sessions() as session:
        return session.scalars(select(Member).where(Member.line_user_id == uid)).one()


def count(app, model, *where) -> int:
    with app.extensions["loyalty"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def said_back(fake_line) -> str:
    return flat(fake_line.replies()[-1]["messages"])


# -- amounts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("amount", ["99999999999", "፩", "12a", "0", "-5", "1.5", "1e3"])
def test_an_amount_that_is_not_whole_digits_within_the_limit_is_refused_with_its_reason(
        client, app, fake_line, shop, amount):
    code = shop[ALICE].member_code
    assert post(client, [text(CLERK, f"集點 {code} {amount}")]).status_code == 200
    assert "金額" in said_back(fake_line)
    assert count(app, Purchase) == 0 and count(app, PendingAction) == 0


def test_full_width_digits_are_an_amount(client, app, fake_line, shop):
    post(client, [text(CLERK, f"集點 {shop[ALICE].member_code} ３００")])
    assert count(app, Purchase, Purchase.amount == 300) == 1


def test_a_coupon_verified_with_a_non_digit_amount_stays_unused(client, app, fake_line, shop):
    with app.extensions["loyalty"].sessions() as session:
        code = session.scalars(select(Coupon.code).where(
            Coupon.member_id == shop[ALICE].id)).first()
    post(client, [text(CLERK, f"核銷 {code} ፩፪")])
    assert "金額" in said_back(fake_line)
    assert count(app, Coupon, Coupon.code == code, Coupon.status == "issued") == 1


# -- self-service ------------------------------------------------------------------------------
def test_staff_cannot_earn_on_their_own_membership_and_the_refusal_is_audited(
        client, app, fake_line, shop):
    post(client, [text(KAI, f"集點 {shop[KAI].member_code} 500")])
    assert "同事" in said_back(fake_line)
    assert member_of(app, KAI).points_balance == 0 and count(app, Purchase) == 0
    assert count(app, AuditLog, AuditLog.action == "staff.earn_failed",
                 AuditLog.reason == "self_service") == 1
    post(client, [text(CLERK, f"集點 {shop[KAI].member_code} 500")])  # a colleague may
    assert member_of(app, KAI).points_balance > 0


@pytest.mark.parametrize("amount", ["", " 300"])
def test_staff_cannot_redeem_their_own_coupon(client, app, fake_line, shop, amount):
    with app.extensions["loyalty"].sessions() as session:
        code = session.scalars(select(Coupon.code).where(
            Coupon.member_id == shop[KAI].id)).first()
    post(client, [text(KAI, f"核銷 {code}{amount}")])
    assert "同事" in said_back(fake_line)
    assert count(app, Coupon, Coupon.code == code, Coupon.status == "issued") == 1
    assert count(app, Purchase) == 0


def test_a_program_that_allows_self_service_lets_staff_earn_on_their_own(
        client, app, fake_line, shop):
    state = app.extensions["loyalty"]
    state.program = dataclasses.replace(state.program, staff_self_service=True)
    post(client, [text(KAI, f"集點 {shop[KAI].member_code} 500")])
    assert member_of(app, KAI).points_balance > 0


# -- guessing ----------------------------------------------------------------------------------
def test_guessing_member_codes_is_throttled_like_coupon_codes(client, app, fake_line, shop):
    for n in range(10):
        post(client, [text(CLERK, f"集點 ABC-DEF-GH{'JKMNPQRSTU'[n]} 100")])
    post(client, [text(CLERK, f"集點 {shop[ALICE].member_code} 100")])
    assert "稍後" in said_back(fake_line)
    assert count(app, Purchase) == 0


def test_guessing_phones_with_link_is_throttled(client, app, fake_line, shop):
    for n in range(10):
        post(client, [text(CLERK, f"綁定 {shop[ALICE].member_code} 09120000{n:02d}")])
    post(client, [text(CLERK, f"綁定 {shop[ALICE].member_code} 0912345678")])
    assert "稍後" in said_back(fake_line)


def test_link_says_the_same_whether_a_phone_is_unknown_or_a_line_members(
        client, app, fake_line, shop, program):
    with transaction(app.extensions["loyalty"].sessions) as session:
        member = session.get(Member, shop[KAI].id)
        member.phone = "0922333444"  # a LINE member's own phone, not an imported record
    post(client, [text(CLERK, f"綁定 {shop[ALICE].member_code} 0922333444")])
    taken = said_back(fake_line)
    post(client, [text(CLERK, f"綁定 {shop[ALICE].member_code} 0922999888")])
    assert taken == said_back(fake_line)


def test_an_imported_record_still_links_by_phone(client, app, fake_line, shop, program):
    data = read_csv(__import__("io").StringIO(
        "phone,name,birthday,points,external_id\n0933111222,Old Alice,,40,P1\n"))
    with app.extensions["loyalty"].sessions() as session:
        import_members(session, program, data, utcnow(), commit=session.commit)
    post(client, [text(CLERK, f"綁定 {shop[ALICE].member_code} 0933111222")])
    assert member_of(app, ALICE).points_balance == 40


# -- a purchase typed twice --------------------------------------------------------------------
def test_the_same_purchase_typed_again_soon_asks_before_recording_a_second(
        client, app, fake_line, shop):
    code = shop[ALICE].member_code
    post(client, [text(CLERK, f"集點 {code} 300")])
    post(client, [text(CLERK, f"集點 {code} 300")])
    assert "分鐘前" in said_back(fake_line) and count(app, Purchase) == 1
    token = said_back(fake_line).split("action=earn_confirm&token=")[1].split('"')[0]
    post(client, [postback(CLERK, f"action=earn_confirm&token={token}")])
    assert count(app, Purchase) == 2
    post(client, [text(CLERK, f"集點 {code} 250")])  # another amount: recorded at once
    assert count(app, Purchase) == 3
