"""The console's campaigns page: a campaign made from a coupon template for members picked by
tags, counted with the figures of `campaign send --dry-run`, sent now or at a local time by
the clock (once, however many clocks run), claim campaigns opened and closed, and each
campaign's results; bad input changes nothing."""

from __future__ import annotations

import datetime as dt
import html as markup
import re

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.jobs import JOBS, run_job
from bot.loyalty import campaigns, segments
from bot.loyalty.coupons import redeem_coupon
from bot.loyalty.errors import CampaignSending
from bot.loyalty.members import register_member
from bot.loyalty.purchases import record_purchase
from bot.loyalty.timeutil import utcnow
from bot.models import AuditLog, Campaign, Coupon, OutboxMessage
from tests import test_concurrency
from tests import test_console as console_tests
from tests.line_helpers import user_id
from tests.test_console import csrf, invite, set_password, setup_owner, sign_in
from tests.test_jobs import make_runtime

PAGE = "/admin/campaigns"
# the console tests' fixtures: an app on each database, its test client, quick hashes
config, app, browser = console_tests.config, console_tests.app, console_tests.browser
quick_hashes = console_tests.quick_hashes
race = test_concurrency.race  # the multi-process race fixture


@pytest.fixture
def shop(app, browser):
    """An owner (browser) and a manager signed in; four members, three tagged `regulars`,
    one of them also `moved-away`, one with no LINE account (it gets no push)."""
    setup_owner(browser)
    manager = app.test_client()
    set_password(manager, invite(app, "mei@cafe.tw", "manager"))
    assert sign_in(manager, "mei@cafe.tw").status_code == 302
    rt = app.extensions["loyalty"]
    ids = []
    with transaction(rt.sessions) as session:
        for n in range(1, 5):
            member = register_member(session, rt.program, user_id(n), utcnow()).member
            ids.append(member.id)
            if n <= 3:
                segments.add_tag(session, member, "regulars", utcnow(), actor="test")
        segments.add_tag(session, member_of(session, ids[2]), "moved-away", utcnow(),
                         actor="test")
        member_of(session, ids[1]).line_user_id = None  # a member the POS made, no LINE
    return rt, manager, ids


def member_of(session, member_id: int):
    from bot.models import Member
    return session.get(Member, member_id)


def post(client, **fields):
    return client.post(PAGE, data={"csrf_token": csrf(client, PAGE), **fields})


def form(**fields) -> dict:
    """The new-campaign form: nt50 for regulars who did not move away, with a LINE push."""
    return {"template": "nt50", "include": ["regulars"], "exclude": ["moved-away"],
            "mode": "issue", "push": "1", **fields}


def made(rt) -> list[Campaign]:
    with rt.sessions() as session:
        return list(session.scalars(select(Campaign).order_by(Campaign.id)))


def coupons_of(rt, key: str) -> dict[int, int]:
    """Member id -> how many of the campaign's coupons they have."""
    with rt.sessions() as session:
        return dict(session.execute(
            select(Coupon.member_id, func.count()).where(Coupon.reason == f"campaign:{key}")
            .group_by(Coupon.member_id)).all())


def pushes_of(rt, key: str) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.dedupe_key.like(f"campaign:{key}:%")))


def test_a_manager_counts_and_creates_a_campaign_with_the_dry_runs_figures(app, shop):
    rt, manager, ids = shop
    counted = manager.get(PAGE + "/reach", query_string=form())
    assert counted.status_code == 200
    figures = counted.get_json()
    # regulars are members 1-3; member 3 moved away; member 2 has no LINE account
    assert (figures["members"], figures["pushes"]) == (2, 1)
    assert "會送到 2 位會員，需要 1 則 LINE 推播" in figures["text"]
    assert "本月額度還剩 3,000 則（最後 300 則留給消費通知與到期提醒）" in figures["text"]
    # without the page's script: the count button posts the form, which keeps its values
    page = post(manager, action="count", **form(name="冬季感謝"))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert figures["text"] in html and 'value="冬季感謝"' in html
    assert re.search(r'value="moved-away" checked', html)
    assert made(rt) == []  # counting made nothing
    page = post(manager, action="create", **form(name="冬季感謝", key="winter"))
    assert "活動「冬季感謝」已建立（草稿）" in page.get_data(as_text=True)
    (campaign,) = made(rt)
    assert (campaign.key, campaign.segment, campaign.mode, campaign.push, campaign.status) == (
        "winter", "regulars and not moved-away", "issue", True, "draft")
    dry = app.test_cli_runner().invoke(args=["campaign", "send", "winter", "--dry-run"])
    assert dry.output == ('winter: 2 members get "冬季感謝"; 1 LINE pushes (3,000 left in '
                          "this month's allowance, the last 300 kept for receipts and expiry "
                          "warnings)\n")
    with rt.sessions() as session:
        logged = session.scalars(select(AuditLog).where(
            AuditLog.action == "campaign.create")).one()
    assert logged.actor == "console:mei@cafe.tw"
    assert coupons_of(rt, "winter") == {}  # a draft gives nothing


