"""Tags, segments and campaigns: the right members, each coupon once, claims never over the
cap (also when many members claim at the same moment)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.jobs import JOBS, run_job, send_campaign
from bot.loyalty import campaigns, segments
from bot.loyalty.errors import LoyaltyError, SegmentError
from bot.loyalty.members import register_member, set_birthday, unfollow
from bot.loyalty.staff import add_staff
from bot.models import Campaign, Coupon, Member, OutboxMessage
from tests.helpers import buy
from tests.line_helpers import flat, post, postback, text, user_id
from tests.test_concurrency import race  # noqa: F401  (the multi-process race fixture)
from tests.test_jobs import make_runtime

TAIPEI = ZoneInfo("Asia/Taipei")
NOW = dt.datetime(2026, 12, 10, 12, tzinfo=TAIPEI)


def member(sessions, program, n: int, joined: dt.datetime, *, born: str | None = None) -> int:
    with transaction(sessions) as session:
        found = register_member(session, program, user_id(n), joined).member
        if born:
            set_birthday(session, found.id, born, joined, actor="test")
        return found.id


@pytest.fixture
def shop(sessions, program):
    """Five members: new, a regular, a big spender, a dormant one, one who left."""
    ids = {
        "newbie": member(sessions, program, 1, NOW - dt.timedelta(days=3)),
        "regular": member(sessions, program, 2, NOW - dt.timedelta(days=400), born="1990-12-24"),
        "whale": member(sessions, program, 3, NOW - dt.timedelta(days=400)),
        "sleeper": member(sessions, program, 4, NOW - dt.timedelta(days=400)),
        "gone": member(sessions, program, 5, NOW - dt.timedelta(days=400)),
    }
    buy(sessions, program, ids["regular"], 300, NOW - dt.timedelta(days=10))
    top = max(t.threshold for t in program.tiers)
    buy(sessions, program, ids["whale"], top, NOW - dt.timedelta(days=20))
    buy(sessions, program, ids["sleeper"], 300, NOW - dt.timedelta(days=200))
    with transaction(sessions) as session:
        unfollow(session, user_id(5), NOW)
        segments.refresh_automatic_tags(session, program, NOW)
    return ids


def tagged(sessions, name: str) -> set[int]:
    with sessions() as session:
        return set(session.scalars(select(Member.id).where(
            segments.segment_filter(session, name))))


def test_automatic_tags_follow_the_program(shop, sessions):
    assert tagged(sessions, "new") == {shop["newbie"]}
    assert tagged(sessions, "active") == {shop["regular"], shop["whale"]}
    assert tagged(sessions, "dormant") == {shop["sleeper"]}
    assert tagged(sessions, "vip") == {shop["whale"]}
    assert tagged(sessions, "birthday_month") == {shop["regular"]}


def test_a_daily_refresh_drops_tags_that_no_longer_hold(shop, sessions, program):
    buy(sessions, program, shop["sleeper"], 300, NOW)
    with transaction(sessions) as session:
        segments.refresh_automatic_tags(session, program, NOW + dt.timedelta(days=40))
    assert tagged(sessions, "new") == set()
    assert shop["sleeper"] in tagged(sessions, "active")
    assert tagged(sessions, "dormant") == {shop["whale"]}  # 60 days since their purchase


def test_a_fully_refunded_purchase_does_not_wake_a_dormant_member(shop, sessions, program):
    """One definition of dormant for the tag, the report and win-back: a refunded order is
    no visit."""
    from bot.loyalty.purchases import refund_order

    buy(sessions, program, shop["sleeper"], 300, NOW - dt.timedelta(days=5), order_id="back")
    with transaction(sessions) as session:
        refund_order(session, program, 300, NOW - dt.timedelta(days=4), source="pos",
                     order_id="back", refund_id="R-back", actor="test")
        segments.refresh_automatic_tags(session, program, NOW)
    assert tagged(sessions, "dormant") == {shop["sleeper"]}


def test_tag_expressions_combine_with_and_or_not_and_parentheses(shop, sessions):
    with transaction(sessions) as session:
        segments.add_tag(session, session.get(Member, shop["sleeper"]), "Coffee-Club", NOW,
                         actor="test")
    assert tagged(sessions, "active and not vip") == {shop["regular"]}
    assert tagged(sessions, "new or (coffee-club and dormant)") == {shop["newbie"],
                                                                    shop["sleeper"]}
    assert tagged(sessions, "NOT active AND NOT new") == {shop["sleeper"], shop["gone"]}
    assert len(tagged(sessions, "")) == 5


@pytest.mark.parametrize("expression, says", [
    ("vip and", "ends too early"), ("(vip or new", "not closed"), ("vip new", "unexpected"),
    ("platinum", "no tag 'platinum'"), ("and vip", "unexpected"),
])
def test_a_bad_segment_says_what_is_wrong(shop, sessions, expression, says):
    with sessions() as session, pytest.raises(LoyaltyError) as caught:
        segments.segment_filter(session, expression)
    assert caught.value.code == "invalid_segment" and says in caught.value.message("en")


def test_automatic_tags_cannot_be_set_by_hand(shop, sessions):
    with transaction(sessions) as session, pytest.raises(LoyaltyError) as caught:
        segments.add_tag(session, session.get(Member, shop["newbie"]), "vip", NOW, actor="t")
    assert "automatic" in caught.value.message("en")


# -- issue campaigns ---------------------------------------------------------------------------
def campaign_coupons(sessions, key: str) -> dict[int, int]:
    with sessions() as session:
        return dict(session.execute(select(Coupon.member_id, func.count()).where(
            Coupon.reason == f"campaign:{key}").group_by(Coupon.member_id)).all())


def test_an_issue_campaign_reaches_its_segment_once_and_its_messages_go_as_one_multicast(
        shop, sessions, program, line_config, fake_line):
    with transaction(sessions) as session:
        made = campaigns.create_campaign(session, program, "xmas", template="nt50", now=NOW,
                                         name="聖誕快樂", segment="active or new", push=True)
        assert campaigns.reach(session, made) == campaigns.Reach(members=3, pushes=3)
    rt = make_runtime(sessions, program, line_config)
    assert "3 of 3" in send_campaign(rt, "xmas", NOW)
    assert "0 messages" in send_campaign(rt, "xmas", NOW)  # again: nothing new
    assert campaign_coupons(sessions, "xmas") == {shop["newbie"]: 1, shop["regular"]: 1,
                                                  shop["whale"]: 1}
    run_job(rt, JOBS["send"], NOW)
    [batch] = fake_line.multicasts()
    assert sorted(batch["to"]) == sorted(user_id(n) for n in (1, 2, 3))
    assert "聖誕快樂" in flat(batch["messages"])
    with sessions() as session:
        assert session.scalars(select(Campaign.status)).one() == "sent"
        assert session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "campaign", OutboxMessage.status == "sent")) == 3


def test_staff_who_are_members_get_no_issue_campaign_but_may_claim_one(
        shop, sessions, program, line_config, fake_line):
    with transaction(sessions) as session:
        add_staff(session, user_id(2), NOW, name="Amy", actor="owner")  # the regular
        made = campaigns.create_campaign(session, program, "xmas", template="nt50", now=NOW,
                                         name="聖誕快樂", segment="active or new", push=True)
        assert campaigns.reach(session, made) == campaigns.Reach(members=2, pushes=2)
    rt = make_runtime(sessions, program, line_config)
    send_campaign(rt, "xmas", NOW)
    run_job(rt, JOBS["send"], NOW)
    [batch] = fake_line.multicasts()
    assert sorted(batch["to"]) == sorted(user_id(n) for n in (1, 3))
    assert campaign_coupons(sessions, "xmas") == {shop["newbie"]: 1, shop["whale"]: 1}
    with transaction(sessions) as session:
        sale = campaigns.create_campaign(session, program, "sale", template="nt50", now=NOW,
                                         keyword="SALE", cap=5)
        campaigns.set_status(session, sale, "open", NOW)
        campaigns.claim(session, program, sale, shop["regular"], NOW, actor="test")
    assert campaign_coupons(sessions, "sale") == {shop["regular"]: 1}


def test_a_campaign_must_name_a_real_template_and_a_readable_segment(shop, sessions, program):
    with transaction(sessions) as session:
        for kwargs, says in (({"template": "nope"}, "no coupon template"),
                             ({"template": "nt50", "segment": "vip or"}, "ends too early")):
            with pytest.raises(LoyaltyError) as caught:
                campaigns.create_campaign(session, program, "bad", now=NOW, **kwargs)
            assert says in caught.value.message("en")


# -- claim campaigns ---------------------------------------------------------------------------
@pytest.fixture
def flash_sale(sessions, program):
    with transaction(sessions) as session:
        sale = campaigns.create_campaign(session, program, "flash", template="free_drink",
                                         now=NOW, name="Flash drink", keyword="搶飲料", cap=2)
        campaigns.set_status(session, sale, "open", NOW)


def test_members_claim_by_keyword_once_each_until_the_cap(client, sessions, program,
                                                          flash_sale, fake_line):
    for n in (1, 2, 3):
        post(client, [text(user_id(n), "hello")])  # joins them
    fake_line.reset()
    post(client, [text(user_id(1), "搶飲料")])
    assert "領取成功" in flat(fake_line.replies()[-1]["messages"])
    post(client, [text(user_id(1), "搶飲料")])
    assert "已經領過" in flat(fake_line.replies()[-1]["messages"])
    post(client, [postback(user_id(2), "action=claim&campaign=flash")])
    assert "領取成功" in flat(fake_line.replies()[-1]["messages"])
    post(client, [text(user_id(3), "搶飲料")])
    assert "領取完畢" in flat(fake_line.replies()[-1]["messages"])
    assert sorted(campaign_coupons(sessions, "flash").values()) == [1, 1]


def test_a_closed_campaign_gives_nothing(client, sessions, program, flash_sale, fake_line):
    with transaction(sessions) as session:
        campaigns.set_status(session, campaigns.find_campaign(session, "flash"), "closed", NOW)
    post(client, [text(user_id(1), "搶飲料")])
    assert "沒有開放" in flat(fake_line.replies()[-1]["messages"])
    assert campaign_coupons(sessions, "flash") == {}


def claim_one(sessions, index: int, program, member_ids: list[int], now) -> int:
    with transaction(sessions) as session:
        sale = campaigns.find_campaign(session, "rush")
        return campaigns.claim(session, program, sale, member_ids[index], now,
                               actor=f"m{index}").id


def test_twenty_members_claiming_at_once_never_exceed_the_cap(race, sessions, program):  # noqa: F811
    ids = [member(sessions, program, n, NOW - dt.timedelta(days=1)) for n in range(1, 21)]
    with transaction(sessions) as session:
        sale = campaigns.create_campaign(session, program, "rush", template="nt50", now=NOW,
                                         cap=7)
        campaigns.set_status(session, sale, "open", NOW)
    outcomes = race(claim_one, 20, program, ids, NOW)
    codes = sorted(code for code, _ in outcomes)
    assert codes.count("ok") == 7 and codes.count("quantity_exceeded") == 13, outcomes
    assert len(campaign_coupons(sessions, "rush")) == 7
    with sessions() as session:
        assert session.scalars(select(Campaign.claimed)).one() == 7


# -- the owner's commands ----------------------------------------------------------------------
def test_campaign_and_tags_commands(cli, sessions, program):
    from tests.cli_helpers import exited_cleanly

    with transaction(sessions) as session:
        code = register_member(session, program, user_id(1), NOW).member.member_code
    assert cli("tags", "add", "regulars", code).exit_code == 0
    assert "regulars" in cli("tags", "list").stdout
    made = cli("campaign", "create", "thanks", "--template", "nt50", "--segment", "regulars",
               "--push")
    assert made.exit_code == 0, made.output
    dry = cli("campaign", "send", "thanks", "--dry-run")
    assert "1 members" in dry.stdout and "1 LINE pushes" in dry.stdout
    assert campaign_coupons(sessions, "thanks") == {}
    sent = cli("campaign", "send", "thanks")
    assert sent.exit_code == 0 and "1 of 1" in sent.stdout, sent.output
    listed = cli("campaign", "list").stdout
    assert "thanks" in listed and "sent" in listed
    bad = cli("campaign", "create", "x", "--template", "nt50", "--segment", "nobody-tag")
    assert bad.exit_code != 0 and "nobody-tag" in bad.stderr and "Traceback" not in bad.stderr
    assert exited_cleanly(bad), bad.exc_info


def test_a_campaign_for_automatic_tags_on_a_fresh_database_computes_them_first(cli, sessions,
                                                                                program):
    with transaction(sessions) as session:
        register_member(session, program, user_id(1), NOW)
        with pytest.raises(SegmentError, match="jobs run tags"):
            segments.segment_filter(session, "vip and not dormant")
    made = cli("campaign", "create", "vips", "--template", "nt50", "--segment",
               "vip and not dormant")
    assert made.exit_code == 0, made.output
    dry = cli("campaign", "send", "vips", "--dry-run")
    assert dry.exit_code == 0 and "0 members" in dry.stdout, dry.output


def test_tags_through_the_api(client, app, sessions, program):
    from bot.loyalty.api_tokens import create_token

    with transaction(sessions) as session:
        code = register_member(session, program, user_id(1), NOW).member.member_code
        secret = create_token(session, "crm", ["members:write"], NOW, actor="test")[1]
    auth = {"Authorization": f"Bearer {secret}"}
    reply = client.post(f"/api/v1/members/{code}/tags", json={"tag": "Coffee-Club"},
                        headers=auth)
    assert reply.status_code == 200 and reply.get_json()["tags"] == ["coffee-club"]
    reply = client.post(f"/api/v1/members/{code}/tags", json={"tag": "vip"}, headers=auth)
    assert reply.status_code == 422 and "automatic" in reply.get_json()["detail"]
    reply = client.delete(f"/api/v1/members/{code}/tags/coffee-club", headers=auth)
    assert reply.status_code == 200 and reply.get_json()["tags"] == []

