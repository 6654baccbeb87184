"""The webhook end to end: signed bodies in, the real SDK out to a fake LINE server."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.config import DEFAULT_PROGRAM
from bot.models import Coupon, Member, ProcessedEvent
from tests.line_helpers import flat, follow, post, postback, sticker, text, unfollow, user_id

ALICE, BOB = user_id(1), user_id(2)


def replies_to(fake, n=None):
    bodies = fake.replies()
    return bodies if n is None else bodies[n]["messages"]


def count(app, model, *where) -> int:
    with app.extensions["loyalty"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_missing_or_wrong_signature_is_refused_and_changes_nothing(client, app):
    assert post(client, [follow(ALICE)], signature="").status_code == 400
    assert post(client, [follow(ALICE)], signature="bm9wZQ==").status_code == 400
    assert post(client, [follow(ALICE)], secret="another-secret").status_code == 400
    assert count(app, Member) == 0


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"events": {}}', b"\xff\xfe",
                                  b'{"destination": "x"}'])
def test_a_body_that_is_not_a_line_webhook_is_a_400(client, body):
    assert post(client, [], body=body).status_code == 400


def test_lines_verification_request_with_no_events_is_a_200(client, fake_line):
    assert post(client, []).status_code == 200
    assert fake_line.calls == []


def test_a_body_over_one_megabyte_is_a_413(client):
    body = json.dumps({"events": [], "pad": "x" * 1_100_000}).encode()
    assert post(client, [], body=body).status_code == 413


def test_following_joins_with_the_profile_name_and_replies_with_a_welcome(client, app,
                                                                         fake_line):
    fake_line.add_profile(ALICE, "小美 \"Mei\" {{x}} 🌸", "zh-TW")
    assert post(client, [follow(ALICE)]).status_code == 200
    [reply] = fake_line.replies()
    assert reply["messages"][0]["type"] == "flex"
    assert "小美" in flat(reply["messages"])
    with app.extensions["loyalty"].sessions() as session:
        member = session.scalars(select(Member)).one()
        assert member.display_name == "小美 \"Mei\" {{x}} 🌸"
        assert session.scalar(select(func.count()).select_from(Coupon)) == 1


def test_an_english_profile_gets_english_messages(client, fake_line):
    fake_line.add_profile(BOB, "Bob", "en")
    post(client, [follow(BOB)])
    text_of_reply = flat(fake_line.replies()[0]["messages"])
    assert "Welcome" in text_of_reply or "welcome" in text_of_reply


def test_leaving_and_rejoining_gives_no_second_welcome_coupon(client, app, fake_line):
    post(client, [follow(ALICE)])
    post(client, [unfollow(ALICE)])
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalars(select(Member)).one().status == "blocked"
    post(client, [follow(ALICE)])
    assert count(app, Coupon) == 1
    assert len(fake_line.replies()) == 2


def test_a_redelivered_event_has_no_second_effect_and_no_second_reply(client, app, fake_line):
    event = follow(ALICE)
    post(client, [event])
    again = dict(event, replyToken="another-token", deliveryContext={"isRedelivery": True})
    assert post(client, [again]).status_code == 200
    assert len(fake_line.replies()) == 1
    assert count(app, ProcessedEvent) == 1 and count(app, Member) == 1


def test_a_malformed_event_does_not_lose_the_others_in_the_same_body(client, app, fake_line):
    broken = {"type": "message", "source": {"type": "user", "userId": BOB},
              "webhookEventId": "X1", "message": {"type": "text"}}  # no id, no text
    events = [broken, 42, {"type": "beacon"}, follow(ALICE), text(ALICE, "點數")]
    assert post(client, events).status_code == 200
    assert len(fake_line.replies()) == 2
    assert count(app, Member) == 1


@pytest.mark.parametrize(("data", "needle"), [
    ("action=points", "flex"), ("action=stamps", "flex"), ("action=wallet", "flex"),
    ("action=card", "flex"), ("action=rewards", "flex")])
def test_every_rich_menu_area_answers_with_its_card(client, fake_line, data, needle):
    post(client, [follow(ALICE)])
    post(client, [postback(ALICE, data)])
    messages = fake_line.replies()[-1]["messages"]
    assert messages[0]["type"] == needle
    assert fake_line.rejections == []


def test_the_birthday_picker_asks_to_confirm_and_sets_the_birthday_once(client, app,
                                                                        fake_line):
    post(client, [follow(ALICE)])
    post(client, [postback(ALICE, "action=birthday", {"date": "1990-02-28"})])
    [ask] = fake_line.replies()[1]["messages"]
    assert "1990/02/28" in ask["text"] and "只能設定一次" in ask["text"]
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalars(select(Member)).one().birthday is None  # not before a yes
    yes, again, no = (item["action"] for item in ask["quickReply"]["items"])
    assert (again["type"], again["data"], no["data"]) == (
        "datetimepicker", "action=birthday", "action=cancel")
    post(client, [postback(ALICE, yes["data"])])
    post(client, [postback(ALICE, "action=birthday", {"date": "1991-03-01"})])
    post(client, [postback(ALICE, "action=birthday_confirm&date=1991-03-01")])
    with app.extensions["loyalty"].sessions() as session:
        assert str(session.scalars(select(Member)).one().birthday) == "1990-02-28"
    assert "1990/02/28" in flat(fake_line.replies()[2]["messages"])
    assert "已經設定" in flat(fake_line.replies()[3]["messages"])
    assert "已經設定" in flat(fake_line.replies()[4]["messages"])


@pytest.mark.parametrize("words", ["點數", "ＰＯＩＮＴＳ", "points", " 集點卡 ", "優惠券", "會員卡",
                                   "說明", "help"])
def test_customer_keywords_in_any_width_or_case_answer(client, fake_line, words):
    post(client, [follow(ALICE)])
    post(client, [text(ALICE, words)])
    assert len(fake_line.replies()) == 2
    assert fake_line.rejections == []


def test_anything_else_gets_no_reply_so_the_owner_can_answer_in_line_chat(client, fake_line):
    post(client, [follow(ALICE)])
    post(client, [text(ALICE, "你好")])
    post(client, [sticker(ALICE)])
    assert len(fake_line.replies()) == 1  # the welcome only
    assert fake_line.rejections == []


def test_with_unknown_text_set_to_pointer_anything_else_gets_a_pointer_to_the_menu(
        line_config, fake_line, tmp_path):
    program = tmp_path / "shop.toml"
    program.write_text(DEFAULT_PROGRAM.read_text(encoding="utf-8").replace(
        'unknown_text = "silent"', 'unknown_text = "pointer"'), encoding="utf-8")
    app = create_app(dataclasses.replace(line_config, program_path=str(program)))
    client = app.test_client()
    post(client, [follow(ALICE)])
    post(client, [text(ALICE, "你好")])
    post(client, [sticker(ALICE)])
    first, second = fake_line.replies()[1:]
    assert first["messages"] == second["messages"]
    assert "說明" in first["messages"][0]["text"]
    app.extensions["loyalty"].engine.dispose()


def test_a_faq_keyword_gets_the_shops_answer_and_help_lists_the_keywords(client, fake_line):
    post(client, [follow(ALICE)])
    post(client, [text(ALICE, "營業時間")])
    post(client, [text(ALICE, " ＨＯＵＲＳ ")])
    post(client, [text(ALICE, "說明")])
    hours, english, help_ = (r["messages"][0]["text"] for r in fake_line.replies()[1:])
    assert hours.startswith("營業時間：週二至週日") and english == hours  # Alice reads zh-TW
    assert "也可以問我：營業時間、地址、菜單" in help_
    assert all(word in help_ for word in ("使用說明", "停止推播", "恢復推播", "隱私權"))
    chips = fake_line.replies()[-1]["messages"][0]["quickReply"]["items"]
    assert [c["action"]["data"] for c in chips] == ["action=rules", "action=privacy"]


def test_a_points_reward_asks_for_confirmation_before_spending(client, app, fake_line):
    post(client, [follow(ALICE)])
    from bot.db import transaction
    from bot.loyalty.members import adjust_points
    from bot.loyalty.timeutil import utcnow

    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        member = session.scalars(select(Member)).one()
        adjust_points(session, state.program, member.id, 150, utcnow(), reason="t",
                      actor="t")
    post(client, [postback(ALICE, "action=reward&key=nt50")])
    assert "action=reward_confirm&key=nt50&points=100" in flat(fake_line.replies()[-1]["messages"])
    with state.sessions() as session:
        assert session.scalars(select(Member)).one().points_balance == 150
    post(client, [postback(ALICE, "action=reward_confirm&key=nt50&points=100")])
    with state.sessions() as session:
        assert session.scalars(select(Member)).one().points_balance == 50
    post(client, [postback(ALICE, "action=reward_confirm&key=nt50&points=100")])
    with state.sessions() as session:
        assert session.scalars(select(Member)).one().points_balance == 50
    assert "100" in flat(fake_line.replies()[-1]["messages"])  # "100 needed"


def test_a_reward_button_from_before_rewards_had_keys_asks_to_open_the_catalog_again(
        client, app, fake_line):
    post(client, [follow(ALICE)])
    post(client, [postback(ALICE, "action=reward_confirm&id=1")])
    assert "請重新打開兌換目錄" in flat(fake_line.replies()[-1]["messages"])


def test_without_a_channel_configured_callback_answers_503(db_url):
    from bot.app import create_app
    from bot.config import DEFAULT_PROGRAM, Config

    app = create_app(Config(database_url=db_url, program_path=str(DEFAULT_PROGRAM),
                            secret_key="k"))
    assert post(app.test_client(), [follow(ALICE)]).status_code == 503
    assert app.test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("how", [text(ALICE, "使用說明"), text(ALICE, "How it works"),
                                 postback(ALICE, "action=rules")])
def test_the_rules_card_answers_a_keyword_or_a_menu_tap(client, fake_line, how):
    post(client, [follow(ALICE)])
    post(client, [how])
    [card] = fake_line.replies()[-1]["messages"]
    assert card["type"] == "flex" and "使用說明" in card["altText"]


def test_stop_promotions_and_start_again_by_keyword_or_the_rules_cards_button(client, app,
                                                                             fake_line):
    post(client, [follow(ALICE)])
    welcome = flat(fake_line.replies()[0]["messages"])
    assert "本店會保存你的 LINE 名稱、生日和消費紀錄" in welcome and "action=privacy" in welcome

    def opted_out() -> bool:
        with app.extensions["loyalty"].sessions() as session:
            return session.scalars(select(Member)).one().marketing_opt_out

    post(client, [text(ALICE, "停止推播")])
    assert opted_out() and "不會再傳優惠" in flat(fake_line.replies()[-1]["messages"])
    post(client, [text(ALICE, "使用說明")])
    assert "action=marketing_on" in flat(fake_line.replies()[-1]["messages"])
    post(client, [postback(ALICE, "action=marketing_on")])
    assert not opted_out()
    post(client, [postback(ALICE, "action=rules")])
    assert "action=marketing_off" in flat(fake_line.replies()[-1]["messages"])
    post(client, [text(ALICE, "Stop Promotions")])
    assert opted_out()


def test_the_privacy_notice_says_what_is_kept_why_and_the_hash_kept_after_erasure(
        client, fake_line):
    post(client, [follow(ALICE)])
    post(client, [postback(ALICE, "action=privacy")])
    notice = fake_line.replies()[-1]["messages"][0]["text"]
    assert "我們保存" in notice and "用途" in notice and "雜湊值" in notice
