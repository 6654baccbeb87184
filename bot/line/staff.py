"""Staff by chat: verify coupons, record purchases, void the last action, join with an invite.

Only active staff can run these; a customer who tries is politely refused and nothing
changes. Failed verifications are counted in the audit trail (so across workers) and
throttled per staff member.
"""

from __future__ import annotations

import secrets
from contextlib import nullcontext
from functools import partial

from sqlalchemy.orm import Session

from bot.line import formatting as fmt
from bot.line import messages
from bot.line.context import Env, Outcome
from bot.line.flex import clip
from bot.line.limits import MAX_TEXT
from bot.line.messages import RenderContext
from bot.loyalty.alerts import link_chat
from bot.loyalty.claims import ClaimView, cancel_claim, claim_view, make_claim
from bot.loyalty.codes import format_code, normalize_code
from bot.loyalty.coupons import (
    CouponView,
    check_coupon,
    find_coupon,
    owner_of,
    redeem_coupon,
)
from bot.loyalty.errors import AmountMissing, ClaimsOff, CouponAlreadyRedeemed, LoyaltyError
from bot.loyalty.linking import link_by_phone
from bot.loyalty.members import find_by_code, member_by_id
from bot.loyalty.purchases import (
    PurchaseResult,
    parse_amount,
    record_purchase,
    same_purchase_since,
)
from bot.loyalty.staff import (
    REPEAT_WINDOW,
    actor,
    ask_confirmation,
    check_not_self,
    find_active_staff,
    guessing,
    join_with_invite,
    record_refusal,
    take_confirmation,
    void_last,
    who_redeemed,
)
from bot.models import (
    Member,
    Staff,
)
from bot.outbox import coupon_used_key, linked_key, receipt_key, tell, tell_later, withdraw

COMMANDS = {"核銷": "verify", "verify": "verify", "集點": "earn", "earn": "earn",
            "撤銷": "void", "void": "void", "員工": "join", "staff": "join",
            "綁定": "link", "link": "link", "領取查詢": "claimed", "claimed": "claimed",
            "取消領取": "unclaim", "unclaim": "unclaim", "店主": "owner", "owner": "owner"}
ENGLISH = {"verify", "earn", "void", "staff", "link", "claimed", "unclaim", "owner"}
POSTBACKS = {"earn_confirm", "staff_help"}


def meant(command: str, args: list[str]) -> bool:
    """店主 / owner is a command only with a code after it: a customer may write the word."""
    return command != "owner" or normalize_code("".join(args)) is not None


def run(session: Session, env: Env, member: Member, worker: Staff | None, command: str,
        args: list[str], lang: str) -> Outcome:
    """Run a staff command typed in `lang` (replies follow the language of the command) for
    the sender, `worker` if they are active staff."""
    if command == "join":
        return join(session, env, member, args)
    if command == "owner":  # the console's link code: the owner's alerts come to this chat
        linked = link_chat(session, "".join(args), member, env.now)
        return Outcome(messages.text(env.render(lang),
                                     "owner_linked" if linked else "owner_link_invalid"))
    ctx = env.render(lang)
    if worker is None:
        return Outcome(messages.text(env.render(member.language), "staff_only"))
    if command == "verify":
        outcome = verify(session, env, ctx, worker, args, member.id)
    elif command == "earn":
        outcome = earn(session, env, ctx, worker, args, member.id)
    elif command == "link":
        outcome = link(session, env, ctx, worker, args)
    elif command in ("claimed", "unclaim"):
        outcome = claim_command(session, env, ctx, worker, command, args)
    else:
        outcome = void(session, env, ctx, worker)
    return Outcome(staff_marked(ctx, outcome.messages()))


def staff_marked(ctx: RenderContext, replies: list[dict]) -> list[dict]:
    """A staff member's text answers say they are staff answers: a staff member is also a
    customer in the same chat, and their own customer messages must not be mistaken for
    them (the staff cards say so in their dark headers)."""
    mark = ctx.strings("staff.mark")
    return [{**m, "text": clip(f"{mark}{m['text']}", MAX_TEXT)}
            if m.get("type") == "text" and not m["text"].startswith(mark) else m
            for m in replies]


