"""Coupons: issue within caps, check, and redeem exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bot.db import core, insert_new
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
    MemberClosed,
    MinimumSpendNotMet,
    ReasonRequired,
    UnknownCode,
    UnknownMember,
    UnknownTemplate,
)
from bot.loyalty.ledger import lock_member
from bot.loyalty.timeutil import end_of_day, local_date, start_of_day
from bot.models import Coupon, CouponTemplateRow, CouponTerms, Member, Redemption
from bot.outbox import waits_for
from bot.outbox.replies import note_waiting
from bot.program import CouponTemplate, Program


@dataclass(frozen=True)
class CouponView:
    """A coupon with its program template, ready to show or to price an order."""

    coupon: Coupon  # or, from wallet(), a read-only row with the same columns
    template: CouponTemplate
    discount: int = 0
    owner: Member | None = None  # the coupon's member, when find_coupon read it along

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


# what a coupon promises, kept as issued (validity is on the coupon itself; caps are rules
# for issuing, not terms of an issued coupon)
TERMS = ("key", "title", "title_en", "kind", "amount", "percent", "max_discount",
         "min_spend", "gift")


def terms_id(session: Session, template: CouponTemplate) -> int:
    """The coupon_terms row holding the template's terms as they are now, added once."""
    terms = {name: getattr(template, name) for name in TERMS}
    text = json.dumps(terms, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    insert_new(session, CouponTerms.__table__, [{"digest": digest, "terms": terms}], "digest")
    return session.scalar(select(CouponTerms.id).where(CouponTerms.digest == digest))


def validity(program: Program, template: CouponTemplate, now: dt.datetime
             ) -> tuple[dt.datetime, dt.datetime]:
    tz = program.timezone
    if template.valid_days is not None:
        return now, end_of_day(local_date(now, tz) + dt.timedelta(days=template.valid_days), tz)
    since = start_of_day(template.valid_from, tz) if template.valid_from else now
    return since, end_of_day(template.valid_until, tz)


def issue_coupon(session: Session, program: Program, member_id: int, template_key: str,
                 now: dt.datetime, *, reason: str, actor: str = "system",
                 issue_key: str | None = None, note: str = "") -> Coupon:
    """Give a member a coupon, within the template's total and per-member caps.

    With an `issue_key`, the same grant (a welcome gift, a card's milestone) happens at most
    once ever: asking again returns the coupon already given.
    """
    member = lock_member(session, member_id)  # serializes grants, so the checks below hold
    coupon = issue_coupons(session, program, [(member.id, issue_key)], template_key, now,
                           reason=reason, actor=actor, note=note)[0]
    if coupon is None:
        raise CapReached(title=program.coupons[template_key].title)
    return coupon


def issue_coupons(session: Session, program: Program, grants: list[tuple[int, str | None]],
                  template_key: str, now: dt.datetime, *, reason: str, actor: str = "system",
                  note: str = "") -> list[Coupon | None]:
    """Issue one template to many members at once: a handful of statements, not a few per member.

    `grants` are (member id, issue key or None) for distinct members the caller has locked.
    Returns, in the same order, each member's coupon (the one given before for a known issue
    key) or None where a cap stops it; members earlier in the list come first under the total
    cap. Raises CouponWindowClosed if the template can no longer be issued at all. The audit
    trail records `note` as the reason, if given (a person's words), else `reason`.
    """
    template = program.coupons[template_key]
    keys = [key for _, key in grants if key]
    given = {c.issue_key: c for c in session.scalars(
        select(Coupon).where(Coupon.issue_key.in_(keys)))} if keys else {}
    valid_from, valid_until = validity(program, template, now)
    new = [(i, member_id, key) for i, (member_id, key) in enumerate(grants) if key not in given]
    if new and (valid_until <= now or template.retired):
        raise CouponWindowClosed(title=template.title)
    result: list[Coupon | None] = [given.get(key) if key else None for _, key in grants]
    if not new:
        return result
    row = template_row(session, template)
    if template.per_member_cap is not None:
        held = dict(session.execute(
            select(Coupon.member_id, func.count()).where(
                Coupon.template_id == row.id, Coupon.member_id.in_([m for _, m, _ in new]))
            .group_by(Coupon.member_id)).all())
        new = [g for g in new if held.get(g[1], 0) < template.per_member_cap]
    if template.total_cap is not None and new:  # concurrent issuers count one after another
        issued = session.scalar(select(CouponTemplateRow.issued_count)
                                .where(CouponTemplateRow.id == row.id).with_for_update())
        new = new[:max(0, template.total_cap - issued)]
    if not new:
        return result
    session.execute(update(CouponTemplateRow).where(CouponTemplateRow.id == row.id)
                    .values(issued_count=CouponTemplateRow.issued_count + len(new))
                    .execution_options(synchronize_session=False))
    terms = terms_id(session, template)
    coupons = [Coupon(code=code, template_id=row.id, terms_id=terms, member_id=member_id,
                      valid_from=valid_from, valid_until=valid_until, issued_at=now,
                      reason=reason, issue_key=key)
               for (_, member_id, key), code in zip(new, _unused_codes(session, len(new)),
                                                         strict=True)]
    session.add_all(coupons)
    session.flush()
    for (i, _, _), coupon in zip(new, coupons, strict=True):
        result[i] = coupon
        audit.record(session, "coupon.issue", member_id=coupon.member_id, actor=actor, at=now,
                     reason=note or reason, coupon_id=coupon.id, template=template.key)
    return result


def give_coupon(session: Session, program: Program, member_id: int, template_key: str,
                now: dt.datetime, *, reason: str, actor: str) -> Coupon:
    """A coupon given by hand (the owner console), within the template's caps, with the
    reason in the audit trail; the coupon's own reason is "manual"."""
    if template_key not in program.coupons:
        raise UnknownTemplate(key=str(template_key)[:40])
    if not (reason or "").strip():
        raise ReasonRequired()
    member = session.get(Member, member_id)
    if member is None:
        raise UnknownMember()
    if member.status in ("merged", "erased"):
        raise MemberClosed()
    return issue_coupon(session, program, member_id, template_key, now, reason="manual",
                        actor=actor, note=reason.strip())


def _unused_codes(session: Session, count: int) -> list[str]:
    """`count` distinct codes no coupon has: 31**9 codes make a clash a once-in-ages event,
    but a code is never reused."""
    codes: set[str] = set()
    while len(codes) < count:
        fresh = {new_code() for _ in range(count - len(codes))} - codes
        taken = set(session.scalars(select(Coupon.code).where(Coupon.code.in_(fresh))))
        codes |= fresh - taken
    return list(codes)


def find_coupon(session: Session, program: Program, text: str) -> CouponView:
    """The coupon with this code, read in one statement with its owner (owner_of then costs
    nothing) and whether anything waits to join a push to them (a "coupon used" push)."""
    code = normalize_code(text)
    found = code and session.execute(_BY_CODE, {"code": code}).first()
    if not found:
        raise UnknownCode()
    coupon, row, terms, owner, waits = found
    if owner.line_user_id:
        note_waiting(session, owner.line_user_id, waits)
    return CouponView(coupon, template_for(program, row, terms), owner=owner)


# a coupon with its template's row and the terms it was issued with
WITH_TERMS = (select(Coupon, CouponTemplateRow, CouponTerms.terms).join(CouponTemplateRow)
              .outerjoin(CouponTerms, CouponTerms.id == Coupon.terms_id))


_BY_CODE = (  # built once (find_coupon)
    WITH_TERMS.add_columns(Member, exists().where(*waits_for(Member.line_user_id)))
    .join(Member, Member.id == Coupon.member_id).where(Coupon.code == bindparam("code"))
    .execution_options(populate_existing=True))


def template_for(program: Program, row: CouponTemplateRow,
                 terms: dict[str, Any] | None = None) -> CouponTemplate:
    """The coupon's terms as issued, over the program's template (or, for a retired one,
    its stored title). Terms are replaced field by field: a field added to templates
    later comes from today's template."""
    return _template(program, row.key, row.title, row.kind, terms)


def _template(program: Program, key: str, title: str, kind: str,
              terms: dict[str, Any] | None) -> CouponTemplate:
    base = program.coupons.get(key) or CouponTemplate(
        key=key, title=title, title_en=title, kind=kind, valid_days=1)
    if not terms:
        return base
    return dataclasses.replace(base, **{k: v for k, v in terms.items() if k in _TEMPLATE_FIELDS})


_TEMPLATE_FIELDS = frozenset(f.name for f in dataclasses.fields(CouponTemplate))
_templates: dict[tuple, tuple[Program, CouponTemplate]] = {}  # see _kept_template


def _kept_template(program: Program, row: Any) -> CouponTemplate:
    """_template for a wallet row, kept per program and stored terms (a terms row never
    changes: terms are stored once per digest), so a wallet of many coupons builds each
    template once."""
    key = (id(program), row.template_key, row.template_title, row.template_kind, row.terms_id)
    kept = _templates.get(key)
    if kept is not None and kept[0] is program:
        return kept[1]
    if len(_templates) > 1000:
        _templates.clear()
    made = _template(program, row.template_key, row.template_title, row.template_kind,
                     row.template_terms)
    _templates[key] = (program, made)
    return made


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
                 member_id: int | None = None, order_amount: int | None = None,
                 found: CouponView | None = None) -> CouponView:
    """Everything a redemption checks, with no side effect. `found`: the coupon as
    find_coupon read it a moment ago in this transaction (not read again)."""
    if order_amount is not None and (isinstance(order_amount, bool)
                                     or not isinstance(order_amount, int) or order_amount < 0):
        raise InvalidAmount(detail=f"order amount {order_amount!r}")
    view = found if found is not None else find_coupon(session, program, text)
    coupon, template, tz = view.coupon, view.template, program.timezone
    if member_id is not None and coupon.member_id != member_id:
        raise CouponNotYours()
    if coupon.status == "redeemed":
        raise CouponAlreadyRedeemed()
    last_day = local_date(coupon.valid_until - dt.timedelta(microseconds=1), tz)
    if coupon.status in ("expired", "void") or now >= coupon.valid_until:
        raise CouponExpired(until=last_day)
    if now < coupon.valid_from:
        raise CouponNotYetValid(since=local_date(coupon.valid_from, tz))
    if order_amount is not None and order_amount < template.min_spend:
        raise MinimumSpendNotMet(minimum=template.min_spend, amount=order_amount,
                                 currency=program.currency)
    return CouponView(coupon, template, discount_for(template, order_amount), view.owner)


