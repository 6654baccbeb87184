"""Taps on the bot's buttons, counted by the bot: which message (kind or campaign) or the
rich menu a tap came from, and what it asked for, per local day. LINE's statistics need an
application and hide small numbers; these need neither."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from bot.db import core, dialect_insert, dialect_name
from bot.models import TapCount

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