def verify(session: Session, env: Env, ctx: RenderContext, worker: Staff, args: list[str],
           own_id: int | None) -> Outcome:
    if not args or len(args) > 2:
        return Outcome(messages.text(ctx, "verify_usage"))
    if guessing(session, worker, env.now):
        return Outcome(messages.text(ctx, "too_many_failures"))
    try:  # without an amount nothing is written before a failure: no savepoint to undo
        amount = parse_amount(args[1]) if len(args) == 2 else None
        with session.begin_nested() if amount is not None else nullcontext():
            view, result, claim = _redeem(session, env, worker, args[0], amount, own_id)
    except LoyaltyError as exc:
        _refused(session, env, worker, "verify", exc, code=args[0][:32])
        return Outcome(messages.staff_redemption_failed(ctx, exc, _why(session, env, exc,
                                                                         args[0])))
    owner = owner_of(session, view)
    used = partial(messages.customer_coupon_used, env.render(owner.language), view)
    if claim is not None:  # the customer scans the code now: the news rides that reply
        tell_later(session, env.program, owner, "coupon_used", coupon_used_key(view.coupon.id),
                   used, env.now, until=claim.claim.expires_at)
        return Outcome(messages.staff_redemption_ok(ctx, view, owner, amount)
                       + messages.staff_claim_code(ctx, claim))
    tell(session, env.program, owner, "coupon_used", coupon_used_key(view.coupon.id), used,
         env.now)
    if result is not None:
        _receipt(session, env, owner, result)
    return Outcome(messages.staff_redemption_ok(ctx, view, owner, amount))


def _redeem(session: Session, env: Env, worker: Staff, code: str, amount: int | None,
            own_id: int | None
            ) -> tuple[CouponView, PurchaseResult | None, ClaimView | None]:
    """Check, record the discounted purchase (with an amount), then redeem: all or nothing.
    With claim codes on, the purchase waits for the coupon's owner to scan its code."""
    result, claim, purchase_id, found = None, None, None, None
    if amount is None and not env.program.staff_self_service:
        found = find_coupon(session, env.program, code)
        check_not_self(env.program, found.coupon.member_id, own_id)
    if amount is not None:
        view = check_coupon(session, env.program, code, env.now, order_amount=amount)
        check_not_self(env.program, view.coupon.member_id, own_id)
        order_id = f"verify:{env.event_id or secrets.token_hex(8)}"
        owner = owner_of(session, view)  # an imported member without LINE takes no code
        if env.program.claims.enabled and amount > view.discount and owner.line_user_id:
            claim = make_claim(session, env.program, amount - view.discount, env.now,
                               source="line", order_id=order_id, actor=actor(worker),
                               staff_id=worker.id, reserved_for=view.coupon.member_id)
            purchase_id = claim.purchase.id
        else:
            result = record_purchase(session, env.program, view.coupon.member_id,
                                     amount - view.discount, env.now, source="line",
                                     order_id=order_id, staff_id=worker.id,
                                     actor=actor(worker))
            purchase_id = result.purchase.id
    view = redeem_coupon(session, env.program, code, env.now, actor=actor(worker),
                         order_amount=amount, staff_id=worker.id, purchase_id=purchase_id,
                         found=found)
    return view, result, claim


def _why(session: Session, env: Env, exc: LoyaltyError, code: str) -> str:
    """For an already-used coupon: when and by whom, so staff can answer the customer."""
    if not isinstance(exc, CouponAlreadyRedeemed):
        return ""
    used = who_redeemed(session, env.program, code)
    if used is None:
        return ""
    when, who = used
    return f"{fmt.datetime_text(when.astimezone(env.program.timezone))} · {who or '—'}"


def _refused(session: Session, env: Env, worker: Staff, command: str, exc: LoyaltyError,
             **details: object) -> None:
    record_refusal(session, worker, command, exc, env.now, **details)