def redeem_coupon(session: Session, program: Program, text: str, now: dt.datetime, *,
                  actor: str, member_id: int | None = None, order_amount: int | None = None,
                  purchase_id: int | None = None, staff_id: int | None = None,
                  channel: str = "staff", found: CouponView | None = None) -> CouponView:
    """Use a coupon once. The conditional UPDATE makes concurrent attempts lose cleanly (so
    a coupon `found` a moment ago, see check_coupon, needs no second read)."""
    view = check_coupon(session, program, text, now, member_id=member_id,
                        order_amount=order_amount, found=found)
    won = core(session).execute(_REDEEM, {"coupon_id": view.coupon.id, "now": now})
    if won.rowcount != 1:
        raise CouponAlreadyRedeemed()
    for name, value in (("status", "redeemed"), ("redeemed_at", now.astimezone(dt.UTC))):
        set_committed_value(view.coupon, name, value)  # what the UPDATE wrote: no refresh
    session.add(Redemption(coupon_id=view.coupon.id, member_id=view.coupon.member_id,
                           staff_id=staff_id, purchase_id=purchase_id,
                           order_amount=order_amount, discount=view.discount, channel=channel,
                           redeemed_at=now))
    audit.record(session, "coupon.redeem", member_id=view.coupon.member_id, actor=actor, at=now,
                 coupon_id=view.coupon.id, template=view.template.key,
                 order_amount=order_amount, discount=view.discount, purchase_id=purchase_id)
    return view


