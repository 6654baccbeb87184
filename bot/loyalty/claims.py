"""Claim codes: an order recorded without its customer, taken by the customer who scans it.

Staff (`集點 AMOUNT`) or the POS (`POST /api/v1/claims`) record the order at once, under its
(source, order id), with no member: it is revenue from that moment, can be refunded, and the
same order cannot be recorded a second time. The one-time code goes to the customer as a QR
that opens the shop's chat with `領取 CODE` typed; when they send it, the order becomes
theirs with its points and stamps, and the receipt is the (free) reply to that message.

A code is single-use (the claim row is locked while it is taken: of two customers racing,
one wins and the other is told it was claimed), unguessable (bot.loyalty.codes), tied to the
staff member or API token that made it, and expires ([claims] minutes, per source). A code
that expires unclaimed gives nobody points; the order stays revenue. Cancelling a code
refunds its order in full (it was a mistake); a refund of an unclaimed order ends its code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import new_code, normalize_code
from bot.loyalty.coupons import unredeem
from bot.loyalty.errors import (
    ClaimCancelled,
    ClaimExpired,
    ClaimLimitReached,
    ClaimNotYours,
    ClaimsOff,
    ClaimTaken,
    OrderConflict,
    SelfService,
    UnknownClaim,
)
from bot.loyalty.purchases import (
    PurchaseResult,
    check_order,
    credit_order,
    find_purchase,
    insert_order,
    refund_order,
)
from bot.loyalty.timeutil import local_date, start_of_day
from bot.models import AuditLog, Claim, Member, Purchase, Redemption, Staff
from bot.program import Program

# a customer who sends this many unknown codes in the window waits (as staff who guess do)
GUESS_LIMIT, GUESS_WINDOW = 10, dt.timedelta(minutes=10)


@dataclass(frozen=True)
class ClaimView:
    claim: Claim
    purchase: Purchase
    status: str  # open, expired, claimed, cancelled
    claimed_by: Member | None = None
    duplicate: bool = False  # the same order asked again: the first code
    coupons_back: tuple[int, ...] = ()  # coupons usable again: the cancelled order used them


def _status(claim: Claim, now: dt.datetime) -> str:
    return "expired" if claim.status == "open" and claim.expires_at <= now else claim.status


def make_claim(session: Session, program: Program, amount: int, now: dt.datetime, *,
               source: str, order_id: str, actor: str, categories: dict | None = None,
               staff_id: int | None = None, api_token_id: int | None = None,
               reserved_for: int | None = None) -> ClaimView:
    """Record the order without its customer and make its one-time code. The same (source,
    order id) again with the same amount returns the first code; with anything else it is
    an OrderConflict, as for purchases."""
    if not program.claims.enabled:
        raise ClaimsOff()
    amount, categories, source, order_id = check_order(amount, categories, source, order_id)
    if staff_id is not None and program.claims.staff_daily_total is not None:
        _check_daily_total(session, program, staff_id, amount, now)
    purchase = insert_order(session, amount, now, source=source, order_id=order_id,
                            categories=categories, staff_id=staff_id, member_id=None)
    if purchase is None:
        existing = find_purchase(session, source, order_id)
        claim = session.scalar(select(Claim).where(Claim.purchase_id == existing.id))
        if claim is None or existing.amount != amount:
            raise OrderConflict()
        return ClaimView(claim, existing, _status(claim, now), duplicate=True)
    claim = Claim(code=new_code(), purchase_id=purchase.id, status="open", staff_id=staff_id,
                  api_token_id=api_token_id, reserved_for=reserved_for, created_at=now,
                  expires_at=now + program.claims.lifetime(source))
    session.add(claim)
    session.flush()
    audit.record(session, "claim.made", member_id=reserved_for, actor=actor, at=now,
                 claim_id=claim.id, purchase_id=purchase.id, amount=amount)
    return ClaimView(claim, purchase, "open")


def _check_daily_total(session: Session, program: Program, staff_id: int, amount: int,
                       now: dt.datetime) -> None:
    """Codes one staff member made today (not cancelled) may add up to the program's cap."""
    limit = program.claims.staff_daily_total
    session.execute(select(Staff.id).where(Staff.id == staff_id).with_for_update())  # in turn
    since = start_of_day(local_date(now, program.timezone), program.timezone)
    made = session.scalar(
        select(func.coalesce(func.sum(Purchase.amount), 0))
        .join(Claim, Claim.purchase_id == Purchase.id)
        .where(Claim.staff_id == staff_id, Claim.created_at >= since,
               Claim.status != "cancelled")) or 0
    if made + amount > limit:
        raise ClaimLimitReached(limit=limit, currency=program.currency)


