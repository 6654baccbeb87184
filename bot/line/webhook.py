"""POST /callback: verify LINE's signature, then handle each event on its own.

The SDK's WebhookParser gives up on the first malformed event and loses the rest, so the
body is read here and every event gets its own try, its own transaction and its own
once-only claim on its webhookEventId. Replies go out only after the commit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

from flask import Blueprint, Flask, current_app, request
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    InternalError,
    OperationalError,
)
from sqlalchemy.orm import Session

from bot.bootstrap import Runtime
from bot.db import NeedsWrite, db_error, transaction
from bot.line.client import LineClient, SendResult
from bot.line.events import MalformedEvent, parse_event
from bot.line.handlers import (
    HANDLERS,
    OUTSIDE_CHATS,
    Env,
    Screen,
    claim_screen,
    outside_chat,
    prefetch,
    read_screen,
)
from bot.line.limits import MessageLimitError
from bot.loyalty.alerts import record_webhook_failure
from bot.loyalty.idempotency import claim_event
from bot.loyalty.timeutil import utcnow
from bot.outbox import MESSAGES_MAX, deliver_queued, queued_in
from bot.outbox.replies import carry, reply_refused

bp = Blueprint("line", __name__)
log = logging.getLogger("bot.line")


def valid_signature(secret: str, body: bytes, signature: str) -> bool:
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.encode("ascii", "replace"))


class Retry(Exception):
    """An event failed for a reason that may pass (the database or the disk): LINE should
    send it again, and the event's claim, undone with its transaction, lets it through."""


# a database or disk that failed, went away or kept a lock too long; not a bug in a handler
TRANSIENT = (OperationalError, InterfaceError, InternalError, DisconnectionError, OSError)


@bp.post("/callback")
def callback() -> tuple[str, int]:
    """LINE's webhook: 400 for a bad signature or body; 503 when an event failed for a reason
    that may pass (LINE redelivers it); else 200 once every event was tried."""
    state = current_app.extensions["loyalty"]
    config = state.config
    if not config.line_configured:
        return "LINE channel not configured", 503
    body = request.get_data(cache=False)
    if not valid_signature(config.line_channel_secret, body,
                           request.headers.get("X-Line-Signature", "")):
        return "invalid signature", 400
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "body is not JSON", 400
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        return "not a LINE webhook body", 400
    retry, failed = False, []
    for raw in payload["events"]:
        try:
            handle_event(state, raw)
        except Retry as exc:
            retry = True
            failed.append(f"redelivered: {db_error(exc.__cause__)}")
            log.warning("event failed, LINE will redeliver it: %s: %s", _summary(raw),
                        db_error(exc.__cause__))
        except Exception as exc:  # one failing event must not lose the others
            failed.append(f"lost: {type(exc).__name__}: {exc}")
            log.exception("event failed: %s", _summary(raw))
    if failed:
        _record_failures(state, failed)
    if retry:
        return "temporarily unavailable, please redeliver", 503
    return "OK", 200


def _record_failures(state: Runtime, reasons: list[str]) -> None:
    """Keep the failures for the owner's alerts, if the database takes them (when it is the
    database that failed, it may not: the log has them, /healthz says the database is down)."""
    try:
        with transaction(state.webhook_sessions) as session:
            for reason in reasons:
                record_webhook_failure(session, utcnow(), reason)
    except Exception as exc:
        log.warning("webhook failures not recorded: %s", db_error(exc))


