"""The points ledger: append-only entries, earnings as lots drawn earliest-expiry-first.

Invariant (tested as a property): a member's cached balance equals the sum of their lots'
remainders and the sum of all their entries, and is never negative.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Exists, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session

from bot.db import core, write_through
from bot.loyalty import audit
from bot.loyalty.errors import InsufficientPoints, UnknownMember
from bot.loyalty.timeutil import add_months, end_of_day, local_date, month_end
from bot.models import Member, PointDraw, PointEntry
from bot.program import Program

EXPIRED = "points reached their expiry date"


LOCKS = "ledger.locked_members"  # Session.info: member id -> the transaction that locked it


def lock_member(session: Session, member_id: int) -> Member:
    """Load a member for a balance change, holding its row lock on PostgreSQL.

    (On SQLite the transaction's BEGIN IMMEDIATE already serializes writers.) A member this
    transaction (or the one it is nested in) has locked already costs no statement: nobody
    else can have changed the row since, and the session's copy follows our own changes.
    """
    taken = session.info.get(LOCKS, {}).get(member_id)
    if taken is not None and taken.is_active:
        return session.get_one(Member, member_id)
    member = session.execute(_LOCK_MEMBER, {"member_id": member_id}).scalar_one_or_none()
    if member is None:
        raise UnknownMember()
    return remember_locks(session, [member])[0]


_LOCK_MEMBER = (select(Member).where(Member.id == bindparam("member_id"))  # built once
                .with_for_update().execution_options(populate_existing=True))


def remember_locks(session: Session, members: list[Member]) -> list[Member]:
    """Note members just loaded with FOR UPDATE (and populate_existing) in this transaction;
    the lock lasts until it ends, or until the savepoint it was taken in is rolled back."""
    current = session.get_nested_transaction() or session.get_transaction()
    locks = session.info.setdefault(LOCKS, {})
    for member in members:
        locks[member.id] = current
    return members


def lot_expiry(program: Program, now: dt.datetime) -> dt.datetime:
    """When points earned now expire, decided in the program's timezone."""
    if program.expiry_mode == "rolling":  # points are only ever added at a moment of activity
        anchor = local_date(now, program.timezone)
        return end_of_day(add_months(anchor, program.expiry_months), program.timezone)
    last_day = add_months(local_date(now, program.timezone), program.expiry_months)
    if program.expiry_end_of_month:
        last_day = month_end(last_day)
    return end_of_day(last_day, program.timezone)


def credit(session: Session, program: Program, member: Member, points: int, kind: str,
           now: dt.datetime, *, actor: str, reason: str = "", purchase_id: int | None = None,
           member_changes: dict[str, Any] | None = None) -> int:
    """Add a lot of `points` (> 0) to a locked member (in rolling mode, renewing them all);
    returns the lot's id. The new balance is written with `member_changes` (other columns
    of the member the caller changes with it) in one UPDATE (db.write_through). The lot is a
    Core insert: nothing reads it back as an object in the transaction that writes it
    (draws load lots afresh), and the ORM's flush of it cost a purchase more than the
    statement itself."""
    extend_rolling_expiry(session, program, member, now)
    write_through(session, member, points_balance=member.points_balance + points,
                  **(member_changes or {}))
    lot_id = core(session).execute(_NEW_LOT, {
        "member_id": member.id, "kind": kind, "points": points, "remaining": points,
        "expires_at": lot_expiry(program, now), "created_at": now, "purchase_id": purchase_id,
        "reason": reason, "actor": actor}).scalar_one()
    audit.record(session, f"points.{kind}", member_id=member.id, actor=actor, at=now,
                 points_delta=points, reason=reason, entry_id=lot_id)
    return lot_id


_NEW_LOT = PointEntry.__table__.insert().returning(PointEntry.__table__.c.id)  # built once


def lock_members(session: Session, member_ids: list[int]) -> list[Member]:
    """lock_member for many members, locked in id order (so two callers cannot deadlock)."""
    if not member_ids:
        return []
    return remember_locks(session, list(session.scalars(
        select(Member).where(Member.id.in_(member_ids)).order_by(Member.id).with_for_update()
        .execution_options(populate_existing=True))))


def open_lots(session: Session, member_id: int, *, first_lot_id: int | None = None
              ) -> list[PointEntry]:
    """Lots with points left, in the order draws consume them."""
    lots = session.scalars(
        select(PointEntry).where(PointEntry.member_id == member_id, PointEntry.remaining > 0)
        .order_by(PointEntry.expires_at.is_(None), PointEntry.expires_at, PointEntry.id)
        .execution_options(populate_existing=True)
    ).all()
    if first_lot_id is not None:
        lots = sorted(lots, key=lambda lot: lot.id != first_lot_id)
    return list(lots)


def debit(session: Session, member: Member, points: int, kind: str, now: dt.datetime, *,
          actor: str, reason: str = "", lots: list[PointEntry] | None = None,
          partial: bool = False, **links: int | None) -> PointEntry | None:
    """Take `points` (> 0) from a locked member's lots, earliest expiry first.

    Raises InsufficientPoints unless `partial`, in which case it takes what there is
    (possibly nothing, returning None).
    """
    if points > member.points_balance and not partial:
        raise InsufficientPoints(needed=points, balance=member.points_balance)
    points = min(points, member.points_balance)
    if points <= 0:
        return None
    entry = PointEntry(member_id=member.id, kind=kind, points=-points, created_at=now,
                       reason=reason, actor=actor, **links)
    session.add(entry)
    session.flush()
    left = points
    for lot in lots if lots is not None else open_lots(session, member.id):
        take = min(left, lot.remaining)
        if take <= 0:
            continue
        lot.remaining -= take
        session.add(PointDraw(entry_id=entry.id, lot_id=lot.id, points=take))
        left -= take
        if left == 0:
            break
    if left:  # the cached balance and the lots disagree: never paper over that
        raise RuntimeError(f"ledger out of balance for member {member.id}")
    member.points_balance -= points
    audit.record(session, f"points.{kind}", member_id=member.id, actor=actor, at=now,
                 points_delta=-points, reason=reason, entry_id=entry.id)
    return entry


def settle_expired(session: Session, member: Member, now: dt.datetime) -> int:
    """Expire a locked member's lots whose time has come; returns the points expired."""
    due = list(session.scalars(
        select(PointEntry).where(*_due(member.id, now))
        .order_by(PointEntry.expires_at, PointEntry.id)
        .execution_options(populate_existing=True)))
    total = sum(lot.remaining for lot in due)
    if total:
        debit(session, member, total, "expire", now, actor="system", lots=due,
              reason="points reached their expiry date")
    return total


def lots_due(member_id: int, now: dt.datetime) -> Exists:
    """Whether settle_expired has anything to do (an EXISTS, to ask inside another query)."""
    return exists().where(*_due(member_id, now))


def _due(member_id: int, now: dt.datetime) -> tuple:
    return (PointEntry.member_id == member_id, PointEntry.remaining > 0,
            PointEntry.expires_at <= now)


def extend_rolling_expiry(session: Session, program: Program, member: Member,
                          now: dt.datetime) -> None:
    """Rolling expiry: a purchase or an earning pushes the whole balance's expiry out again,
    never in: points already earned keep their date when the program's months are fewer."""
    if program.expiry_mode != "rolling":
        return
    until = lot_expiry(program, now)
    session.execute(
        update(PointEntry)
        .where(PointEntry.member_id == member.id, PointEntry.remaining > 0,
               or_(PointEntry.expires_at.is_(None), PointEntry.expires_at < until))
        .values(expires_at=until)
        .execution_options(synchronize_session="fetch")
    )


def members_with_due_lots(session: Session, now: dt.datetime, limit: int) -> list[int]:
    due = (select(PointEntry.member_id)  # through ix_point_entries_due: only due lots are read
           .where(PointEntry.remaining > 0, PointEntry.expires_at <= now).distinct().subquery())
    return list(session.scalars(select(due.c.member_id).order_by(due.c.member_id).limit(limit)))


def expire_due_points(session: Session, now: dt.datetime, limit: int = 200) -> tuple[int, int]:
    """Expire due lots for up to `limit` members; returns (members, points).

    Call repeatedly, one transaction per call, until it returns (0, 0): a large backlog then
    never holds long locks nor loads everything at once. The members' rows are locked and
    their due lots settled with a few statements for the whole group.
    """
    members = lock_members(session, members_with_due_lots(session, now, limit))
    lots = session.scalars(
        select(PointEntry).where(PointEntry.member_id.in_([m.id for m in members]),
                                 PointEntry.remaining > 0, PointEntry.expires_at <= now)
        .order_by(PointEntry.member_id, PointEntry.expires_at, PointEntry.id)
        .execution_options(populate_existing=True)).all()
    due: dict[int, list[PointEntry]] = {}
    for lot in lots:
        due.setdefault(lot.member_id, []).append(lot)
    entries = {member.id: PointEntry(member_id=member.id, kind="expire", created_at=now,
                                     points=-sum(lot.remaining for lot in due[member.id]),
                                     reason=EXPIRED, actor="system")
               for member in members if member.id in due}
    session.add_all(entries.values())
    session.flush()
    for member in members:
        entry = entries.get(member.id)
        if entry is None:  # settled meanwhile by a purchase or another run
            continue
        if -entry.points > member.points_balance:  # never paper over a broken ledger
            raise RuntimeError(f"ledger out of balance for member {member.id}")
        for lot in due[member.id]:
            session.add(PointDraw(entry_id=entry.id, lot_id=lot.id, points=lot.remaining))
            lot.remaining = 0
        member.points_balance += entry.points
        audit.record(session, "points.expire", member_id=member.id, actor="system", at=now,
                     points_delta=entry.points, reason=EXPIRED, entry_id=entry.id)
    return len(members), -sum(entry.points for entry in entries.values())
