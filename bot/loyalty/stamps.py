"""Stamp cards: stamps per visit or per amount, milestones, completion and a fresh card."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from bot.db import core
from bot.loyalty import audit
from bot.loyalty.coupons import issue_coupon
from bot.loyalty.errors import (
    CapReached,
    CouponWindowClosed,
    InvalidStampCount,
    MemberClosed,
    NotEnoughStamps,
    ReasonRequired,
)
from bot.loyalty.ledger import lock_member
from bot.loyalty.tiers import SPEND, spend_params
from bot.loyalty.timeutil import end_of_day, local_date
from bot.models import Coupon, Member, Purchase, Stamp, StampCard
from bot.program import Program


@dataclass
class StampOutcome:
    added: int = 0
    coupons: list[Coupon] = field(default_factory=list)
    cards_completed: int = 0
    card_stamps: int | None = None  # the last card stamped: its stamps then (goal when full)
    card_goal: int | None = None


def active_card(session: Session, program: Program, member_id: int, now: dt.datetime
                ) -> StampCard:
    """The member's current card; an out-of-date one is closed and a new one started."""
    return usable_card(session, program, member_id, now,
                       session.scalar(_ACTIVE_CARD, {"member_id": member_id}))


def card_and_spend(session: Session, program: Program, member_id: int, now: dt.datetime
                   ) -> tuple[Any, int]:
    """active_card and the member's window spend (tiers.window_spend), in one statement.

    The card comes as a row of its columns (read only: a card screen needs no ORM object);
    a missing or out-of-date card is replaced by a new one, as active_card does."""
    row = core(session).execute(_CARD_AND_SPEND, spend_params(program, member_id, now)).one()
    spend = row.spend or 0
    if row.id is not None and (row.expires_at is None or row.expires_at > now):
        return row, spend
    card = session.get(StampCard, row.id) if row.id is not None else None
    return usable_card(session, program, member_id, now, card), spend


def usable_card(session: Session, program: Program, member_id: int, now: dt.datetime,
                card: StampCard | None) -> StampCard:
    """`card`, the member's active card as read, unless it is missing or out of date: then
    it is closed and a new one started."""
    if card and card.expires_at is not None and card.expires_at <= now:
        card.status = "expired"
        card = None
    if card is None:
        days = program.stamps.card_valid_days
        expires = (end_of_day(local_date(now, program.timezone) + dt.timedelta(days=days - 1),
                              program.timezone) if days else None)
        card = StampCard(member_id=member_id, goal=program.stamps.goal, stamps=0,
                         started_at=now, expires_at=expires,
                         rewards={str(at): key for at, key in
                                  program_card_rewards(program, program.stamps.goal).items()})
        session.add(card)
        session.flush()
    return card


def program_card_rewards(program: Program, goal: int) -> dict[int, str]:
    """What a card with this goal gives under the program: stamps -> coupon template."""
    rewards = {m.at: m.reward for m in program.stamps.milestones if m.at < goal}
    if program.stamps.completion_reward:
        rewards[goal] = program.stamps.completion_reward
    return rewards


def card_rewards(program: Program, card: StampCard) -> dict[int, str]:
    """What this card gives: the rewards it started with (a program change does not move
    them), or the program's for a card begun before they were kept."""
    return kept_rewards(program, card.goal, card.rewards)


def kept_rewards(program: Program, goal: int, rewards: dict[str, str] | None
                 ) -> dict[int, str]:
    """card_rewards from a card's goal and its `rewards` column."""
    if rewards is None:
        return program_card_rewards(program, goal)
    return {int(at): key for at, key in rewards.items()}


def _active(member_id: Any) -> tuple:
    return StampCard.member_id == member_id, StampCard.status == "active"


_ACTIVE_CARD = (select(StampCard).where(*_active(bindparam("member_id")))  # built once
                .order_by(StampCard.id.desc()))
_NEW_STAMP = Stamp.__table__.insert()  # built once

_CARD_AND_SPEND = (  # built once (see card_and_spend)
    select(*StampCard.__table__.c, SPEND.scalar_subquery().label("spend")).select_from(Member)
    .outerjoin(StampCard, and_(*_active(bindparam("member_id"))))
    .where(Member.id == bindparam("member_id")).order_by(StampCard.id.desc()).limit(1))


def stamps_today(member_id: int, today: dt.date) -> ScalarSelect[int]:
    """Stamps purchases earned the member on this local day (a subquery, for stamps_for)."""
    return (select(func.coalesce(func.sum(Stamp.count), 0))
            .where(Stamp.member_id == member_id, Stamp.local_day == today,
                   Stamp.reason == "purchase").scalar_subquery())


def stamp_minimum(program: Program) -> int:
    """The smallest purchase that earns a stamp."""
    rules = program.stamps
    return max(rules.min_amount, 1, rules.amount_per_stamp if rules.per == "amount" else 0)


def stamps_for(program: Program, amount: int, earned_today: int) -> int:
    """Stamps a purchase of `amount` earns, before starter stamps, after `earned_today`."""
    rules = program.stamps
    if amount < max(rules.min_amount, 1):  # an order a coupon paid in full is no paid visit
        return 0
    count = 1 if rules.per == "visit" else amount // rules.amount_per_stamp
    if rules.one_per_day and count:
        count = max(0, min(count, 1 - earned_today))
    return count