def handle_event(state: Runtime, raw: Any) -> None:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if not isinstance(kind, str) or kind not in HANDLERS and kind not in OUTSIDE_CHATS:
        log.info("ignored event: %s", _summary(raw))
        return
    try:
        event = parse_event(raw)
    except MalformedEvent as exc:
        log.warning("malformed %s event skipped: %s", kind, exc)
        return
    client: LineClient = state.line
    if event.source.type != "user":
        outside_chat(client, kind, event, state.render)
        return
    user_id, event_id = event.source.user_id, event.webhook_event_id
    if not user_id or kind not in HANDLERS:
        log.info("event without a user ignored: %s", _summary(raw))
        return
    env = Env(program=state.program, config=state.config, now=utcnow(), user_id=user_id,
              event_id=event_id, prefetched=prefetch(kind, event, client))
    token = event.reply_token
    try:
        screen = _read_screen(state, env, event) if kind == "postback" else None
        if screen is not None:  # read already: the claim and the tap are all it writes
            if not claim_screen(state.screen_claims, env, kind, screen):
                log.info("event %s already handled", env.event_id)
                return
            outcome, queued, carried = screen.outcome, [], []
        else:
            with transaction(state.webhook_sessions) as session:
                if not _claimed(session, env, kind):
                    return
                outcome = HANDLERS[kind](session, env, event)
                queued = queued_in(session)
                carried = carry(session, user_id, MESSAGES_MAX - outcome.expected(), env.now) \
                    if token and outcome.expected() else []
    except TRANSIENT as exc:
        raise Retry from exc
    if token and (replies := outcome.messages()):
        _reply(state, client, token, replies, carried)
    if queued:
        try:
            deliver_queued(state.webhook_sessions, client, queued, env.now)
        except TRANSIENT as exc:  # committed and queued: the clock's sender delivers them
            log.warning("pushes left to the sender job: %s", db_error(exc))


def _claimed(session: Session, env: Env, kind: str) -> bool:
    """The event's once-only claim (an event without an id cannot be told apart: it runs)."""
    if env.event_id and not claim_event(session, env.event_id, kind, env.now):
        log.info("event %s already handled", env.event_id)
        return False
    return True


def _read_screen(state: Runtime, env: Env, event: Any) -> Screen | None:
    """A tap on a screen is read before the event's write (db.reading): on SQLite beside
    other events' writes, so that the write lock is held only to claim the event and count
    the tap; on PostgreSQL without BEGIN and COMMIT, the claim and the count then being one
    statement. Showing what was committed a moment before the claim changes nothing the
    member could see. A screen that needs a write (db.NeedsWrite, or read_screen's None)
    runs whole in the event's transaction as before; a redelivered event is still answered
    and counted once, by its claim."""
    if state.screen_sessions is None or state.screen_claims is None:
        return None
    try:
        with transaction(state.screen_sessions) as session:
            return read_screen(session, env, event)
    except NeedsWrite:
        return None


def _reply(state: Runtime, client: LineClient, token: str, replies: list[dict],
           carried: list[tuple[int, list[dict]]]) -> None:
    """The reply, with what waited for the member after it (unbilled). What no longer fits
    (the reply came out longer than expected), or a reply LINE refused, waits again."""
    room, along, back = MESSAGES_MAX - len(replies), [], []
    for row_id, messages in carried:
        if len(messages) <= room:
            along.append((row_id, messages))
            room -= len(messages)
        else:
            back.append(row_id)
    try:
        sent = client.reply(token, replies + [m for _, messages in along for m in messages])
    except MessageLimitError as exc:  # what rode along broke a limit: reply without it
        sent = client.reply(token, replies)
        sent = SendResult(False, error=str(exc), refused=True) if sent.delivered else sent
    if not sent.delivered and sent.refused:
        back += [row_id for row_id, _ in along]
    if back:
        reply_refused(state.webhook_sessions, back, sent.error or "did not fit in the reply")


def _summary(raw: Any) -> str:
    if not isinstance(raw, dict):
        return type(raw).__name__
    return f"type={str(raw.get('type'))[:40]!r} id={str(raw.get('webhookEventId'))[:64]!r}"


def init_app(app: Flask) -> None:
    """Register /callback (or say once what is missing)."""
    config = app.extensions["loyalty"].config
    if not config.line_configured:
        missing = [name for name, value in (("LINE_CHANNEL_SECRET", config.line_channel_secret),
                                            ("LINE_CHANNEL_ACCESS_TOKEN",
                                             config.line_channel_access_token)) if not value]
        log.warning("LINE is not configured (%s missing): /callback answers 503",
                    ", ".join(missing))
    app.register_blueprint(bp)
