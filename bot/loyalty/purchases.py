"""Purchases earn points and stamps; refunds take them back in proportion."""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import Row, bindparam, exists, func, select
from sqlalchemy.orm import Session

from bot.db import core, dialect_insert, write_through
from bot.loyalty import audit
from bot.loyalty.errors import (
    InvalidAmount,
    MemberClosed,
    OrderConflict,
    ReasonRequired,
    RefundConflict,
    RefundExceedsPurchase,
    UnknownOrder,
)
from bot.loyalty.ledger import (
    credit,
    debit,
    extend_rolling_expiry,
    lock_member,
    lots_due,
    open_lots,
    settle_expired,
)
from bot.loyalty.stamps import (
    add_stamps,
    stamp_minimum,
    stamps_for,
    stamps_today,
    take_back_stamps,
)
from bot.loyalty.tiers import (
    SPEND,
    TierChange,
    evaluate_tier,
    spend_params,
    undo_refunded_tier,
)
from bot.loyalty.timeutil import local_date
from bot.models import Claim, Coupon, Member, PointEntry, Purchase, Refund
from bot.program import Program

MAX_AMOUNT = 100_000_000


@dataclass
class PurchaseResult:
    purchase: Purchase | Row  # the row as inserted (insert_order), or the loaded Purchase
    points: int
    stamps: int
    coupons: list[Coupon] = field(default_factory=list)
    tier_change: TierChange | None = None
    duplicate: bool = False
    card_stamps: int | None = None  # the stamp card after this purchase (None: not stamped)
    card_goal: int | None = None
    no_stamp: str | None = None  # why a paid purchase got no stamp: "minimum" or "today"


@dataclass
class RefundResult:
    refund: Refund
    duplicate: bool = False


def same_purchase_since(session: Session, member_id: int, amount: int, since: dt.datetime
                        ) -> dt.datetime | None:
    """When the member's latest purchase of exactly this amount since `since` was made, if
    one was and is not refunded: a staff member who got no answer may be typing the same
    purchase again."""
    return core(session).execute(_SAME_PURCHASE, {"member_id": member_id, "amount": amount,
                                                  "since": since}).scalar()


_SAME_PURCHASE = (  # built once: every staff purchase asks it
    select(Purchase.created_at).where(
        Purchase.member_id == bindparam("member_id"), Purchase.amount == bindparam("amount"),
        Purchase.created_at >= bindparam("since"), Purchase.refunded_amount == 0)
    .order_by(Purchase.created_at.desc()).limit(1))


_CURRENCY = re.compile(r"^(?:NT\$|NTD|NT|\$)|(?:元|塊)$", re.IGNORECASE)


def parse_amount(text: str) -> int:
    """An amount typed by staff: digits, optionally written as NT$1,200, $1200 or 1200元
    (full-width characters are folded before this), from 1 to MAX_AMOUNT. Other scripts'
    digits (such as ፩), decimals and signs are refused, each saying why."""
    shown = text[:20]
    digits = _CURRENCY.sub("", text).replace(",", "")
    if digits.startswith("-"):
        raise InvalidAmount(detail=f"{shown!r}: the amount must be more than 0")
    if "." in digits and digits.replace(".", "", 1).isdigit():
        raise InvalidAmount(detail=f"{shown!r}: whole dollars only, no decimals")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > len(str(MAX_AMOUNT)):
        raise InvalidAmount(detail=f"{shown!r}: type the amount in digits, "
                                   f"1 to {MAX_AMOUNT:,}")
    return _check_amount(int(digits), "the amount", minimum=1)