def earn(session: Session, env: Env, ctx: RenderContext, worker: Staff, args: list[str],
         own_id: int | None) -> Outcome:
    """`集點 MEMBERCODE AMOUNT` records for that member; `集點 AMOUNT` makes a claim code
    the customer scans (with claim codes on). A member code is never read as an amount."""
    args = join_currency(args)
    if not args or len(args) > 2:
        return Outcome(messages.text(ctx, "earn_usage"))
    if guessing(session, worker, env.now):
        return Outcome(messages.text(ctx, "too_many_failures"))
    try:
        if len(args) == 1:
            if normalize_code(args[0]) is not None:
                raise AmountMissing(code=format_code(normalize_code(args[0])))
            return _claim(session, env, ctx, worker, parse_amount(args[0]))
        amount = parse_amount(args[1])
        member = find_by_code(session, args[0], lock=True)  # record_purchase would lock it
        check_not_self(env.program, member.id, own_id)
    except LoyaltyError as exc:
        _refused(session, env, worker, "earn", exc)
        return Outcome(messages.error(ctx, exc))
    limit = env.program.confirm_above
    twice = same_purchase_since(session, member.id, amount, env.now - REPEAT_WINDOW)
    if twice is not None or limit is not None and amount > limit:
        token = ask_confirmation(session, worker, member, amount, env.now)
        ask = messages.staff_confirm_purchase(ctx, member, amount, token)
        if twice is None:
            return Outcome(ask)
        minutes = max(1, round((env.now - twice).total_seconds() / 60))
        return Outcome(messages.text(ctx, "repeat_purchase", amount=fmt.money(ctx, amount),
                                     minutes=minutes) + ask)
    return _record(session, env, ctx, worker, member, amount, f"earn:{env.event_id}")


def join_currency(args: list[str]) -> list[str]:
    """`100 元` typed with a space is one amount, as `100元` is."""
    if len(args) >= 2 and args[-1] in ("元", "塊"):
        return [*args[:-2], args[-2] + args[-1]]
    return args


def _claim(session: Session, env: Env, ctx: RenderContext, worker: Staff, amount: int,
           order_id: str | None = None) -> Outcome:
    """A claim code for `amount` (asked to confirm first above the program's limit)."""
    if not env.program.claims.enabled:
        raise ClaimsOff()
    limit = env.program.confirm_above
    if order_id is None and limit is not None and amount > limit:
        token = ask_confirmation(session, worker, None, amount, env.now)
        return Outcome(messages.staff_confirm_purchase(ctx, None, amount, token))
    with session.begin_nested():
        view = make_claim(session, env.program, amount, env.now, source="line",
                          order_id=order_id or f"claim:{env.event_id}", actor=actor(worker),
                          staff_id=worker.id)
    return Outcome(messages.staff_claim_code(ctx, view))


def claim_command(session: Session, env: Env, ctx: RenderContext, worker: Staff, command: str,
                  args: list[str]) -> Outcome:
    """`領取查詢 CODE`: who took a claim code; `取消領取 CODE`: cancel one nobody took."""
    if not args:
        return Outcome(messages.text(ctx, "claim_query_usage" if command == "claimed"
                                     else "claim_cancel_usage"))
    if guessing(session, worker, env.now):
        return Outcome(messages.text(ctx, "too_many_failures"))
    try:
        if command == "claimed":
            return Outcome(messages.staff_claim_status(ctx, claim_view(session, "".join(args),
                                                                       env.now)))
        with session.begin_nested():
            view = cancel_claim(session, env.program, "".join(args), env.now,
                                actor=actor(worker))
    except LoyaltyError as exc:
        _refused(session, env, worker, "claim", exc)
        return Outcome(messages.error(ctx, exc))
    for coupon_id in view.coupons_back:
        withdraw(session, coupon_used_key(coupon_id))
    return Outcome(messages.text(ctx, "claim_cancelled", code=format_code(view.claim.code),
                                 amount=fmt.money(ctx, view.purchase.amount)))


def _record(session: Session, env: Env, ctx: RenderContext, worker: Staff, member: Member,
            amount: int, order_id: str) -> Outcome:
    try:
        with session.begin_nested():
            result = record_purchase(session, env.program, member.id, amount, env.now,
                                     source="line", order_id=order_id, staff_id=worker.id,
                                     actor=actor(worker))
    except LoyaltyError as exc:
        return Outcome(messages.error(ctx, exc))
    if not result.duplicate:
        _receipt(session, env, member, result)
    return Outcome(messages.staff_purchase_recorded(ctx, member, result))