def take_claim(session: Session, program: Program, text: str, member_id: int,
               now: dt.datetime, *, actor: str) -> PurchaseResult:
    """The member sent a claim code: the order becomes theirs, once, with what it earns."""
    code = normalize_code(text)
    claim = code and session.scalar(select(Claim).where(Claim.code == code).with_for_update()
                                    .execution_options(populate_existing=True))
    if not claim:
        raise UnknownClaim()
    status = _status(claim, now)
    if status == "claimed":
        raise ClaimTaken()
    if status == "cancelled":
        raise ClaimCancelled()
    if status == "expired":
        until = claim.expires_at.astimezone(program.timezone)
        raise ClaimExpired(until=f"{until:%Y/%m/%d %H:%M}")
    if claim.reserved_for is not None and claim.reserved_for != member_id:
        raise ClaimNotYours()
    if claim.staff_id is not None and not program.staff_self_service:
        maker = session.get(Staff, claim.staff_id)
        member = session.get(Member, member_id)
        if maker is not None and member is not None and maker.line_user_id == member.line_user_id:
            raise SelfService()
    purchase = session.get(Purchase, claim.purchase_id, populate_existing=True)
    result = credit_order(session, program, member_id, purchase, now, actor=actor)
    claim.status, claim.claimed_by, claim.claimed_at = "claimed", member_id, now
    audit.record(session, "claim.taken", member_id=member_id, actor=actor, at=now,
                 claim_id=claim.id, purchase_id=purchase.id)
    return result


def refuse_claim(session: Session, actor: str, error_code: str, now: dt.datetime) -> None:
    """A code a customer sent that could not be taken, kept for the guessing limit."""
    audit.record(session, "claim.take_failed", member_id=None, actor=actor, at=now,
                 reason=error_code)


def guessing(session: Session, actor: str, now: dt.datetime) -> bool:
    """GUESS_LIMIT unknown codes in GUESS_WINDOW: the sender's codes are not looked at."""
    return (session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.member_id.is_(None),  # as refusals are written: the (member, at) index serves
        AuditLog.action == "claim.take_failed", AuditLog.actor == actor,
        AuditLog.reason == UnknownClaim.code, AuditLog.at > now - GUESS_WINDOW)) or 0
            ) >= GUESS_LIMIT


def claim_view(session: Session, text: str, now: dt.datetime) -> ClaimView:
    """A code's order, state and (once taken) who took it."""
    code = normalize_code(text)
    claim = code and session.scalar(select(Claim).where(Claim.code == code))
    if not claim:
        raise UnknownClaim()
    purchase = session.get_one(Purchase, claim.purchase_id)
    taker = session.get(Member, claim.claimed_by) if claim.claimed_by else None
    return ClaimView(claim, purchase, _status(claim, now), taker)


def cancel_claim(session: Session, program: Program, text: str, now: dt.datetime, *,
                 actor: str) -> ClaimView:
    """Cancel a code nobody has taken: its order is refunded in full (it was made by
    mistake, or for the wrong amount: make a new code), so nobody can take it."""
    code = normalize_code(text)
    claim = code and session.scalar(select(Claim).where(Claim.code == code).with_for_update()
                                    .execution_options(populate_existing=True))
    if not claim:
        raise UnknownClaim()
    status = _status(claim, now)  # the lock keeps customers out until this commits
    if status == "claimed":
        raise ClaimTaken()
    if status == "cancelled":
        raise ClaimCancelled()
    purchase = session.get_one(Purchase, claim.purchase_id)
    if purchase.refunded_amount < purchase.amount:
        refund_order(session, program, purchase.amount - purchase.refunded_amount, now,
                     source=purchase.source, order_id=purchase.external_order_id,
                     refund_id=f"cancel:{claim.id}", actor=actor)
    back = []  # a coupon redeemed with this order (核銷 CODE AMOUNT) is the customer's again
    for redemption in session.scalars(select(Redemption).where(
            Redemption.purchase_id == purchase.id, Redemption.voided_at.is_(None))):
        unredeem(session, redemption, now, actor=actor)
        back.append(redemption.coupon_id)
    claim.status, claim.cancelled_at = "cancelled", now
    audit.record(session, "claim.cancelled", member_id=None, actor=actor, at=now,
                 claim_id=claim.id, purchase_id=purchase.id)
    return ClaimView(claim, purchase, "cancelled", coupons_back=tuple(back))


@dataclass(frozen=True)
class ClaimCounts:
    made: int
    claimed: int
    expired: int
    cancelled: int


def claim_counts(session: Session, start: dt.datetime, end: dt.datetime, now: dt.datetime
                 ) -> dict[int, ClaimCounts]:
    """Per staff member, the codes they made in [start, end) and what became of them."""
    past = (Claim.expires_at <= now).label("past")
    rows = session.execute(
        select(Claim.staff_id, Claim.status, past, func.count())
        .where(Claim.staff_id.is_not(None), Claim.created_at >= start, Claim.created_at < end)
        .group_by(Claim.staff_id, Claim.status, past)).all()
    counts: dict[int, list[int]] = {}
    for staff_id, status, past, n in rows:
        figures = counts.setdefault(staff_id, [0, 0, 0, 0])
        figures[0] += n
        if status == "claimed":
            figures[1] += n
        elif status == "cancelled":
            figures[3] += n
        elif past:
            figures[2] += n
    return {k: ClaimCounts(*v) for k, v in counts.items()}
