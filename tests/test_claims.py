"""Claim codes: staff (or the POS) record an order without its customer and show a one-time
QR; the customer scans it, sends `領取 CODE`, and the receipt is a free reply, never a push."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from bot.config import Config, ConfigError
from bot.db import transaction
from bot.jobs import JOBS, run_job
from bot.line.qr import payload_of
from bot.loyalty.campaigns import create_campaign, set_status
from bot.loyalty.claims import make_claim
from bot.loyalty.codes import format_code
from bot.loyalty.coupons import issue_coupon
from bot.loyalty.report import build_report
from bot.loyalty.staff import add_staff
from bot.loyalty.timeutil import utcnow
from bot.models import AuditLog, Claim, Coupon, Member, OutboxMessage, Purchase, Refund
from bot.program import ProgramError, load_program
from tests.line_helpers import flat, follow, post, postback, text, unfollow, user_id
from tests.test_api import token

ALICE, BOB, CLERK = user_id(1), user_id(2), user_id(9)
EXAMPLE = Path(__file__).resolve().parents[1] / "program.example.toml"


@pytest.fixture
def shop(client, app, fake_line):
    """Alice and Bob follow the shop; the clerk (阿明) is staff and a member too."""
    for user, name in ((ALICE, "Alice"), (BOB, "Bob"), (CLERK, "阿明")):
        fake_line.add_profile(user, name, "zh-TW")
    post(client, [follow(ALICE), follow(BOB), follow(CLERK)])
    with transaction(state_of(app).sessions) as session:
        add_staff(session, CLERK, utcnow(), name="阿明", actor="test")
    fake_line.reset()
    return state_of(app)


def state_of(app):
    return app.extensions["loyalty"]


def member(state, user: str) -> Member:
    with state.sessions() as session:
        return session.scalars(select(Member).where(Member.line_user_id == user)).one()


def last_reply(fake_line) -> list[dict]:
    return fake_line.replies()[-1]["messages"]


def make_code(client, fake_line, words: str = "集點 350") -> str:
    """The clerk asks for a claim code; returns it as printed (XXX-XXX-XXX)."""
    post(client, [text(CLERK, words)])
    found = re.search(r"[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", flat(last_reply(fake_line)))
    assert found, flat(last_reply(fake_line))
    return found.group(0)


def pushed_or_queued(state, user: str) -> int:
    with state.sessions() as session:
        who = session.scalars(select(Member.id).where(Member.line_user_id == user)).one()
        return session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.member_id == who))


def test_scanning_a_claim_code_gives_the_customer_the_purchase_in_a_reply_and_no_push(
        client, app, fake_line, shop):
    code = make_code(client, fake_line)
    card = last_reply(fake_line)[0]
    qr = card["contents"]["hero"]["url"]  # the QR opens the chat with the claim typed
    assert payload_of("test-key", "https://cafe.example", qr) == (
        "https://line.me/R/oaMessage/%40mountainmist/?" + quote(f"領取 {code}", safe=""))
    assert "NT$350" in flat([card])
    with shop.sessions() as session:
        order = session.scalars(select(Purchase)).one()
        assert (order.member_id, order.amount, order.points_earned) == (None, 350, 0)
    before = member(shop, ALICE).points_balance

    post(client, [text(ALICE, f"領取 {code.lower()}")])
    receipt = flat(last_reply(fake_line))
    after = member(shop, ALICE)
    with shop.sessions() as session:
        order = session.scalars(select(Purchase)).one()
        claim = session.scalars(select(Claim)).one()
    assert order.member_id == after.id and order.points_earned == 11  # NT$350 / 30
    assert after.points_balance == before + 11
    assert order.stamps_earned >= 1
    assert (claim.status, claim.claimed_by) == ("claimed", after.id)
    assert "11" in receipt and f"{after.points_balance:,}" in receipt
    assert pushed_or_queued(shop, ALICE) == 0 and fake_line.messages_to(ALICE) == []


def test_a_coupon_verified_with_an_amount_gives_a_code_for_its_owner_and_the_news_rides_the_reply(
        client, app, fake_line, shop):
    with shop.sessions() as session:
        coupon = session.scalars(select(Coupon).join(Member).where(
            Member.line_user_id == ALICE)).first()  # the welcome coupon: NT$50 off
    post(client, [text(CLERK, f"核銷 {coupon.code} 200")])
    staff_reply = last_reply(fake_line)
    assert len(staff_reply) == 2 and "NT$150" in flat(staff_reply[1:])  # 200 - 50
    code = re.search(r"[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", flat(staff_reply[1:])).group(0)
    post(client, [text(BOB, f"領取 {code}")])  # the coupon's owner only
    assert "另一位會員" in flat(last_reply(fake_line))
    post(client, [text(ALICE, f"領取 {code}")])
    reply = last_reply(fake_line)
    assert len(reply) == 2 and "優惠券" in flat(reply[1:])  # receipt, then "coupon used"
    assert member(shop, ALICE).points_balance == 5  # NT$150 / 30
    run_job(shop.jobs(), JOBS["send"], utcnow() + dt.timedelta(hours=1))
    assert fake_line.pushes() == []
    with shop.sessions() as session:
        assert {(r.kind, r.via) for r in session.scalars(select(OutboxMessage))} == {
            ("coupon_used", "reply")}


def test_a_coupon_code_nobody_scans_still_tells_its_owner_by_push_when_it_expires(
        client, app, fake_line, shop):
    with shop.sessions() as session:
        coupon = session.scalars(select(Coupon).join(Member).where(
            Member.line_user_id == ALICE)).first()
    post(client, [text(CLERK, f"核銷 {coupon.code} 200")])
    run_job(shop.jobs(), JOBS["send"], utcnow() + dt.timedelta(minutes=1))
    assert fake_line.pushes() == []  # the code still lives: the news waits for its reply
    run_job(shop.jobs(), JOBS["send"], utcnow() + dt.timedelta(minutes=4))
    (push,) = fake_line.wait_for(lambda: fake_line.pushes())
    assert push["to"] == ALICE and "優惠券" in flat(push["messages"])


def alice_coupon(state) -> Coupon:
    with state.sessions() as session:
        return session.scalars(select(Coupon).join(Member).where(
            Member.line_user_id == ALICE)).first()


def test_cancelling_a_coupons_claim_code_gives_the_coupon_back_and_tells_nobody(
        client, app, fake_line, shop):
    coupon = alice_coupon(shop)
    post(client, [text(CLERK, f"核銷 {coupon.code} 200")])
    code = re.findall(r"[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", flat(last_reply(fake_line)))[-1]
    post(client, [text(CLERK, f"取消領取 {code}")])
    assert "已取消" in flat(last_reply(fake_line))
    assert alice_coupon(shop).status == "issued"  # the customer still has it
    post(client, [text(CLERK, "撤銷")])  # nothing of that sale is left to undo
    assert "撤銷" in flat(last_reply(fake_line)) or "沒有" in flat(last_reply(fake_line))
    assert alice_coupon(shop).status == "issued"
    run_job(shop.jobs(), JOBS["send"], utcnow() + dt.timedelta(minutes=5))
    assert fake_line.pushes() == []  # no "coupon used" for a coupon that was not used
    with shop.sessions() as session:
        order = session.scalars(select(Purchase)).one()
        assert (order.member_id, order.refunded_amount) == (None, 150)


def test_voiding_a_coupons_claim_code_takes_back_its_coupon_used_news(
        client, app, fake_line, shop):
    coupon = alice_coupon(shop)
    post(client, [text(CLERK, f"核銷 {coupon.code} 200")])
    post(client, [text(CLERK, "撤銷")])
    assert alice_coupon(shop).status == "issued"
    run_job(shop.jobs(), JOBS["send"], utcnow() + dt.timedelta(minutes=5))
    assert fake_line.pushes() == []
    post(client, [text(CLERK, f"核銷 {coupon.code} 300")])  # really used, later
    code = re.findall(r"[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", flat(last_reply(fake_line)))[-1]
    post(client, [text(ALICE, f"領取 {code}")])
    assert "優惠券" in flat(last_reply(fake_line)[1:])  # its news is told this time


def test_a_coupon_of_a_member_without_line_is_credited_at_once(client, app, fake_line, shop):
    with transaction(shop.sessions) as session:  # imported from the POS: no LINE account
        imported = Member(line_user_id=None, member_code="ZZZ222333", display_name="王先生",
                          tier="member", tier_since=utcnow(), joined_at=utcnow(),
                          last_activity_at=utcnow())
        session.add(imported)
        session.flush()
        code = issue_coupon(session, shop.program, imported.id, "nt50", utcnow(),
                            reason="test").code
    post(client, [text(CLERK, f"核銷 {code} 300")])
    assert len(last_reply(fake_line)) == 1  # no claim code: nobody could ever take it
    with shop.sessions() as session:
        order = session.scalars(select(Purchase)).one()
        assert order.member_id is not None and order.amount == 250


def test_a_lone_claim_word_is_left_to_a_campaign_keyword(client, app, fake_line, shop):
    with transaction(shop.sessions) as session:
        campaign = create_campaign(session, shop.program, "gift", template="nt50",
                                   now=utcnow(), keyword="領取", cap=10)
        set_status(session, campaign, "open", utcnow())
    post(client, [text(ALICE, "領取")])
    assert "領取格式" not in flat(last_reply(fake_line))
    with shop.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Coupon).join(Member).where(
            Member.line_user_id == ALICE)) == 2  # the welcome coupon and the campaign's


def test_a_member_code_is_never_read_as_an_amount(client, app, fake_line, shop):
    alice_code = format_code(member(shop, ALICE).member_code)
    post(client, [text(CLERK, f"集點 {alice_code}")])
    assert f"集點 {alice_code} 150" in flat(last_reply(fake_line))  # "amount missing"
    digits_only = "234567892"  # a member code may be all digits: still a code, not NT$234M
    post(client, [text(CLERK, f"集點 {digits_only}")])
    assert "234-567-892" in flat(last_reply(fake_line))
    with shop.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Purchase)) == 0
        assert session.scalar(select(func.count()).select_from(Claim)) == 0


@pytest.mark.parametrize("typed", ["100元", "NT$100", "$100", "100 元", "ＮＴ＄１００"])
def test_amounts_with_a_currency_are_accepted(client, app, fake_line, shop, typed):
    alice_code = format_code(member(shop, ALICE).member_code)
    post(client, [text(CLERK, f"集點 {alice_code} {typed}")])
    with shop.sessions() as session:
        assert session.scalars(select(Purchase.amount)).one() == 100


@pytest.mark.parametrize(("typed", "why"), [("1.5", "no decimals"), ("-30", "more than 0"),
                                            ("abc", "in digits")])
def test_a_refused_amount_says_why(client, app, fake_line, shop, typed, why):
    post(client, [text(CLERK, f"集點 {typed}")])
    assert why in flat(last_reply(fake_line))
    with shop.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Purchase)) == 0


def test_a_code_taken_once_is_refused_to_the_next_customer_and_the_first_is_told_so(
        client, app, fake_line, shop):
    code = make_code(client, fake_line)
    post(client, [text(ALICE, f"領取 {code}")])
    post(client, [text(BOB, f"claim {code}")])
    assert "已被領取過" in flat(last_reply(fake_line))
    post(client, [text(ALICE, f"領取 {code}")])
    assert "你已經領取過" in flat(last_reply(fake_line))
    assert member(shop, BOB).points_balance == 0
    post(client, [text(CLERK, f"領取查詢 {code}")])  # who took it, for the counter
    answer = flat(last_reply(fake_line))
    assert format_code(member(shop, ALICE).member_code) in answer and "NT$350" in answer


def test_an_expired_code_gives_nobody_points_and_the_sale_stays_revenue(
        client, app, fake_line, shop):
    with transaction(shop.sessions) as session:  # made four minutes ago: codes live three
        view = make_claim(session, shop.program, 500, utcnow() - dt.timedelta(minutes=4),
                          source="line", order_id="claim:old", actor="test")
        code = format_code(view.claim.code)
    post(client, [text(ALICE, f"領取 {code}")])
    assert "過期" in flat(last_reply(fake_line))
    assert member(shop, ALICE).points_balance == 0
    post(client, [text(CLERK, f"領取查詢 {code}")])
    assert "沒有人領取" in flat(last_reply(fake_line))
    with shop.sessions() as session:
        report = build_report(session, shop.program, utcnow() - dt.timedelta(days=1),
                              utcnow() + dt.timedelta(minutes=1), utcnow())
    assert (report.sales.revenue, report.sales.purchases, report.sales.customers,
            report.sales.unclaimed) == (500, 1, 0, 1)


def test_a_cancelled_code_refunds_its_order_and_cannot_be_taken(client, app, fake_line, shop):
    code = make_code(client, fake_line, "集點 420")
    post(client, [text(CLERK, f"取消領取 {code}")])
    assert "已取消" in flat(last_reply(fake_line))
    post(client, [text(ALICE, f"領取 {code}")])
    assert "取消" in flat(last_reply(fake_line))
    with shop.sessions() as session:
        order = session.scalars(select(Purchase)).one()
        assert (order.member_id, order.refunded_amount) == (None, 420)
    assert member(shop, ALICE).points_balance == 0


def test_staff_cannot_take_their_own_code(client, app, fake_line, shop):
    code = make_code(client, fake_line)
    post(client, [text(CLERK, f"領取 {code}")])
    with shop.sessions() as session:
        assert session.scalars(select(Claim.status)).one() == "open"
    assert member(shop, CLERK).points_balance == 0


def test_customers_guessing_codes_are_throttled(client, app, fake_line, shop):
    code = make_code(client, fake_line)
    post(client, [text(BOB, f"領取 {n:09d}".replace("0", "2").replace("1", "3"))
                  for n in range(10)])
    assert "查無此領取碼" in flat(last_reply(fake_line))
    post(client, [text(BOB, f"領取 {code}")])  # even a real code waits now
    assert "10 分鐘" in flat(last_reply(fake_line))
    with shop.sessions() as session:
        assert session.scalars(select(Claim.status)).one() == "open"
        assert session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "claim.take_failed")) == 10
    post(client, [text(ALICE, f"領取 {code}")])  # somebody else is not held up
    assert member(shop, ALICE).points_balance == 11


def test_a_customer_who_blocked_the_shop_still_gets_the_purchase_and_no_push(
        client, app, fake_line, shop):
    code = make_code(client, fake_line)
    post(client, [unfollow(ALICE)])
    post(client, [text(ALICE, f"領取 {code}")])  # LINE delivers it, the reply may fail
    assert member(shop, ALICE).points_balance == 11
    assert pushed_or_queued(shop, ALICE) == 0


def test_a_large_amount_is_confirmed_before_its_code_is_made(client, app, fake_line, shop):
    post(client, [text(CLERK, "集點 5000")])  # the example confirms above NT$3,000
    ask = last_reply(fake_line)[0]
    with shop.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 0
    data = re.search(r"action=earn_confirm&token=[^\"]+", flat([ask])).group(0)
    post(client, [postback(CLERK, data)])
    assert "NT$5,000" in flat(last_reply(fake_line))
    post(client, [postback(CLERK, data)])  # a second tap makes no second code
    with shop.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 1


def test_each_staff_member_has_a_daily_total_for_claim_codes(client, app, fake_line, shop):
    shop.program = dataclasses.replace(shop.program, claims=dataclasses.replace(
        shop.program.claims, staff_daily_total=1000))
    make_code(client, fake_line, "集點 600")
    post(client, [text(CLERK, "集點 500")])
    assert "上限" in flat(last_reply(fake_line)) and "1,000" in flat(last_reply(fake_line))
    with shop.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 1


def test_void_cancels_the_staff_members_last_code(client, app, fake_line, shop):
    code = make_code(client, fake_line)
    post(client, [text(CLERK, "撤銷")])
    post(client, [text(ALICE, f"領取 {code}")])
    assert "取消" in flat(last_reply(fake_line))
    assert member(shop, ALICE).points_balance == 0


def test_the_report_counts_codes_made_taken_and_expired_per_staff_member(
        client, app, fake_line, shop):
    taken = make_code(client, fake_line)
    post(client, [text(ALICE, f"領取 {taken}")])
    make_code(client, fake_line, "集點 200")
    with transaction(shop.sessions) as session:
        session.execute(Claim.__table__.update().where(Claim.status == "open")
                        .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    with shop.sessions() as session:
        report = build_report(session, shop.program, utcnow() - dt.timedelta(days=1),
                              utcnow() + dt.timedelta(minutes=1), utcnow())
    row = next(r for r in report.staff if r.key.endswith("阿明"))
    assert (row.claims_made, row.claims_claimed, row.claims_expired) == (2, 1, 1)
    assert report.sales.revenue == 550 and report.sales.customers == 1


# -- the POS ---------------------------------------------------------------------------------
def test_the_pos_makes_a_code_for_an_order_then_the_order_cannot_be_recorded_again(
        client, app, fake_line, shop):
    secret = token(shop)
    headers = {"Authorization": f"Bearer {secret}"}
    made = client.post("/api/v1/claims", json={"amount": 900, "order_id": "A-1",
                                               "source": "pos"}, headers=headers)
    assert made.status_code == 201, made.json
    body = made.json
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(hours=71) < expires - utcnow() <= dt.timedelta(hours=72)  # printed
    assert body["claim_url"].endswith(quote(f"領取 {body['code']}", safe=""))
    again = client.post("/api/v1/claims", json={"amount": 900, "order_id": "A-1",
                                                "source": "pos"}, headers=headers)
    assert again.status_code == 200 and again.json["code"] == body["code"]
    alice_code = member(shop, ALICE).member_code
    taken_by_purchase = client.post("/api/v1/purchases", headers=headers, json={
        "member": {"member_code": alice_code}, "amount": 900, "order_id": "A-1",
        "source": "pos"})
    assert taken_by_purchase.status_code == 409
    assert member(shop, ALICE).points_balance == 0

    post(client, [text(ALICE, f"領取 {body['code']}")])
    assert member(shop, ALICE).points_balance == 30
    state = client.get(f"/api/v1/claims/{body['code']}", headers=headers).json
    assert (state["status"], state["member_code"]) == ("claimed", alice_code)
    refund = client.post("/api/v1/refunds", headers=headers, json={
        "order_id": "A-1", "source": "pos", "refund_id": "R-1", "amount": 900})
    assert refund.status_code == 201 and refund.json["points_reversed"] == 30
    assert member(shop, ALICE).points_balance == 0


def test_an_unclaimed_pos_order_can_be_refunded_and_its_code_stops_working(
        client, app, fake_line, shop):
    headers = {"Authorization": f"Bearer {token(shop)}"}
    code = client.post("/api/v1/claims", json={"amount": 600, "order_id": "B-1"},
                       headers=headers).json["code"]
    refund = client.post("/api/v1/refunds", headers=headers, json={
        "order_id": "B-1", "refund_id": "R-1", "amount": 200})
    assert refund.status_code == 201 and refund.json["points_reversed"] == 0
    post(client, [text(ALICE, f"領取 {code}")])
    assert "取消" in flat(last_reply(fake_line))
    assert member(shop, ALICE).points_balance == 0
    with shop.sessions() as session:
        assert session.scalars(select(Refund.amount)).one() == 200
        assert session.scalars(select(Purchase.refunded_amount)).one() == 200
    cancelled = client.post(f"/api/v1/claims/{code}/cancel", headers=headers)
    assert cancelled.status_code == 409 and cancelled.json["code"] == "claim_cancelled"
    assert client.get("/api/v1/claims/ZZZ-ZZZ-ZZZ", headers=headers).status_code == 404


# -- settings ----------------------------------------------------------------------------------
def test_claims_on_with_a_line_channel_need_the_official_accounts_basic_id(line_config):
    from bot.bootstrap import build

    with pytest.raises(ConfigError, match="LINE_OA_BASIC_ID"):
        build(dataclasses.replace(line_config, line_oa_basic_id=""))
    simulator: Config = dataclasses.replace(line_config, line_oa_basic_id="", simulator=True)
    build(simulator).close()  # the simulator keeps working without it


def test_a_code_may_live_at_most_72_hours(tmp_path):
    example = EXAMPLE.read_text(encoding="utf-8")
    bad = tmp_path / "p.toml"
    bad.write_text(example.replace("{ pos = 4320 }", "{ pos = 4321 }"), encoding="utf-8")
    with pytest.raises(ProgramError, match=r"claims\.minutes_by_source\.pos.*72 hours"):
        load_program(bad)
    off = tmp_path / "off.toml"
    off.write_text(example.replace("enabled = true", "enabled = false", 1), encoding="utf-8")
    assert load_program(off).claims.enabled is False


def test_the_receipt_shows_the_stamp_card_and_why_no_stamp_was_given(
        client, app, fake_line, shop):
    def claim_for_alice(amount: int) -> str:
        code = make_code(client, fake_line, f"集點 {amount}")
        post(client, [text(ALICE, f"領取 {code}")])
        return flat(last_reply(fake_line))

    goal = shop.program.stamps.goal
    first = claim_for_alice(350)  # a stamp (and the starter stamps of a first purchase)
    assert re.search(rf"集章卡 \d+ / {goal} 章", first)
    assert "未滿 NT$80，這次沒有集章" in claim_for_alice(50)  # below the stamp minimum
    assert "今天已集過章" in claim_for_alice(200)  # one stamp a day


def test_staff_typing_something_unknown_get_their_commands_not_silence(
        client, app, fake_line, shop):
    post(client, [text(CLERK, "幫我看一下")])
    answer = flat(last_reply(fake_line))
    assert "店員指令" in answer and "集點 金額" in answer
    fake_line.reset()
    post(client, [text(ALICE, "幫我看一下")])  # a customer: left to the owner's hand reply
    assert fake_line.replies() == []


def test_a_staff_members_staff_answers_are_marked_apart_from_their_customer_ones(
        client, app, fake_line, shop):
    post(client, [text(CLERK, "集點")])  # a staff command: its text answer is marked
    assert flat(last_reply(fake_line)).startswith('[{"type": "text", "text": "【店員】')
    post(client, [text(CLERK, "說明")])  # the same person as a customer: not marked
    assert "【店員】" not in flat(last_reply(fake_line))