def _receipt(session: Session, env: Env, member: Member, result: PurchaseResult) -> None:
    """Tell the customer what the purchase earned, with any coupons it won."""
    def build() -> list[dict]:
        coupons = [find_coupon(session, env.program, c.code) for c in result.coupons]
        return messages.purchase_receipt(env.render(member.language), result,
                                         member.points_balance, coupons)
    tell(session, env.program, member, "receipt", receipt_key(result.purchase.id), build,
         env.now)


def postback(session: Session, env: Env, member: Member, action: str, data: dict) -> Outcome:
    ctx = env.render(member.language)
    worker = find_active_staff(session, env.user_id)
    if worker is None:
        return Outcome(messages.text(ctx, "staff_only"))
    if action == "staff_help":
        topic = "earn" if data.get("topic") == "earn" else "verify"
        return Outcome(messages.text(ctx, f"staff_help_{topic}"))
    pending = take_confirmation(session, worker, str(data.get("token", "")), env.now)
    if pending is None:
        return Outcome(messages.text(ctx, "confirm_expired"))
    if pending.member_id is None:  # a claim code's amount, confirmed
        try:
            return _claim(session, env, ctx, worker, pending.amount, f"confirm:{pending.token}")
        except LoyaltyError as exc:
            return Outcome(messages.error(ctx, exc))
    target = member_by_id(session, pending.member_id)
    return _record(session, env, ctx, worker, target, pending.amount,
                   f"confirm:{pending.token}")


def void(session: Session, env: Env, ctx: RenderContext, worker: Staff) -> Outcome:
    """Undo this staff member's last purchase or redemption, if it is recent."""
    try:
        with session.begin_nested():
            undone = void_last(session, env.program, worker, env.now)
    except LoyaltyError as exc:
        return Outcome(messages.error(ctx, exc))
    if undone is None:
        return Outcome(messages.text(ctx, "nothing_to_void"))
    if undone.coupon_id is not None:  # "coupon used" still waiting for its claim: not so
        withdraw(session, coupon_used_key(undone.coupon_id))
    if undone.purchase_amount is None:
        return Outcome(messages.text(ctx, "voided_redemption"))
    return Outcome(messages.text(ctx, "voided_purchase", amount=undone.purchase_amount))


def link(session: Session, env: Env, ctx: RenderContext, worker: Staff, args: list[str]
         ) -> Outcome:
    """`綁定 MEMBERCODE PHONE`: after checking the person, merge the POS record imported with
    that phone into the LINE member whose card shows MEMBERCODE, once."""
    if len(args) < 2:
        return Outcome(messages.text(ctx, "link_usage"))
    if guessing(session, worker, env.now):
        return Outcome(messages.text(ctx, "too_many_failures"))
    try:
        with session.begin_nested():
            result = link_by_phone(session, env.program, args[0], "".join(args[1:]), env.now,
                                   actor=actor(worker))
    except LoyaltyError as exc:
        _refused(session, env, worker, "link", exc)
        return Outcome(messages.error(ctx, exc))
    customer = result.member
    tell(session, env.program, customer, "receipt", linked_key(result.record.id),
         lambda: messages.text(env.render(customer.language), "linked", points=result.points,
                               balance=customer.points_balance), env.now)
    return Outcome(messages.text(ctx, "link_done", name=customer.display_name or "—",
                                 points=result.points, purchases=result.purchases,
                                 coupons=result.coupons))


def join(session: Session, env: Env, member: Member, args: list[str]) -> Outcome:
    """A new staff member sends the one-time invite code the owner created."""
    ctx = env.render(member.language)
    worker = join_with_invite(session, args[0] if args else "", env.user_id, member, env.now)
    if worker is None:
        return Outcome(messages.text(ctx, "invite_invalid"))
    return Outcome(messages.text(ctx, "staff_welcome", name=worker.name))
