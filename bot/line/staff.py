"""Staff by chat: verify coupons, record purchases, void the last action, join with an invite.

Only active staff can run these; a customer who tries is politely refused and nothing
changes. Failed verifications are counted in the audit trail (so across workers) and
throttled per staff member.
"""

from __future__ import annotations

import datetime as dt
import secrets
from contextlib import nullcontext

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session

from bot.line import formatting as fmt
from bot.line import messages
from bot.line.context import Env, Outcome
from bot.line.messages import RenderContext
from bot.loyalty import audit
from bot.loyalty.codes import normalize_code
from bot.loyalty.coupons import CouponView, check_coupon, find_coupon, redeem_coupon
from bot.loyalty.errors import CouponAlreadyRedeemed, LoyaltyError, UnknownCode, UnknownMember
from bot.loyalty.member_data import LinkNoRecordForPhone, link_by_phone
from bot.loyalty.members import find_by_code
from bot.loyalty.purchases import (
    PurchaseResult,
    parse_amount,
    record_purchase,
    refund_order,
    same_purchase_since,
)
from bot.loyalty.staff import check_not_self
from bot.models import (
    AuditLog,
    Coupon,
    Member,
    PendingAction,
    Purchase,
    Redemption,
    Staff,
    StaffInvite,
)
from bot.outbox import enqueue

COMMANDS = {"核銷": "verify", "verify": "verify", "集點": "earn", "earn": "earn",
            "撤銷": "void", "void": "void", "員工": "join", "staff": "join",
            "綁定": "link", "link": "link"}
ENGLISH = {"verify", "earn", "void", "staff", "link"}
POSTBACKS = {"earn_confirm", "staff_help"}
FAILED_LIMIT, FAILED_WINDOW = 10, dt.timedelta(minutes=10)
VOID_WINDOW = dt.timedelta(minutes=15)
REPEAT_WINDOW = dt.timedelta(minutes=10)  # the same member and amount again: ask first
CONFIRM_WINDOW = dt.timedelta(minutes=10)


def run(session: Session, env: Env, member: Member, worker: Staff | None, command: str,
        args: list[str], lang: str) -> Outcome:
    """Run a staff command typed in `lang` (replies follow the language of the command) for
    the sender, `worker` if they are active staff."""
    if command == "join":
        return join(session, env, member, args)
    ctx = env.render(lang)
    if worker is None:
        return Outcome(messages.text(env.render(member.language), "staff_only"))
    if command == "verify":
        return verify(session, env, ctx, worker, args, member.id)
    if command == "earn":
        return earn(session, env, ctx, worker, args, member.id)
    if command == "link":
        return link(session, env, ctx, worker, args)
    return void(session, env, ctx, worker)


def find_staff(session: Session, user_id: str) -> Staff | None:
    return session.scalar(select(Staff).where(Staff.line_user_id == user_id, Staff.active))


def sender(session: Session, user_id: str) -> tuple[Member | None, Staff | None]:
    """The sender's member record and, if they are active staff, their staff record."""
    found = session.execute(_SENDER, {"user_id": user_id}).first()
    return (found[0], found[1]) if found else (None, None)


_SENDER = (  # built once (see sender)
    select(Member, Staff)
    .outerjoin(Staff, and_(Staff.line_user_id == Member.line_user_id, Staff.active))
    .where(Member.line_user_id == bindparam("user_id")))


def _actor(worker: Staff) -> str:
    return f"staff:{worker.id}"


def verify(session: Session, env: Env, ctx: RenderContext, worker: Staff, args: list[str],
           own_id: int | None) -> Outcome:
    if not args or len(args) > 2:
        return Outcome(messages.text(ctx, "verify_usage"))
    if _recent_failures(session, worker, env.now) >= FAILED_LIMIT:
        return Outcome(messages.text(ctx, "too_many_failures"))
    try:  # without an amount nothing is written before a failure: no savepoint to undo
        amount = parse_amount(args[1]) if len(args) == 2 else None
        with session.begin_nested() if amount is not None else nullcontext():
            view, result = _redeem(session, env, worker, args[0], amount, own_id)
    except LoyaltyError as exc:
        _refused(session, env, worker, "verify", exc, code=args[0][:32])
        return Outcome(messages.staff_redemption_failed(ctx, exc, _why(session, env, exc,
                                                                         args[0])))
    owner = session.get(Member, view.coupon.member_id)
    outcome = Outcome(messages.staff_redemption_ok(ctx, view, owner, amount))
    if env.program.receipts:
        customer = env.render(owner.language)
        _push(session, env, owner, "coupon_used", f"coupon-used:{view.coupon.id}",
              messages.customer_coupon_used(customer, view), outcome)
        if result is not None:
            _receipt(session, env, owner, result, outcome)
    return outcome


