"""Coupons: issue within caps, check, and redeem exactly once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import format_code, new_code, normalize_code
from bot.loyalty.errors import (
    CapReached,
    CouponAlreadyRedeemed,
    CouponExpired,
    CouponNotYetValid,
    CouponNotYours,
    CouponWindowClosed,
    InvalidAmount,
    MinimumSpendNotMet,
    UnknownCode,
)
from bot.loyalty.ledger import lock_member
from bot.loyalty.timeutil import end_of_day, local_date, start_of_day
from bot.models import Coupon, CouponTemplateRow, Redemption
from bot.program import CouponTemplate, Program


@dataclass(frozen=True)
class CouponView:
    """A coupon with its program template, ready to show or to price an order."""

    coupon: Coupon
    template: CouponTemplate
    discount: int = 0

    @property
    def display_code(self) -> str:
        return format_code(self.coupon.code)


def template_row(session: Session, template: CouponTemplate) -> CouponTemplateRow:
    """The database row that counts a template's issues, created on first use."""
    row = session.scalar(select(CouponTemplateRow).where(CouponTemplateRow.key == template.key))
    if row is None:
        try:
            with session.begin_nested():
                row = CouponTemplateRow(key=template.key, title=template.title,
                                        kind=template.kind, total_cap=template.total_cap)
                session.add(row)
        except IntegrityError:
            row = session.scalar(
                select(CouponTemplateRow).where(CouponTemplateRow.key == template.key))
    elif (row.total_cap, row.title, row.kind) != (template.total_cap, template.title,
                                                  template.kind):
        row.total_cap, row.title, row.kind = template.total_cap, template.title, template.kind
    return row


def validity(program: Program, template: CouponTemplate, now: dt.datetime
             ) -> tuple[dt.datetime, dt.datetime]:
    tz = program.timezone
    if template.valid_days is not None:
        return now, end_of_day(local_date(now, tz) + dt.timedelta(days=template.valid_days), tz)
    since = start_of_day(template.valid_from, tz) if template.valid_from else now
    return since, end_of_day(template.valid_until, tz)


def issue_coupon(session: Session, program: Program, member_id: int, template_key: str,
                 now: dt.datetime, *, reason: str, actor: str = "system",
                 issue_key: str | None = None) -> Coupon:
    """Give a member a coupon, within the template's total and per-member caps.

    With an `issue_key`, the same grant (a welcome gift, a card's milestone) happens at most
    once ever: asking again returns the coupon already given.
    """
    template = program.coupons[template_key]
    member = lock_member(session, member_id)  # serializes grants, so the checks below hold
    if issue_key and (given := session.scalar(select(Coupon).where(Coupon.issue_key == issue_key))):
        return given
    valid_from, valid_until = validity(program, template, now)
    if valid_until <= now:
        raise CouponWindowClosed(title=template.title)
    row = template_row(session, template)
    if template.per_member_cap is not None:
        held = session.scalar(select(func.count()).select_from(Coupon).where(
            Coupon.member_id == member.id, Coupon.template_id == row.id))
        if held >= template.per_member_cap:
            raise CapReached(title=template.title)
    counted = session.execute(
        update(CouponTemplateRow)
        .where(CouponTemplateRow.id == row.id,
               (CouponTemplateRow.total_cap.is_(None))
               | (CouponTemplateRow.issued_count < CouponTemplateRow.total_cap))
        .values(issued_count=CouponTemplateRow.issued_count + 1)
        .execution_options(synchronize_session=False))
    if counted.rowcount != 1:
        raise CapReached(title=template.title)
    coupon = Coupon(code=_unused_code(session), template_id=row.id, member_id=member.id,
                    valid_from=valid_from, valid_until=valid_until, issued_at=now,
                    reason=reason, issue_key=issue_key)
    session.add(coupon)
    session.flush()
    audit.record(session, "coupon.issue", member_id=member.id, actor=actor, at=now,
                 reason=reason, coupon_id=coupon.id, template=template.key)
    return coupon


def _unused_code(session: Session) -> str:
    while True:  # 31**9 codes: a clash is a once-in-ages event, but never reuse one
        code = new_code()
        if session.scalar(select(Coupon.id).where(Coupon.code == code)) is None:
            return code


def find_coupon(session: Session, program: Program, text: str) -> CouponView:
    code = normalize_code(text)
    coupon = code and session.scalar(
        select(Coupon).where(Coupon.code == code).execution_options(populate_existing=True))
    if not coupon:
        raise UnknownCode()
    row = session.get(CouponTemplateRow, coupon.template_id)
    return CouponView(coupon, _template_for(program, row))