def test_the_count_in_english_and_a_key_made_when_none_is_given(shop):
    rt, manager, _ = shop
    manager.set_cookie("lang", "en", path="/admin")
    counted = manager.get(PAGE + "/reach", query_string=form(push=""))
    assert counted.get_json()["text"] == "It reaches 2 members and needs 0 LINE pushes. " \
                                         "No pushes."
    page = post(manager, action="create", **form(exclude=[]))
    assert 'Campaign "折價NT$50" created (a draft)' in markup.unescape(page.get_data(
        as_text=True))
    (campaign,) = made(rt)
    assert re.fullmatch(r"c\d{8}-[0-9a-f]{4}", campaign.key)
    assert campaign.segment == "regulars"


@pytest.mark.parametrize(("fields", "says", "counted_too"), [
    ({"template": "nope"}, "請選一種優惠券。", True),
    ({"include": ["no-such-tag"]}, "沒有這個標籤，什麼都沒有改變。", True),
    ({"mode": "claim", "keyword": ""}, "關鍵字領取的活動要填領取關鍵字。", True),
    ({"mode": "claim", "keyword": "冬季", "cap": "0"}, "領取上限請填 1 到 1,000,000 的整數",
     True),
    ({"mode": "claim", "keyword": "冬季", "cap": "十"}, "領取上限請填 1 到 1,000,000 的整數",
     True),
    ({"name": "x" * 201}, "活動名稱最多 200 個字", True),
    ({"mode": "claim", "keyword": "two words"}, "領取關鍵字是一個詞（不含空白）", False),
    ({"key": "Winter Sale"}, "活動代號只能用小寫英文字母、數字、_ 和 -", False),
])
def test_bad_input_is_refused_in_the_readers_words_and_makes_nothing(shop, fields, says,
                                                                     counted_too):
    rt, manager, _ = shop
    page = post(manager, action="create", **form(**fields))
    assert page.status_code == 400 and says in page.get_data(as_text=True)
    assert made(rt) == []
    counted = manager.get(PAGE + "/reach", query_string=form(**fields))
    if counted_too:  # the count reads the same form (a key or keyword is checked on creation)
        assert says in counted.get_json()["error"] and "members" not in counted.get_json()


def test_a_taken_key_or_keyword_and_an_unknown_action_change_nothing(shop):
    rt, manager, _ = shop
    post(manager, action="create", **form(key="winter", mode="claim", keyword="冬季"))
    again = post(manager, action="create", **form(key="winter"))
    assert again.status_code == 400 and "已經有代號「winter」的活動了" in again.get_data(
        as_text=True)
    again = post(manager, action="create", **form(key="other", mode="claim", keyword="冬季"))
    assert "另一個活動已經使用關鍵字「冬季」了" in again.get_data(as_text=True)
    issued = post(manager, action="create", **form(key="given"))
    assert issued.status_code == 200
    opened = post(manager, action="open", campaign="given")  # a forged form: not a claim one
    assert opened.status_code == 400 and "是直接發放的活動，沒有開放或結束領取" in \
        opened.get_data(as_text=True)
    unknown = post(manager, action="send_now", campaign="nope")
    assert unknown.status_code == 400 and "沒有這個活動" in unknown.get_data(as_text=True)
    odd = post(manager, action="explode", campaign="winter")
    assert odd.status_code == 400 and "看不懂這個表單" in odd.get_data(as_text=True)
    assert [(c.key, c.status) for c in made(rt)] == [("winter", "draft"), ("given", "draft")]


def test_signed_out_the_page_and_its_count_send_to_sign_in(app):
    client = app.test_client()
    assert client.get(PAGE).status_code == 302
    answer = client.get(PAGE + "/reach", query_string=form())
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]