def _redeem(session: Session, env: Env, worker: Staff, code: str, amount: int | None,
            own_id: int | None) -> tuple[CouponView, PurchaseResult | None]:
    """Check, record the discounted purchase (with an amount), then redeem: all or nothing."""
    result = None
    if amount is None and not env.program.staff_self_service:
        check_not_self(env.program, find_coupon(session, env.program, code).coupon.member_id,
                       own_id)
    if amount is not None:
        view = check_coupon(session, env.program, code, env.now, order_amount=amount)
        check_not_self(env.program, view.coupon.member_id, own_id)
        result = record_purchase(session, env.program, view.coupon.member_id,
                                 amount - view.discount, env.now, source="line",
                                 order_id=f"verify:{env.event_id or secrets.token_hex(8)}",
                                 staff_id=worker.id, actor=_actor(worker))
    view = redeem_coupon(session, env.program, code, env.now, actor=_actor(worker),
                         order_amount=amount, staff_id=worker.id,
                         purchase_id=result.purchase.id if result else None)
    return view, result


def _why(session: Session, env: Env, exc: LoyaltyError, code: str) -> str:
    """For an already-used coupon: when and by whom, so staff can answer the customer."""
    if not isinstance(exc, CouponAlreadyRedeemed):
        return ""
    view = find_coupon(session, env.program, code)
    used = session.scalar(select(Redemption).where(Redemption.coupon_id == view.coupon.id))
    if used is None:
        return ""
    who = session.get(Staff, used.staff_id).name if used.staff_id else "—"
    when = used.redeemed_at.astimezone(env.program.timezone).strftime("%Y-%m-%d %H:%M")
    return f"{when} · {who}"


def _refused(session: Session, env: Env, worker: Staff, command: str, exc: LoyaltyError,
             **details: object) -> None:
    audit.record(session, f"staff.{command}_failed", member_id=None, actor=_actor(worker),
                 at=env.now, reason=exc.code, **details)


# refusals that say a code or phone is unknown: guessing is what the limit stops (a used
# coupon or a wrong amount is a real code, typed by a person)
GUESSES = (UnknownCode.code, UnknownMember.code, LinkNoRecordForPhone.code)
_FAILED = ("staff.verify_failed", "staff.earn_failed", "staff.link_failed")


def _recent_failures(session: Session, worker: Staff, now: dt.datetime) -> int:
    """Unknown coupon codes, member codes and phones, counted together across commands."""
    return session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action.in_(_FAILED), AuditLog.actor == _actor(worker),
        AuditLog.reason.in_(GUESSES), AuditLog.at > now - FAILED_WINDOW)) or 0


def earn(session: Session, env: Env, ctx: RenderContext, worker: Staff, args: list[str],
         own_id: int | None) -> Outcome:
    if len(args) != 2:
        return Outcome(messages.text(ctx, "earn_usage"))
    if _recent_failures(session, worker, env.now) >= FAILED_LIMIT:
        return Outcome(messages.text(ctx, "too_many_failures"))
    try:
        amount = parse_amount(args[1])
        member = find_by_code(session, args[0], lock=True)  # record_purchase would lock it
        check_not_self(env.program, member.id, own_id)
    except LoyaltyError as exc:
        _refused(session, env, worker, "earn", exc)
        return Outcome(messages.error(ctx, exc))
    limit = env.program.confirm_above
    twice = same_purchase_since(session, member.id, amount, env.now - REPEAT_WINDOW)
    if twice is not None or limit is not None and amount > limit:
        token = secrets.token_urlsafe(12)
        session.add(PendingAction(token=token, staff_id=worker.id, member_id=member.id,
                                  amount=amount, created_at=env.now,
                                  expires_at=env.now + CONFIRM_WINDOW))
        ask = messages.staff_confirm_purchase(ctx, member, amount, token)
        if twice is None:
            return Outcome(ask)
        minutes = max(1, round((env.now - twice.created_at).total_seconds() / 60))
        return Outcome(messages.text(ctx, "repeat_purchase", amount=fmt.money(ctx, amount),
                                     minutes=minutes) + ask)
    return _record(session, env, ctx, worker, member, amount, f"earn:{env.event_id}")


def _record(session: Session, env: Env, ctx: RenderContext, worker: Staff, member: Member,
            amount: int, order_id: str) -> Outcome:
    try:
        with session.begin_nested():
            result = record_purchase(session, env.program, member.id, amount, env.now,
                                     source="line", order_id=order_id, staff_id=worker.id,
                                     actor=_actor(worker))
    except LoyaltyError as exc:
        return Outcome(messages.error(ctx, exc))
    outcome = Outcome(messages.staff_purchase_recorded(ctx, member, result))
    if env.program.receipts and not result.duplicate:
        _receipt(session, env, member, result, outcome)
    return outcome


def _receipt(session: Session, env: Env, member: Member, result: PurchaseResult,
             outcome: Outcome) -> None:
    """Tell the customer what the purchase earned, with any coupons it won."""
    coupons = [find_coupon(session, env.program, c.code) for c in result.coupons]
    _push(session, env, member, "receipt", f"receipt:{result.purchase.id}",
          messages.purchase_receipt(env.render(member.language), result,
                                    member.points_balance, coupons), outcome)


