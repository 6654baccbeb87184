"""Whatever arrives at /callback, it never answers with a server error."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.line_helpers import follow, post, postback, sign, text, user_id

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=20)

event_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["follow", "unfollow", "message", "postback", "beacon", "join"])},
    optional={
        "source": st.fixed_dictionaries({}, optional={
            "type": st.sampled_from(["user", "group", 1]),
            "userId": st.sampled_from([user_id(1), user_id(2), "", None, 7])}),
        "webhookEventId": st.text(max_size=70) | st.integers(),
        "replyToken": st.text(max_size=40),
        "message": st.fixed_dictionaries({}, optional={
            "type": st.sampled_from(["text", "sticker", "image"]),
            "id": st.text(max_size=5), "text": st.text(max_size=40) | st.integers(),
            "quoteToken": st.just("q")}),
        "postback": st.fixed_dictionaries({}, optional={
            "data": st.text(max_size=60) | st.sampled_from(
                ["action=reward_confirm&key=nt50&points=100", "action=wallet&page=-3",
                 "action=coupon&id=x",
                 "action=earn_confirm&token=", "action=birthday", "action=staff_help&topic=x"]),
            "params": st.dictionaries(st.sampled_from(["date", "time"]), st.text(max_size=12))}),
        "mode": st.sampled_from(["active", "standby"]),
        "timestamp": st.integers(),
        "deliveryContext": st.fixed_dictionaries({"isRedelivery": st.booleans()}),
    })

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


@FUZZ
@given(body=st.binary(max_size=300),
       signature=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
def test_random_bytes_and_signatures_never_cause_a_server_error(client, body, signature):
    assert post(client, [], body=body, signature=signature).status_code in (400, 413)


@FUZZ
@given(payload=json_values)
def test_any_signed_json_never_causes_a_server_error(client, payload):
    body = json.dumps(payload).encode()
    assert post(client, [], body=body, signature=sign(body)).status_code < 500


@FUZZ
@given(events=st.lists(event_like | json_values, max_size=5))
def test_signed_bodies_with_odd_events_never_cause_a_server_error(client, fake_line, events):
    real = [follow(user_id(3)), text(user_id(3), "點數"), postback(user_id(3), "action=card")]
    for event in events:  # LINE never sends a reply token twice; examples would repeat them
        if isinstance(event, dict) and isinstance(event.get("replyToken"), str):
            event["replyToken"] = uuid.uuid4().hex
    response = post(client, events + real)
    assert response.status_code == 200
    assert fake_line.rejections == [], [(c.json, c.response) for c in fake_line.rejections]
