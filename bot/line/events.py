"""A webhook event, read from LINE's JSON: only the fields the bot uses, each checked.

The SDK's models (pydantic) validate every field of every event, ours or not, and cost more
CPU per event than the rest of a card screen's Python outside the database. What the bot
reads is checked here instead: a field of the wrong type makes the event malformed
(MalformedEvent says which), and such an event is skipped, as the SDK's error was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class MalformedEvent(ValueError):
    """An event whose fields are not what LINE sends; str() names the field."""


@dataclass(frozen=True, slots=True)
class Source:
    type: str
    user_id: str | None = None
    group_id: str | None = None
    room_id: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    type: str
    text: str | None = None  # text messages only


@dataclass(frozen=True, slots=True)
class Postback:
    data: str
    params: dict[str, str] | None = None  # a date picker's choice


@dataclass(frozen=True, slots=True)
class LineEvent:
    type: str
    source: Source
    webhook_event_id: str = ""
    reply_token: str | None = None
    message: Message | None = None
    postback: Postback | None = None


def parse_event(raw: dict[str, Any]) -> LineEvent:
    """The event in `raw` (one item of the body's `events`); MalformedEvent if a field the
    bot reads has the wrong type or is missing."""
    kind = _text(raw, "type", "event", required=True)
    source = raw.get("source")
    if not isinstance(source, dict):
        raise MalformedEvent("source: an object is required")
    message = postback = None
    if kind == "message":
        body = raw.get("message")
        if not isinstance(body, dict):
            raise MalformedEvent("message: an object is required")
        message_type = _text(body, "type", "message", required=True)
        message = Message(message_type, _text(body, "text", "message",
                                              required=message_type == "text"))
    elif kind == "postback":
        body = raw.get("postback")
        if not isinstance(body, dict):
            raise MalformedEvent("postback: an object is required")
        params = body.get("params")
        if params is not None and not (isinstance(params, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in params.items())):
            raise MalformedEvent("postback.params: an object of texts is required")
        postback = Postback(_text(body, "data", "postback", required=True), params or None)
    return LineEvent(
        type=kind,
        source=Source(_text(source, "type", "source", required=True),
                      _text(source, "userId", "source"), _text(source, "groupId", "source"),
                      _text(source, "roomId", "source")),
        webhook_event_id=_text(raw, "webhookEventId", "event") or "",
        reply_token=_text(raw, "replyToken", "event"), message=message, postback=postback)


def _text(obj: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"{where}.{key}: text is required")
    return value
