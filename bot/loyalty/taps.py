"""Taps on the bot's buttons, counted by the bot: which message (kind or campaign) or the
rich menu a tap came from, and what it asked for, per local day. LINE's statistics need an
application and hide small numbers; these need neither."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, text
from sqlalchemy.orm import Session

from bot.db import core, dialect_insert, dialect_name
from bot.loyalty.idempotency import claim_event
from bot.models import ProcessedEvent, TapCount

_NAME = re.compile(r"[a-z0-9_]{1,40}")


def tap_source(data: dict[str, str]) -> str:
    """Where a tap came from: `campaign_<key>` for a campaign's button, the message's kind
    (its `via`) for a button in a message, `menu` for the rich menu (whose taps carry none)."""
    if data.get("campaign"):
        return ("campaign_" + re.sub(r"[^a-z0-9_]", "_", data["campaign"].lower()))[:40]
    via = data.get("via", "")
    return via if _NAME.fullmatch(via) else ("menu" if not via else "other")


def count_tap(session: Session | Connection, day: dt.date, source: str, action: str) -> None:
    """One more tap: a single upsert, in the tap's own transaction."""
    core(session).execute(_upsert(dialect_name(session)),
                    {"day": day, "source": source[:40], "action": action[:32], "taps": 1})


def claim_and_count(engine: Engine, event_id: str | None, kind: str, now: dt.datetime,
                    day: dt.date, source: str, action: str) -> bool:
    """A tap on a screen already read: claim its webhook event (idempotency.claim_event) and
    count the tap (count_tap), both or neither, in one transaction of their own; False if
    the event was claimed before (LINE sent it again: nothing is counted).

    On PostgreSQL (`engine` in autocommit, db.autocommit) it is one statement, which is its
    own transaction: the tap is counted from the claim's RETURNING, so no BEGIN or COMMIT
    round trip. On SQLite, two statements in one write transaction.

    Neither waits for the disk at its commit (on SQLite, `engine` is made with
    db.autocommit(synced=False); on PostgreSQL the statement sets `synchronous_commit` off
    for its own transaction alone): a crash may undo the last few taps' counts and claims,
    never corrupt anything, and nothing a customer holds is written here."""
    tap = {"day": day, "source": source[:40], "action": action[:32]}
    if engine.dialect.name == "postgresql" and event_id:
        with engine.begin() as conn:
            return conn.execute(_CLAIM_AND_COUNT, {"event_id": event_id[:64], "kind": kind,
                                                   "at": now, **tap}).first() is not None
    with engine.begin() as conn:
        if event_id and not claim_event(conn, event_id, kind, now):
            return False
        count_tap(conn, day, source, action)
        return True


_CLAIM_AND_COUNT = text(  # PostgreSQL's (see claim_and_count)
    "WITH unsynced AS (SELECT set_config('synchronous_commit', 'off', true)), "
    "claimed AS (INSERT INTO processed_events (event_id, event_type, processed_at) "
    "SELECT :event_id, :kind, :at FROM unsynced "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id) "
    "INSERT INTO tap_counts (day, source, action, taps) "
    "SELECT :day, :source, :action, 1 FROM claimed "
    "ON CONFLICT (day, source, action) DO UPDATE SET taps = tap_counts.taps + excluded.taps "
    "RETURNING taps").bindparams(
    bindparam("at", type_=ProcessedEvent.__table__.c.processed_at.type),
    bindparam("day", type_=TapCount.__table__.c.day.type))


@functools.cache
def _upsert(dialect: str) -> Any:
    insert = dialect_insert(dialect, TapCount)
    return insert.on_conflict_do_update(
        index_elements=["day", "source", "action"],
        set_={"taps": TapCount.taps + insert.excluded.taps})


def tap_counts(session: Session, first: dt.date, last: dt.date) -> list[tuple[str, str, int]]:
    """(source, action, taps) over the local days first..last, most tapped first."""
    return [(source, action, int(n)) for source, action, n in session.execute(
        select(TapCount.source, TapCount.action, func.sum(TapCount.taps))
        .where(TapCount.day >= first, TapCount.day <= last)
        .group_by(TapCount.source, TapCount.action)
        .order_by(func.sum(TapCount.taps).desc(), TapCount.source, TapCount.action))]