def postback(session: Session, env: Env, member: Member, action: str, data: dict) -> Outcome:
    ctx = env.render(member.language)
    worker = find_staff(session, env.user_id)
    if worker is None:
        return Outcome(messages.text(ctx, "staff_only"))
    if action == "staff_help":
        topic = "earn" if data.get("topic") == "earn" else "verify"
        return Outcome(messages.text(ctx, f"staff_help_{topic}"))
    pending = session.scalar(select(PendingAction).where(
        PendingAction.token == data.get("token", ""), PendingAction.staff_id == worker.id)
        .with_for_update())
    if pending is None or pending.status != "pending" or pending.expires_at <= env.now:
        return Outcome(messages.text(ctx, "confirm_expired"))
    pending.status = "done"
    target = session.get(Member, pending.member_id)
    return _record(session, env, ctx, worker, target, pending.amount,
                   f"confirm:{pending.token}")


def void(session: Session, env: Env, ctx: RenderContext, worker: Staff) -> Outcome:
    """Undo this staff member's last purchase or redemption, if it is recent."""
    since = env.now - VOID_WINDOW
    purchase = session.scalar(select(Purchase).where(
        Purchase.staff_id == worker.id, Purchase.created_at > since,
        Purchase.refunded_amount == 0).order_by(Purchase.created_at.desc(), Purchase.id.desc()))
    redemption = session.scalar(select(Redemption).where(
        Redemption.staff_id == worker.id, Redemption.redeemed_at > since)
        .order_by(Redemption.redeemed_at.desc(), Redemption.id.desc()))
    if redemption and (purchase is None or redemption.redeemed_at >= purchase.created_at):
        _unredeem(session, env, worker, redemption)
        purchase = session.get(Purchase, redemption.purchase_id) if redemption.purchase_id \
            else None
        if purchase is None:
            return Outcome(messages.text(ctx, "voided_redemption"))
    if purchase is None:
        return Outcome(messages.text(ctx, "nothing_to_void"))
    refund_order(session, env.program, purchase.amount, env.now, source=purchase.source,
                 order_id=purchase.external_order_id, refund_id=f"void:{purchase.id}",
                 actor=_actor(worker))
    return Outcome(messages.text(ctx, "voided_purchase", amount=purchase.amount))


def _unredeem(session: Session, env: Env, worker: Staff, redemption: Redemption) -> None:
    coupon = session.get(Coupon, redemption.coupon_id)
    coupon.status, coupon.redeemed_at = "issued", None
    audit.record(session, "coupon.void_redemption", member_id=coupon.member_id,
                 actor=_actor(worker), at=env.now, coupon_id=coupon.id,
                 redeemed_at=redemption.redeemed_at.isoformat())
    session.delete(redemption)
    session.flush()


def link(session: Session, env: Env, ctx: RenderContext, worker: Staff, args: list[str]
         ) -> Outcome:
    """`綁定 MEMBERCODE PHONE`: after checking the person, merge the POS record imported with
    that phone into the LINE member whose card shows MEMBERCODE, once."""
    if len(args) < 2:
        return Outcome(messages.text(ctx, "link_usage"))
    if _recent_failures(session, worker, env.now) >= FAILED_LIMIT:
        return Outcome(messages.text(ctx, "too_many_failures"))
    try:
        with session.begin_nested():
            result = link_by_phone(session, env.program, args[0], "".join(args[1:]), env.now,
                                   actor=_actor(worker))
    except LoyaltyError as exc:
        _refused(session, env, worker, "link", exc)
        return Outcome(messages.error(ctx, exc))
    customer = result.member
    outcome = Outcome(messages.text(ctx, "link_done", name=customer.display_name or "—",
                                    points=result.points, purchases=result.purchases,
                                    coupons=result.coupons))
    _push(session, env, customer, "receipt", f"link:{result.record.id}",
          messages.text(env.render(customer.language), "linked",
                        points=result.points, balance=customer.points_balance), outcome)
    return outcome


def join(session: Session, env: Env, member: Member, args: list[str]) -> Outcome:
    """A new staff member sends the one-time invite code the owner created."""
    ctx = env.render(member.language)
    code = (normalize_code(args[0]) if args else None) or ""
    invite = session.scalar(select(StaffInvite).where(
        StaffInvite.code == code, StaffInvite.used_by.is_(None),
        StaffInvite.expires_at > env.now).with_for_update())
    if invite is None:
        return Outcome(messages.text(ctx, "invite_invalid"))
    invite.used_by, invite.used_at = env.user_id, env.now
    worker = session.scalar(select(Staff).where(Staff.line_user_id == env.user_id))
    if worker is None:
        worker = Staff(line_user_id=env.user_id, name=invite.name or member.display_name,
                       created_at=env.now)
        session.add(worker)
    worker.active = True
    audit.record(session, "staff.join", member_id=member.id, actor=env.user_id, at=env.now)
    return Outcome(messages.text(ctx, "staff_welcome", name=worker.name))


def _push(session: Session, env: Env, member: Member, kind: str, key: str,
          payload: list[dict], outcome: Outcome) -> None:
    row = enqueue(session, member, kind, key, payload, env.now)
    if row is not None:
        outcome.outbox_ids.append(row.id)
