"""Idempotency keys on API writes: a request sent again with the same key is done once.

The key is claimed in the same transaction as the change, so concurrent requests with one
key make one change: the others wait on the key's row, then answer from it. Keys are per
token: two callers may pick the same key without meeting.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from bot.db import insert_new
from bot.loyalty.errors import LoyaltyError
from bot.models import IdempotencyRecord, ProcessedEvent


class IdempotencyKeyReused(LoyaltyError):
    code = "idempotency_key_reused"
    zh = "這個 Idempotency-Key 已用於另一個不同的請求。"
    en = "this Idempotency-Key was used with a different request"


def claim(session: Session, token_id: int, key: str, fingerprint: str, now: dt.datetime
          ) -> tuple[int, Any] | None:
    """None if this call now holds the key (do the work, then `keep` its answer); the
    stored (status, response) if the same request came with it before, once its holder has
    committed. A different request (another fingerprint) with the key is refused."""
    record_key = _record_key(token_id, key)
    if insert_new(session, IdempotencyRecord.__table__,
                  [{"key": record_key, "request_hash": fingerprint, "status_code": 0,
                    "response": None, "created_at": now}], "key"):
        return None
    stored = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == record_key))
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    return stored.status_code, stored.response


def keep(session: Session, token_id: int, key: str, status: int, response: Any) -> None:
    """The answer to the request holding the key, for its retries."""
    session.execute(update(IdempotencyRecord).where(
        IdempotencyRecord.key == _record_key(token_id, key)).values(
        status_code=status, response=response))


def _record_key(token_id: int, key: str) -> str:
    return f"{token_id}:{key}"


def claim_event(session: Session | Connection, event_id: str, kind: str, now: dt.datetime
                ) -> bool:
    """Mark a LINE webhook event handled (one statement); False if it was handled before:
    LINE redelivers events, and each must change things once."""
    return bool(insert_new(session, ProcessedEvent.__table__, [
        {"event_id": event_id[:64], "event_type": kind, "processed_at": now}], "event_id"))


EVENTS_KEPT = dt.timedelta(days=30)  # how long a handled webhook event's claim is kept


def forget_events(session: Session, before: dt.datetime, limit: int) -> int:
    """Delete the claims of up to `limit` webhook events handled before `before`; returns how
    many. A claim only matters while LINE may still send its event again (its redelivery
    comes within minutes to hours, never a month later); kept forever, one row per event, the
    table would grow for as long as the shop runs."""
    oldest = (select(ProcessedEvent.event_id).where(ProcessedEvent.processed_at < before)
              .limit(limit).scalar_subquery())
    return session.execute(delete(ProcessedEvent).where(ProcessedEvent.event_id.in_(oldest))
                           .execution_options(synchronize_session=False)).rowcount