def _check_amount(value: object, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_AMOUNT:
        raise InvalidAmount(detail=f"{what} must be a whole number from {minimum} "
                                   f"to {MAX_AMOUNT}, not {value!r}")
    return value


def _check_categories(categories: dict | None, amount: int) -> dict[str, int]:
    categories = dict(categories or {})
    for name, value in categories.items():
        if not isinstance(name, str) or not name:
            raise InvalidAmount(detail="category names must be text")
        _check_amount(value, f"the amount for category {name!r}")
    if sum(categories.values()) > amount:
        raise InvalidAmount(detail="the category amounts add up to more than the purchase")
    return categories


def _check_ref(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise InvalidAmount(detail=f"{what} must be 1 to 128 characters")
    return value.strip()


def points_for(program: Program, amount: int, categories: dict[str, int], tier_key: str,
               now: dt.datetime) -> int:
    """Points for a purchase: categories, then tier and campaign multipliers, rounded once."""
    weighted = Fraction(amount - sum(categories.values()))
    for name, part in categories.items():
        weighted += part * program.category_multipliers.get(name, Fraction(1))
    today = local_date(now, program.timezone)
    campaign = max((c.multiplier for c in program.campaigns if c.starts <= today <= c.ends),
                   default=Fraction(1))
    exact = weighted / program.amount_per_point * program.tier(tier_key).multiplier * campaign
    if program.rounding == "ceil":
        return math.ceil(exact)
    if program.rounding == "round":
        return math.floor(exact + Fraction(1, 2))
    return math.floor(exact)


def record_purchase(session: Session, program: Program, member_id: int, amount: int,
                    now: dt.datetime, *, source: str, order_id: str,
                    categories: dict[str, int] | None = None, staff_id: int | None = None,
                    actor: str) -> PurchaseResult:
    """Record a purchase once per (source, order id); a repeat returns the first result."""
    amount, categories, source, order_id = check_order(amount, categories, source, order_id)
    member = lock_member(session, member_id)
    facts = _facts(session, program, member, now)
    points, stamps = _worth(program, member, amount, categories, facts, now)
    starter = _starter(program, facts, amount)
    purchase = insert_order(session, amount, now, source=source, order_id=order_id,
                            categories=categories, staff_id=staff_id, member_id=member.id,
                            points=points, stamps=stamps + starter)
    if purchase is None:
        return _repeat(find_purchase(session, source, order_id), member.id, amount)
    return _earn(session, program, member, purchase, facts, now, stamps, starter, actor=actor)


def check_order(amount: object, categories: dict | None, source: object, order_id: object
                ) -> tuple[int, dict[str, int], str, str]:
    """An order's amount, category amounts, source and order id, checked (InvalidAmount)."""
    amount = _check_amount(amount, "the amount")
    return (amount, _check_categories(categories, amount), _check_ref(source, "the source"),
            _check_ref(order_id, "the order id"))


def insert_order(session: Session, amount: int, now: dt.datetime, *, source: str,
                 order_id: str, categories: dict[str, int], staff_id: int | None,
                 member_id: int | None, points: int = 0, stamps: int = 0) -> Row | None:
    """The order's row as inserted (a Core row: the attributes of a Purchase, read only),
    or None when (source, order id) was taken before (by any request, even one running
    now). Without a member, the order waits for its claim code. Nothing in the transaction
    that inserts it changes it afterwards, and the ORM's INSERT returning an object cost a
    purchase 5% more instructions (benchmarks/webhook_instructions.py)."""
    return core(session).execute(  # one row as a dict: a list would take the executemany path
        _insert_order_statement(session.get_bind().dialect.name),
        {"member_id": member_id, "source": source, "external_order_id": order_id,
         "amount": amount, "categories": categories, "points_earned": points,
         "stamps_earned": stamps, "staff_id": staff_id, "created_at": now}).first()


@functools.cache
def _insert_order_statement(dialect: str) -> Any:
    """insert_order's INSERT, built once per database kind."""
    return (dialect_insert(dialect, Purchase.__table__)
            .on_conflict_do_nothing(index_elements=["source", "external_order_id"])
            .returning(*Purchase.__table__.c))


def credit_order(session: Session, program: Program, member_id: int, purchase: Purchase,
                 now: dt.datetime, *, actor: str) -> PurchaseResult:
    """Give an order recorded without its customer to the member who claimed it: its points
    and stamps are worked out now, as if the purchase had been recorded for them now."""
    member = lock_member(session, member_id)
    facts = _facts(session, program, member, now)
    purchase.points_earned, stamps = _worth(
        program, member, purchase.amount, purchase.categories, facts, now)
    starter = _starter(program, facts, purchase.amount)
    purchase.stamps_earned, purchase.member_id = stamps + starter, member.id
    return _earn(session, program, member, purchase, facts, now, stamps, starter, actor=actor)


def _worth(program: Program, member: Member, amount: int, categories: dict[str, int],
           facts: Row, now: dt.datetime) -> tuple[int, int]:
    """The points and stamps an order earns this member."""
    points = points_for(program, amount, categories, member.tier, now) * member.bonus_multiplier
    return points, stamps_for(program, amount, facts.stamps_today)


def _starter(program: Program, facts: Row, amount: int) -> int:
    """The starter stamps a first paid purchase brings (on top of what it earns)."""
    return program.stamps.starter_stamps if facts.first and amount else 0


def _earn(session: Session, program: Program, member: Member, purchase: Purchase | Row,
          facts: Row, now: dt.datetime, stamps: int, starter: int, *, actor: str
          ) -> PurchaseResult:
    """Credit what a newly recorded order earned: purchase.points_earned, and its stamps
    (`stamps` earned, `starter` on top: purchase.stamps_earned holds both already)."""
    amount, points = purchase.amount, purchase.points_earned
    source, order_id = purchase.source, purchase.external_order_id
    if facts.lots_due:
        settle_expired(session, member, now)
    changes: dict[str, Any] = {"last_purchase_at": now, "last_activity_at": now}
    if amount:  # a win-back bonus is for one paid purchase, not an order a coupon paid
        changes["bonus_multiplier"] = 1
    if points:  # the member's changes go with the new balance, in one UPDATE
        credit(session, program, member, points, "earn", now, actor=actor,
               reason=f"purchase {source}:{order_id}", purchase_id=purchase.id,
               member_changes=changes)
    else:  # a purchase that earns nothing still counts as activity
        extend_rolling_expiry(session, program, member, now)
        write_through(session, member, **changes)
    result = PurchaseResult(purchase, points, stamps)
    outcome = add_stamps(session, program, member, stamps, "purchase", now, purchase)
    bonus = add_stamps(session, program, member, starter, "starter", now, purchase)
    result.stamps += bonus.added  # add_stamps puts every stamp: stamps + starter, as stored
    result.coupons = outcome.coupons + bonus.coupons
    last = bonus if bonus.card_goal is not None else outcome
    result.card_stamps, result.card_goal = last.card_stamps, last.card_goal
    if amount and not result.stamps:
        result.no_stamp = "minimum" if amount < stamp_minimum(program) else (
            "today" if program.stamps.one_per_day else None)
    result.tier_change = evaluate_tier(session, program, member, now,
                                       spend=facts.spend_before + amount)
    audit.record(session, "purchase", member_id=member.id, actor=actor, at=now,
                 purchase_id=purchase.id, amount=amount, points=points, stamps=result.stamps)
    return result


def _facts(session: Session, program: Program, member: Member, now: dt.datetime) -> Row:
    """What a purchase needs to know beforehand, in one statement: is it the member's first
    paid one (starter stamps wait for it), the stamps purchases earned them today, their
    window spend so far, any points due to expire. A closed member earns nothing."""
    if member.status in ("merged", "erased"):  # its points would never reach anyone
        raise MemberClosed()
    return core(session).execute(_FACTS, {**spend_params(program, member.id, now),
                                          "today": local_date(now, program.timezone)}).one()


_FACTS = select(  # built once (see _facts)
    ~exists().where(Purchase.member_id == bindparam("member_id"), Purchase.amount > 0)
    .label("first"),
    stamps_today(bindparam("member_id"), bindparam("today")).label("stamps_today"),
    SPEND.scalar_subquery().label("spend_before"),
    lots_due(bindparam("member_id"), bindparam("now")).label("lots_due"))


def find_purchase(session: Session, source: str, order_id: str) -> Purchase | None:
    """The purchase recorded for (source, order id), if any."""
    return session.scalar(select(Purchase).where(Purchase.source == source,
                                                 Purchase.external_order_id == order_id)
                          .execution_options(populate_existing=True))


def _repeat(existing: Purchase, member_id: int, amount: int) -> PurchaseResult:
    if existing.member_id != member_id or existing.amount != amount:
        raise OrderConflict()
    return PurchaseResult(existing, existing.points_earned, existing.stamps_earned,
                          duplicate=True)


def refund_order(session: Session, program: Program, amount: int, now: dt.datetime, *,
                 source: str, order_id: str, refund_id: str, actor: str,
                 reason: str = "") -> RefundResult:
    """Take back the points and stamps of the refunded share of an order, once per refund id.

    Points already spent cannot be taken back without a negative balance: what cannot be
    recovered is recorded on the refund (and in the audit trail), never silently dropped.
    """
    amount = _check_amount(amount, "the refund amount", minimum=1)
    source, order_id = _check_ref(source, "the source"), _check_ref(order_id, "the order id")
    refund_id = _check_ref(refund_id, "the refund id")
    purchase = find_purchase(session, source, order_id)
    if purchase is None:
        raise UnknownOrder()
    if purchase.member_id is None:  # waiting for its claim code: lock the code, look again
        claim = session.scalar(select(Claim).where(Claim.purchase_id == purchase.id)
                               .with_for_update())
        purchase = find_purchase(session, source, order_id)
        if purchase.member_id is None:
            return _refund_unclaimed(session, program, purchase, claim, amount, now,
                                     refund_id=refund_id, actor=actor, reason=reason)
    member = lock_member(session, purchase.member_id)
    done = session.scalar(select(Refund).where(Refund.source == source,
                                               Refund.refund_id == refund_id))
    if done is not None:
        return _repeat_refund(done, purchase, amount)
    purchase = find_purchase(session, source, order_id)
    left = purchase.amount - purchase.refunded_amount
    if amount > left:
        raise RefundExceedsPurchase(left=left, currency=program.currency + " ")
    settle_expired(session, member, now)
    points_due = _share(purchase.points_earned, purchase, amount, session, "points")
    stamps_due = _share(purchase.stamps_earned, purchase, amount, session, "stamps")
    purchase.refunded_amount += amount
    refund = Refund(purchase_id=purchase.id, source=source, refund_id=refund_id, amount=amount,
                    created_at=now)
    session.add(refund)
    session.flush()
    entry = debit(session, member, points_due, "reverse", now, actor=actor, partial=True,
                  reason=f"refund {source}:{refund_id}", refund_id=refund.id,
                  purchase_id=purchase.id, lots=_lots_purchase_first(session, member.id, purchase))
    refund.points_reversed = -entry.points if entry else 0
    refund.points_unrecovered = points_due - refund.points_reversed
    refund.stamps_reversed = take_back_stamps(session, program, member, stamps_due, now, purchase)
    refund.stamps_unrecovered = stamps_due - refund.stamps_reversed
    undo_refunded_tier(session, program, member, purchase, now) or evaluate_tier(
        session, program, member, now)
    audit.record(session, "refund", member_id=member.id, actor=actor, at=now, reason=reason,
                 refund_id=refund.id, amount=amount, points_reversed=refund.points_reversed,
                 points_unrecovered=refund.points_unrecovered,
                 stamps_reversed=refund.stamps_reversed,
                 stamps_unrecovered=refund.stamps_unrecovered)
    return RefundResult(refund)


def _refund_unclaimed(session: Session, program: Program, purchase: Purchase,
                      claim: Claim | None, amount: int, now: dt.datetime, *, refund_id: str,
                      actor: str, reason: str = "") -> RefundResult:
    """A refund of an order nobody has claimed: revenue goes down, nobody loses points, and
    its claim code stops working (a code for what is left would be a new code)."""
    done = session.scalar(select(Refund).where(Refund.source == purchase.source,
                                               Refund.refund_id == refund_id))
    if done is not None:
        return _repeat_refund(done, purchase, amount)
    left = purchase.amount - purchase.refunded_amount
    if amount > left:
        raise RefundExceedsPurchase(left=left, currency=program.currency + " ")
    purchase.refunded_amount += amount
    refund = Refund(purchase_id=purchase.id, source=purchase.source, refund_id=refund_id,
                    amount=amount, created_at=now)
    session.add(refund)
    if claim is not None and claim.status == "open":
        claim.status, claim.cancelled_at = "cancelled", now
    session.flush()
    audit.record(session, "refund", member_id=None, actor=actor, at=now, refund_id=refund.id,
                 amount=amount, points_reversed=0, points_unrecovered=0, stamps_reversed=0,
                 stamps_unrecovered=0, reason=reason)
    return RefundResult(refund)


def _repeat_refund(done: Refund, purchase: Purchase, amount: int) -> RefundResult:
    """A retry gets the first result; a refund id reused for something else reverses nothing."""
    if done.purchase_id != purchase.id or done.amount != amount:
        raise RefundConflict()
    return RefundResult(done, duplicate=True)


def _share(earned: int, purchase: Purchase, amount: int, session: Session, what: str) -> int:
    """This refund's share of what the order earned, so partial refunds add up exactly."""
    refunded_after = purchase.refunded_amount + amount
    target = earned * refunded_after // purchase.amount  # all of it once fully refunded
    if what == "points":
        column = Refund.points_reversed + Refund.points_unrecovered
    else:
        column = Refund.stamps_reversed + Refund.stamps_unrecovered
    already = session.scalar(select(func.coalesce(func.sum(column), 0))
                             .where(Refund.purchase_id == purchase.id)) or 0
    return max(0, target - already)


def _lots_purchase_first(session: Session, member_id: int, purchase: Purchase
                         ) -> list[PointEntry]:
    """A refund takes back the order's own lot first, then the soonest-expiring others."""
    own = session.scalar(select(PointEntry.id).where(PointEntry.purchase_id == purchase.id,
                                                     PointEntry.kind == "earn"))
    return open_lots(session, member_id, first_lot_id=own)


def refund_by_hand(session: Session, program: Program, member_id: int, purchase_id: int,
                   amount: int, now: dt.datetime, *, key: str, reason: str, actor: str
                   ) -> RefundResult:
    """A refund the shop records for one of the member's purchases (the owner console), with
    its reason: refund_order under the refund id `manual:<key>`, so the same form sent
    twice refunds once."""
    if not (reason or "").strip():
        raise ReasonRequired()
    purchase = session.get(Purchase, purchase_id) if isinstance(purchase_id, int) and (
        0 < purchase_id < 2 ** 63) else None
    if purchase is None or purchase.member_id != member_id:
        raise UnknownOrder()
    return refund_order(session, program, amount, now, source=purchase.source,
                        order_id=purchase.external_order_id, refund_id=f"manual:{key}"[:128],
                        actor=actor, reason=reason.strip())