def _template_for(program: Program, row: CouponTemplateRow) -> CouponTemplate:
    """The program's template; a retired one is shown from its stored title."""
    return program.coupons.get(row.key) or CouponTemplate(
        key=row.key, title=row.title, title_en=row.title, kind=row.kind, valid_days=1)


def discount_for(template: CouponTemplate, order_amount: int | None) -> int:
    """The money off an order of `order_amount` (0 for gifts and free shipping)."""
    if order_amount is None:
        return 0
    if template.kind == "amount_off":
        return min(template.amount, order_amount)
    if template.kind == "percent_off":
        off = order_amount * template.percent // 100
        return min(off, template.max_discount) if template.max_discount else off
    return 0


def check_coupon(session: Session, program: Program, text: str, now: dt.datetime, *,
                 member_id: int | None = None, order_amount: int | None = None) -> CouponView:
    """Everything a redemption checks, with no side effect."""
    if order_amount is not None and (isinstance(order_amount, bool)
                                     or not isinstance(order_amount, int) or order_amount < 0):
        raise InvalidAmount(detail=f"order amount {order_amount!r}")
    view = find_coupon(session, program, text)
    coupon, template, tz = view.coupon, view.template, program.timezone
    if member_id is not None and coupon.member_id != member_id:
        raise CouponNotYours()
    if coupon.status == "redeemed":
        raise CouponAlreadyRedeemed()
    last_day = local_date(coupon.valid_until - dt.timedelta(microseconds=1), tz)
    if coupon.status in ("expired", "void") or now >= coupon.valid_until:
        raise CouponExpired(until=last_day.isoformat())
    if now < coupon.valid_from:
        raise CouponNotYetValid(since=local_date(coupon.valid_from, tz).isoformat())
    if order_amount is not None and order_amount < template.min_spend:
        raise MinimumSpendNotMet(minimum=template.min_spend, amount=order_amount,
                                 currency=program.currency + " ")
    return CouponView(coupon, template, discount_for(template, order_amount))


def redeem_coupon(session: Session, program: Program, text: str, now: dt.datetime, *,
                  actor: str, member_id: int | None = None, order_amount: int | None = None,
                  purchase_id: int | None = None, staff_id: int | None = None,
                  channel: str = "staff") -> CouponView:
    """Use a coupon once. The conditional UPDATE makes concurrent attempts lose cleanly."""
    view = check_coupon(session, program, text, now, member_id=member_id,
                        order_amount=order_amount)
    won = session.execute(
        update(Coupon).where(Coupon.id == view.coupon.id, Coupon.status == "issued")
        .values(status="redeemed", redeemed_at=now)
        .execution_options(synchronize_session=False))
    if won.rowcount != 1:
        raise CouponAlreadyRedeemed()
    session.refresh(view.coupon)
    session.add(Redemption(coupon_id=view.coupon.id, member_id=view.coupon.member_id,
                           staff_id=staff_id, purchase_id=purchase_id,
                           order_amount=order_amount, discount=view.discount, channel=channel,
                           redeemed_at=now))
    audit.record(session, "coupon.redeem", member_id=view.coupon.member_id, actor=actor, at=now,
                 coupon_id=view.coupon.id, template=view.template.key,
                 order_amount=order_amount, discount=view.discount, purchase_id=purchase_id)
    return view


def wallet(session: Session, program: Program, member_id: int, now: dt.datetime
           ) -> list[CouponView]:
    """The member's usable (and soon usable) coupons, soonest to expire first."""
    rows = session.execute(
        select(Coupon, CouponTemplateRow).join(CouponTemplateRow)
        .where(Coupon.member_id == member_id, Coupon.status == "issued",
               Coupon.valid_until > now)
        .order_by(Coupon.valid_until, Coupon.id)).all()
    return [CouponView(coupon, _template_for(program, row)) for coupon, row in rows]


def expire_due_coupons(session: Session, now: dt.datetime, limit: int = 500) -> int:
    """Mark up to `limit` coupons past their validity as expired; returns how many."""
    due = session.execute(
        select(Coupon.id, Coupon.member_id)
        .where(Coupon.status == "issued", Coupon.valid_until <= now)
        .order_by(Coupon.id).limit(limit)).all()
    for coupon_id, member_id in due:
        expired = session.execute(
            update(Coupon).where(Coupon.id == coupon_id, Coupon.status == "issued")
            .values(status="expired").execution_options(synchronize_session=False))
        if expired.rowcount:
            audit.record(session, "coupon.expire", member_id=member_id, actor="system", at=now,
                         coupon_id=coupon_id)
    return len(due)

