"""Webhook events as LINE sends them, signed and posted to the app's own /callback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any


def sign(secret: str, body: bytes) -> str:
    """X-Line-Signature: base64 of the HMAC-SHA256 of the raw body with the channel secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def event(kind: str, user_id: str, reply_token: str | None, **extra: Any) -> dict[str, Any]:
    body = {"type": kind, "mode": "active", "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user_id},
            "webhookEventId": uuid.uuid4().hex.upper()[:26],
            "deliveryContext": {"isRedelivery": False}, **extra}
    if reply_token:
        body["replyToken"] = reply_token
    return body


def text_event(user_id: str, reply_token: str, words: str) -> dict[str, Any]:
    return event("message", user_id, reply_token, message={
        "type": "text", "id": str(time.time_ns())[-18:], "quoteToken": uuid.uuid4().hex,
        "text": words})


def postback_event(user_id: str, reply_token: str, data: str,
                   params: dict[str, str] | None = None) -> dict[str, Any]:
    postback: dict[str, Any] = {"data": data}
    if params:
        postback["params"] = params
    return event("postback", user_id, reply_token, postback=postback)


def follow_event(user_id: str, reply_token: str, unblocked: bool) -> dict[str, Any]:
    return event("follow", user_id, reply_token, follow={"isUnblocked": unblocked})


def unfollow_event(user_id: str) -> dict[str, Any]:
    return event("unfollow", user_id, None)


class CallbackUnreachable(Exception):
    """The app's own /callback did not answer."""


def deliver(callback_url: str, secret: str, events: list[dict[str, Any]]) -> int:
    """POST a signed webhook body; the HTTP status /callback answered."""
    body = json.dumps({"destination": "Usimulator", "events": events},
                      ensure_ascii=False).encode()
    request = urllib.request.Request(callback_url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Line-Signature": sign(secret, body)})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out ...
        raise CallbackUnreachable(
            f"{callback_url} did not answer ({exc}): the simulator calls the app back on "
            f"127.0.0.1 at PORT; start the app with PORT set to the port it listens on"
        ) from None
