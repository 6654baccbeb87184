"""Small verbs the tests share, each its own committed transaction like a real entrypoint."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.db import transaction
from bot.loyalty.members import register_member
from bot.loyalty.purchases import PurchaseResult, record_purchase
from bot.models import Member, PointEntry
from bot.program import Program

_orders = itertools.count(1)


def join(sessions: sessionmaker[Session], program: Program, now: dt.datetime,
         user: str = "U-alice", **kwargs) -> int:
    with transaction(sessions) as session:
        return register_member(session, program, user, now, **kwargs).member.id


def buy(sessions: sessionmaker[Session], program: Program, member_id: int, amount: int,
        now: dt.datetime, order_id: str | None = None, **kwargs) -> PurchaseResult:
    with transaction(sessions) as session:
        return record_purchase(session, program, member_id, amount, now, source="pos",
                               order_id=order_id or f"order-{next(_orders)}", actor="test",
                               **kwargs)


def balance(sessions: sessionmaker[Session], member_id: int) -> int:
    with sessions() as session:
        return session.get(Member, member_id).points_balance


def ledger_totals(sessions: sessionmaker[Session], member_id: int) -> tuple[int, int, int]:
    """(cached balance, sum of lot remainders, sum of all entries) for one member."""
    with sessions() as session:
        cached = session.get(Member, member_id).points_balance
        lots = session.scalar(select(func.coalesce(func.sum(PointEntry.remaining), 0))
                              .where(PointEntry.member_id == member_id))
        entries = session.scalar(select(func.coalesce(func.sum(PointEntry.points), 0))
                                 .where(PointEntry.member_id == member_id))
        return cached, lots, entries
