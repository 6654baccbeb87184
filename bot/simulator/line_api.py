"""The part of LINE's Messaging API the bot calls, answered by the simulator.

The app's LINE client is pointed here (instead of api.line.me) while the simulator is on, so
replies and pushes travel the same code path as in production, over HTTP.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from bot.line.limits import IMAGE_SCHEMES, MessageLimitError, check_messages
from bot.outbox import MULTICAST_MAX
from bot.simulator.store import ReplyTokenError, Store

bp = Blueprint("simulator_line", __name__, url_prefix="/simulator/line/v2/bot")


def _store() -> Store:
    return current_app.extensions["simulator"]


def _error(status: int, message: str):
    return jsonify(message=message), status


@bp.before_request
def authorize():
    """Bearer token of the simulated channel, as LINE checks the channel access token."""
    token = current_app.extensions["loyalty"].config.line_channel_access_token
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return _error(401, "Authentication failed. Confirm that the access token in the "
                           "authorization header is valid.")
    return None


def _messages(body: Any, kind: str) -> list[dict]:
    """The request's messages, refused as LINE refuses them (400 with the reason)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise MessageLimitError("messages", "must be a list of message objects")
    base = current_app.extensions["loyalty"].config.public_base_url
    check_messages(messages, kind, IMAGE_SCHEMES + (f"{base}/",))
    return messages


@bp.errorhandler(MessageLimitError)
def refused(exc: MessageLimitError):
    return _error(400, f"The request body has 1 error(s): {exc}")


@bp.post("/message/reply")
def reply():
    """Show the messages in the chat of the user the reply token was issued for."""
    body = request.get_json(silent=True)
    messages = _messages(body, "reply")
    try:
        user_id = _store().use_reply_token(str(body.get("replyToken", "")))
    except ReplyTokenError as exc:
        return _error(400, str(exc))
    _show(user_id, "reply", messages)
    return jsonify(sentMessages=[{"id": "0"} for _ in messages])


def _show(user_id: str, via: str, messages: list[dict]) -> None:
    """Into the chat, unless the user blocked the shop (LINE then delivers nothing)."""
    if _store().blocked(user_id):
        _store().add(user_id, "system", via, {"type": "text", "text": (
            f"not delivered ({via}, {len(messages)} message(s)): this user blocked the shop")})
        return
    for message in messages:
        _store().add(user_id, "bot", via, message)


def _deliver(via: str, recipients: list[str]):
    body = request.get_json(silent=True)
    messages = _messages(body, via)
    unknown = [u for u in recipients if _store().persona_of(u) is None]
    if not recipients or unknown:
        return _error(400, "The property, 'to', in the request body is invalid "
                           f"(no such user: {', '.join(unknown) or 'none given'})")
    retry_key = request.headers.get("X-Line-Retry-Key")
    if retry_key is not None:
        try:
            uuid.UUID(retry_key)
        except ValueError:
            return _error(400, "The retry key must be a UUID")
        if not _store().first_use_of(retry_key):
            return _error(409, "The retry key is already accepted")
    for user_id in recipients:
        _show(user_id, via, messages)
    return jsonify(sentMessages=[{"id": "0"} for _ in messages])


@bp.post("/message/push")
def push():
    body = request.get_json(silent=True) or {}
    return _deliver("push", [str(body.get("to", ""))])


@bp.post("/message/multicast")
def multicast():
    body = request.get_json(silent=True) or {}
    to = body.get("to")
    if isinstance(to, list) and len(to) > MULTICAST_MAX:
        return _error(400, f"The property, 'to', holds {len(to)} users; at most "
                           f"{MULTICAST_MAX}")
    return _deliver("multicast", [str(u) for u in to] if isinstance(to, list) else [])


@bp.get("/profile/<user_id>")
def profile(user_id: str):
    persona = _store().persona_of(user_id)
    if persona is None:
        return _error(404, "Not found")
    return jsonify(userId=user_id, displayName=persona.display_name,
                   language=persona.language)


@bp.get("/message/quota")
def quota():
    return jsonify(type="none")


@bp.get("/message/quota/consumption")
def consumption():
    return jsonify(totalUsage=0)