def test_a_campaign_scheduled_at_a_local_time_is_sent_by_the_clock_once(shop):
    rt, manager, ids = shop
    post(manager, action="create", **form(key="winter"))
    post(manager, action="create", **form(key="spring"))
    tomorrow = (utcnow().astimezone(rt.program.timezone) + dt.timedelta(days=1)).date()
    page = post(manager, action="schedule", campaign="winter", at=f"{tomorrow}T10:30")
    assert f"排定在 {tomorrow:%Y/%m/%d} 10:30 發送" in page.get_data(as_text=True)
    due = dt.datetime.combine(tomorrow, dt.time(10, 30), tzinfo=rt.program.timezone)
    post(manager, action="schedule", campaign="spring", at=f"{tomorrow}T10:30")
    cancelled = post(manager, action="cancel", campaign="spring")
    assert "的排程已取消，不會發送" in cancelled.get_data(as_text=True)
    with rt.sessions() as session:
        times = dict(session.execute(select(Campaign.key, Campaign.scheduled_at)).all())
    assert times == {"winter": due.astimezone(dt.UTC), "spring": None}  # stored in UTC
    clock = make_runtime(rt.sessions, rt.program, rt.config)
    job = JOBS["campaigns"]
    assert run_job(clock, job, due - dt.timedelta(minutes=1)) == "no campaign due"
    assert coupons_of(rt, "winter") == {}
    run_job(clock, job, due)
    run_job(clock, job, due + dt.timedelta(minutes=1))  # the next minute, or a second clock
    assert coupons_of(rt, "winter") == {ids[0]: 1, ids[1]: 1}
    assert pushes_of(rt, "winter") == 1  # member 2 has no LINE account
    assert coupons_of(rt, "spring") == {}  # cancelled: never sent
    with rt.sessions() as session:  # nothing committed
        assert campaigns.find_campaign(session, "winter").status == "sent"
        campaigns.schedule(session, "spring", due, due - dt.timedelta(hours=1), actor="test")
        with pytest.raises(CampaignSending):  # its time has come: too late to cancel
            campaigns.cancel_schedule(session, "spring", due, actor="test")
    html = manager.get(PAGE).get_data(as_text=True)
    assert re.search(r'data-campaign="winter".*?data-figure="issued">2<', html, re.S)
    with rt.sessions() as session:
        actions = [a.action for a in session.scalars(select(AuditLog).where(
            AuditLog.action.like("campaign.%"), AuditLog.actor == "console:mei@cafe.tw")
            .order_by(AuditLog.id))]
    assert actions == ["campaign.create", "campaign.create", "campaign.schedule",
                       "campaign.schedule", "campaign.unschedule"]


def test_a_schedule_in_the_past_or_unreadable_and_a_sent_campaign_are_refused(shop):
    rt, manager, _ = shop
    post(manager, action="create", **form(key="winter"))
    yesterday = (utcnow().astimezone(rt.program.timezone) - dt.timedelta(days=1)).date()
    page = post(manager, action="schedule", campaign="winter", at=f"{yesterday}T10:30")
    assert page.status_code == 400 and "已經過了，請選一個未來的時間" in page.get_data(
        as_text=True)
    for bad in ("", "tomorrow", "2026-13-40T10:00", "2026-12-08T10:00+09:00"):
        page = post(manager, action="schedule", campaign="winter", at=bad)
        assert page.status_code == 400 and "請選擇發送的日期與時間" in page.get_data(
            as_text=True), bad
    assert made(rt)[0].scheduled_at is None
    page = post(manager, action="send_now", campaign="winter")
    assert "會在一分鐘內由排程發送" in page.get_data(as_text=True)
    run_job(make_runtime(rt.sessions, rt.program, rt.config), JOBS["campaigns"], utcnow())
    again = post(manager, action="send_now", campaign="winter")
    assert again.status_code == 400 and "只有尚未發送的發券活動可以安排發送時間" in \
        again.get_data(as_text=True)
    assert len(coupons_of(rt, "winter")) == 2


def clock_run(sessions, index, program, settings, now):
    return run_job(make_runtime(sessions, program, settings), JOBS["campaigns"], now)


def test_two_clocks_at_once_give_each_member_the_coupon_and_message_once(shop, race):
    rt, manager, ids = shop
    post(manager, action="create", **form(key="winter", exclude=[]))
    post(manager, action="send_now", campaign="winter")
    outcomes = race(clock_run, 2, rt.program, rt.config, utcnow() + dt.timedelta(seconds=1))
    assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    assert coupons_of(rt, "winter") == {ids[0]: 1, ids[1]: 1, ids[2]: 1}
    assert pushes_of(rt, "winter") == 2


def test_a_claim_campaign_is_opened_and_closed_and_its_results_shown(shop):
    rt, manager, ids = shop
    post(manager, action="create", **form(key="rush", mode="claim", keyword="搶券", cap="5",
                                          exclude=[]))
    page = post(manager, action="open", campaign="rush")
    assert "開放領取了" in page.get_data(as_text=True)
    with transaction(rt.sessions) as session:
        campaign = campaigns.find_campaign(session, "rush")
        coupon = campaigns.claim(session, rt.program, campaign, ids[0], utcnow(), actor="test")
        campaigns.claim(session, rt.program, campaign, ids[2], utcnow(), actor="test")
        purchase = record_purchase(session, rt.program, ids[0], 480, utcnow(), source="pos",
                                   order_id="R-1", actor="test").purchase
        redeem_coupon(session, rt.program, coupon.code, utcnow(), actor="test",
                      order_amount=480, purchase_id=purchase.id)
    html = manager.get(PAGE).get_data(as_text=True)
    card = re.search(r'data-campaign="rush".*?</section>', html, re.S).group(0)
    shown = dict(re.findall(r'data-figure="(\w+)">([^<]+)<', card))
    assert shown == {"issued": "2", "claimed": "2 / 5", "redeemed": "1", "revenue": "NT$480"}
    assert "開放領取中" in card
    page = post(manager, action="close", campaign="rush")
    assert "已結束領取" in page.get_data(as_text=True)
    assert made(rt)[0].status == "closed"
    refused = post(manager, action="send_now", campaign="rush")
    assert refused.status_code == 400 and made(rt)[0].scheduled_at is None
