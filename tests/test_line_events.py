"""Reading webhook events: the fields the bot uses, each checked, the rest ignored."""

from __future__ import annotations

import pytest

from bot.line.events import MalformedEvent, parse_event
from tests.line_helpers import follow, postback, sticker, text, user_id


def test_a_postback_with_a_date_pickers_choice():
    event = parse_event(postback(user_id(1), "action=birthday", {"date": "1990-05-04"},
                                 event_id="01JEVENT"))
    assert (event.type, event.source.type, event.source.user_id) == ("postback", "user",
                                                                       user_id(1))
    assert event.postback.data == "action=birthday"
    assert event.postback.params == {"date": "1990-05-04"}
    assert event.webhook_event_id == "01JEVENT" and event.reply_token


def test_a_text_a_sticker_and_a_follow():
    assert parse_event(text(user_id(1), "點數")).message.text == "點數"
    assert parse_event(sticker(user_id(1))).message.text is None
    event = parse_event(follow(user_id(2)))
    assert (event.type, event.message, event.postback) == ("follow", None, None)


def test_a_group_source_keeps_its_group():
    raw = text(user_id(1), "點數")
    raw["source"] = {"type": "group", "groupId": "C" + "1" * 32, "userId": user_id(1)}
    assert parse_event(raw).source.group_id == "C" + "1" * 32


@pytest.mark.parametrize(("change", "field"), [
    (lambda e: e.update(source="me"), "source"),
    (lambda e: e["source"].update(userId=42), "source.userId"),
    (lambda e: e.update(replyToken=["x"]), "event.replyToken"),
    (lambda e: e.update(webhookEventId=7), "event.webhookEventId"),
    (lambda e: e["message"].pop("text"), "message.text"),
    (lambda e: e.update(message=None), "message"),
])
def test_a_wrong_field_in_a_message_is_named(change, field):
    raw = text(user_id(1), "點數")
    change(raw)
    with pytest.raises(MalformedEvent, match=field.replace(".", r"\.")):
        parse_event(raw)


@pytest.mark.parametrize(("postback_body", "field"), [
    ({}, "postback.data"),
    ({"data": 5}, "postback.data"),
    ({"data": "action=points", "params": {"date": 1}}, "postback.params"),
    ({"data": "action=points", "params": "x"}, "postback.params"),
])
def test_a_wrong_field_in_a_postback_is_named(postback_body, field):
    raw = postback(user_id(1), "x")
    raw["postback"] = postback_body
    with pytest.raises(MalformedEvent, match=field.replace(".", r"\.")):
        parse_event(raw)