_REDEEM = (update(Coupon)  # built once (redeem_coupon)
           .where(Coupon.id == bindparam("coupon_id"), Coupon.status == "issued")
           .values(status="redeemed",
                   redeemed_at=bindparam("now", type_=Coupon.__table__.c.redeemed_at.type)))


def wallet(session: Session, program: Program, member_id: int, now: dt.datetime
           ) -> list[CouponView]:
    """The member's usable (and soon usable) coupons, soonest to expire first. Each view's
    coupon is a read-only row of the coupon's columns, not an ORM object: the wallet is
    shown on every card screen, and ORM objects cost more to load than the query."""
    rows = core(session).execute(_WALLET, {"member_id": member_id, "now": now}).all()
    return [CouponView(row, _kept_template(program, row)) for row in rows]


_WALLET = (  # built once (see wallet)
    select(*Coupon.__table__.c, CouponTemplateRow.key.label("template_key"),
           CouponTemplateRow.title.label("template_title"),
           CouponTemplateRow.kind.label("template_kind"),
           CouponTerms.terms.label("template_terms"))
    .join(CouponTemplateRow, CouponTemplateRow.id == Coupon.template_id)
    .outerjoin(CouponTerms, CouponTerms.id == Coupon.terms_id)
    .where(Coupon.member_id == bindparam("member_id"), Coupon.status == "issued",
           Coupon.valid_until > bindparam("now"))
    .order_by(Coupon.valid_until, Coupon.id))


