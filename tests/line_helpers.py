"""Signed webhook bodies and event builders, as LINE sends them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

CHANNEL_SECRET = "test-channel-secret"


def user_id(n: int) -> str:
    return f"U{n:032x}"


def sign(body: bytes, secret: str = CHANNEL_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post(client, events: list[dict], *, secret: str = CHANNEL_SECRET, body: bytes | None = None,
         signature: str | None = None):
    body = body if body is not None else json.dumps(
        {"destination": "Uxxxxxxxx", "events": events}, ensure_ascii=False).encode()
    return client.post("/callback", data=body, content_type="application/json",
                       headers={"X-Line-Signature": signature if signature is not None
                                else sign(body, secret)})


def _event(kind: str, user: str, *, reply: bool = True, redelivery: bool = False,
           event_id: str | None = None, **extra: Any) -> dict:
    event = {"type": kind, "mode": "active", "timestamp": 1763776800000,
             "source": {"type": "user", "userId": user},
             "webhookEventId": event_id or uuid.uuid4().hex.upper()[:26],
             "deliveryContext": {"isRedelivery": redelivery}, **extra}
    if reply:
        event["replyToken"] = uuid.uuid4().hex
    return event


def follow(user: str, **kw: Any) -> dict:
    return _event("follow", user, follow={"isUnblocked": False}, **kw)


def unfollow(user: str, **kw: Any) -> dict:
    return _event("unfollow", user, reply=False, **kw)


def text(user: str, words: str, **kw: Any) -> dict:
    return _event("message", user, message={"type": "text", "id": uuid.uuid4().hex[:18],
                                            "quoteToken": "q", "text": words}, **kw)


def sticker(user: str, **kw: Any) -> dict:
    return _event("message", user, message={"type": "sticker", "id": "1", "quoteToken": "q",
                                            "packageId": "1", "stickerId": "1",
                                            "stickerResourceType": "STATIC"}, **kw)


def postback(user: str, data: str, params: dict | None = None, **kw: Any) -> dict:
    body = {"data": data}
    if params:
        body["params"] = params
    return _event("postback", user, postback=body, **kw)


def flat(messages: list[dict]) -> str:
    """Everything a person could read in these messages, as one string."""
    return json.dumps(messages, ensure_ascii=False)