def add_stamps(session: Session, program: Program, member: Member, count: int, reason: str,
               now: dt.datetime, purchase: Purchase | None = None) -> StampOutcome:
    """Put `count` stamps on a locked member's cards, issuing milestone and completion coupons."""
    outcome = StampOutcome()
    today = local_date(now, program.timezone)
    while count > 0:
        card = _stamped(session, member.id, count, now)
        if card is not None:  # all of them fit on the active card, without filling it
            put, before = count, card.stamps - count
        else:
            card = active_card(session, program, member.id, now)
            put = min(count, card.goal - card.stamps)
            before, card.stamps = card.stamps, card.stamps + put
        outcome.card_stamps, outcome.card_goal = card.stamps, card.goal
        core(session).execute(_NEW_STAMP, {  # a Core insert: nothing reads it back here
            "card_id": card.id, "member_id": member.id, "count": put, "local_day": today,
            "reason": reason, "created_at": now, "purchase_id": purchase.id if purchase else None})
        rewards = card_rewards(program, card)
        for at, template in sorted(rewards.items()):
            if before < at < card.goal and at <= card.stamps:
                _reward(session, program, member, template, now,
                        f"stampcard:{card.id}:at:{at}", outcome)
        if card.stamps >= card.goal:
            card.status, card.completed_at = "completed", now
            outcome.cards_completed += 1
            if card.goal in rewards:
                _reward(session, program, member, rewards[card.goal], now,
                        f"stampcard:{card.id}:complete", outcome)
            active_card(session, program, member.id, now)  # the next card starts at once
        outcome.added += put
        count -= put
        session.flush()
    return outcome


def _stamped(session: Session, member_id: int, count: int, now: dt.datetime) -> Any:
    """The common case of add_stamps in one statement: `count` stamps put on the member's
    active card, if it is in date and they leave it short of its goal. Returns the card's
    row after the change (id, goal, stamps, rewards), or None (nothing changed: the card is
    missing, out of date or would fill, which active_card and the completion handle). A
    copy of the card already loaded in the session is expired, so it is read again."""
    row = core(session).execute(_STAMP_ACTIVE, {"card_member": member_id, "count": count,
                                                "now": now}).first()
    if row is not None:
        loaded = session.identity_map.get(session.identity_key(StampCard, (row.id,)))
        if loaded is not None:
            session.expire(loaded, ["stamps"])
    return row


_STAMP_ACTIVE = (  # built once (see _stamped); the same card active_card would pick
    update(StampCard)
    .where(StampCard.id == select(StampCard.id).where(*_active(bindparam("card_member")))
           .order_by(StampCard.id.desc()).limit(1).scalar_subquery(),
           or_(StampCard.expires_at.is_(None), StampCard.expires_at > bindparam("now")),
           StampCard.stamps + bindparam("count") < StampCard.goal)
    .values(stamps=StampCard.stamps + bindparam("count"))
    .returning(StampCard.id, StampCard.goal, StampCard.stamps, StampCard.rewards))


def _reward(session: Session, program: Program, member: Member, template: str,
            now: dt.datetime, key: str, outcome: StampOutcome) -> None:
    """Issue a card reward; a reward that has run out (or whose template the owner has
    since removed) must not undo the purchase."""
    if template not in program.coupons:
        audit.record(session, "coupon.not_issued", member_id=member.id, actor="system", at=now,
                     reason="template_removed", template=template, issue_key=key)
        return
    try:
        outcome.coupons.append(issue_coupon(session, program, member.id, template, now,
                                            reason="stamp_card", issue_key=key))
    except (CapReached, CouponWindowClosed) as exc:
        audit.record(session, "coupon.not_issued", member_id=member.id, actor="system", at=now,
                     reason=exc.code, template=template, issue_key=key)


def take_back_stamps(session: Session, program: Program, member: Member, count: int,
                     now: dt.datetime, purchase: Purchase) -> int:
    """Remove up to `count` stamps from the current card (a completed card stays completed).

    Returns how many were removed; the caller records the rest as not recovered.
    """
    card = active_card(session, program, member.id, now)
    taken = min(count, card.stamps)
    if taken:
        card.stamps -= taken
        session.add(Stamp(card_id=card.id, member_id=member.id, count=-taken,
                          local_day=local_date(now, program.timezone), reason="refund",
                          created_at=now, purchase_id=purchase.id))
        session.flush()
    return taken


def adjust_stamps(session: Session, program: Program, member_id: int, delta: int,
                  now: dt.datetime, *, reason: str, actor: str) -> StampOutcome:
    """A correction by hand, with its reason: give (+) or take back (-) stamps on the
    member's current card. Stamps given count as any stamp does (a milestone or a full card
    earns its coupon); stamps taken come off the current card only, never below zero (a
    completed card stays completed). Not a purchase's stamps: one-per-day ignores them."""
    if isinstance(delta, bool) or not isinstance(delta, int) or not (
            0 < abs(delta) <= program.stamps.goal):
        raise InvalidStampCount(goal=program.stamps.goal)
    if not (reason or "").strip():
        raise ReasonRequired()
    member = lock_member(session, member_id)
    if member.status in ("merged", "erased"):
        raise MemberClosed()
    if delta > 0:
        outcome = add_stamps(session, program, member, delta, "adjust", now)
    else:
        card = active_card(session, program, member.id, now)
        if card.stamps < -delta:
            raise NotEnoughStamps(stamps=card.stamps, count=-delta)
        card.stamps += delta
        session.add(Stamp(card_id=card.id, member_id=member.id, count=delta,
                          local_day=local_date(now, program.timezone), reason="adjust",
                          created_at=now))
        outcome = StampOutcome(added=delta)
    audit.record(session, "stamps.adjust", member_id=member.id, actor=actor, at=now,
                 reason=reason.strip(), stamps=delta,
                 coupons=[coupon.id for coupon in outcome.coupons])
    session.flush()
    return outcome