def expire_due_coupons(session: Session, now: dt.datetime, limit: int = 500) -> int:
    """Mark up to `limit` coupons past their validity as expired; returns how many were due."""
    due = list(session.scalars(  # in ix_coupons_status_valid_until order: only due rows read
        select(Coupon.id).where(Coupon.status == "issued", Coupon.valid_until <= now)
        .order_by(Coupon.valid_until, Coupon.id).limit(limit)))
    if not due:
        return 0
    expired = session.execute(  # the status condition again: a concurrent redemption wins
        update(Coupon).where(Coupon.id.in_(due), Coupon.status == "issued")
        .values(status="expired").returning(Coupon.id, Coupon.member_id)
        .execution_options(synchronize_session=False)).all()
    for coupon_id, member_id in sorted(expired):
        audit.record(session, "coupon.expire", member_id=member_id, actor="system", at=now,
                     coupon_id=coupon_id)
    return len(due)


def unredeem(session: Session, redemption: Redemption, now: dt.datetime, *, actor: str) -> None:
    """Undo a redemption (staff's void): the coupon is usable again. The redemption stays,
    marked voided (when, by whom), a correction recorded beside the fact it corrects."""
    coupon = session.get(Coupon, redemption.coupon_id)
    coupon.status, coupon.redeemed_at = "issued", None
    redemption.voided_at, redemption.voided_by = now, actor
    audit.record(session, "coupon.void_redemption", member_id=coupon.member_id, actor=actor,
                 at=now, coupon_id=coupon.id, redeemed_at=redemption.redeemed_at.isoformat())
    session.flush()


def coupon_views(session: Session, program: Program, coupon_ids: list[int]
                 ) -> dict[int, CouponView]:
    """These coupons with the terms they were issued with, by id."""
    if not coupon_ids:
        return {}
    return {coupon.id: CouponView(coupon, template_for(program, row, terms))
            for coupon, row, terms in session.execute(
                WITH_TERMS.where(Coupon.id.in_(coupon_ids)))}


def coupon_view(session: Session, program: Program, coupon: Coupon) -> CouponView:
    """This coupon with the terms it was issued with."""
    terms = session.get(CouponTerms, coupon.terms_id) if coupon.terms_id else None
    return CouponView(coupon, template_for(program, session.get(CouponTemplateRow,
                                                                coupon.template_id),
                                           terms.terms if terms else None))


def owner_of(session: Session, view: CouponView) -> Member:
    """The member a coupon belongs to."""
    if view.owner is not None and view.owner.id == view.coupon.member_id:
        return view.owner  # (the session's own copy: the view keeps it from being dropped)
    return session.get(Member, view.coupon.member_id)

