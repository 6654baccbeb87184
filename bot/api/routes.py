"""The API's endpoints: each finds what it needs, calls the loyalty core, shows the result."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, current_app, request

from bot.api import ApiError, Call, bp, endpoint, views
from bot.api.openapi import document
from bot.line import messages
from bot.loyalty import segments
from bot.loyalty.claims import cancel_claim, claim_view, make_claim
from bot.loyalty.coupons import (
    CouponView,
    check_coupon,
    coupon_view,
    issue_coupon,
    owner_of,
    redeem_coupon,
)
from bot.loyalty.errors import UnknownOrder
from bot.loyalty.members import find_by_code, find_by_line_user
from bot.loyalty.phones import find_by_phone
from bot.loyalty.purchases import find_purchase, record_purchase, refund_order
from bot.loyalty.report import build_report, report_period
from bot.loyalty.rewards import redeem_reward
from bot.loyalty.summary import member_summary
from bot.models import Member
from bot.outbox import coupon_used_key, receipt_key, withdraw

DEFAULT_SOURCE = "api"


def find_member(call: Call, ref: dict[str, str]) -> Member:
    """By exactly one of member_code, line_user_id, phone (the schema ensures one)."""
    if "member_code" in ref:
        return find_by_code(call.session, ref["member_code"])
    if "line_user_id" in ref:
        return find_by_line_user(call.session, ref["line_user_id"])
    return find_by_phone(call.session, ref["phone"])


def _view(call: Call, coupon) -> CouponView:
    return coupon_view(call.session, call.program, coupon)


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return current_app.json.response(document())


@bp.post("/purchases")
@endpoint("purchases:write", body="PurchaseRequest", idempotent=True)
def purchase(call: Call) -> tuple[int, Any]:
    body = call.body
    owner = find_member(call, body["member"])
    result = record_purchase(call.session, call.program, owner.id, body["amount"], call.now,
                             source=body.get("source", DEFAULT_SOURCE), order_id=body["order_id"],
                             categories=body.get("categories"), actor=call.actor)
    won = [_view(call, c) for c in result.coupons]
    if not result.duplicate:
        views.notify(call.session, call.state, owner, "receipt",
                     receipt_key(result.purchase.id),
                     lambda ctx: messages.purchase_receipt(ctx, result, owner.points_balance,
                                                           won), call.now)
    p = result.purchase
    return (200 if result.duplicate else 201), {
        "purchase_id": p.id, "order_id": p.external_order_id, "source": p.source,
        "member_code": owner.member_code, "amount": p.amount, "points_earned": result.points,
        "stamps_earned": result.stamps, "coupons_issued": [views.coupon(v) for v in won],
        "balance": owner.points_balance, "tier": owner.tier, "duplicate": result.duplicate}


@bp.post("/claims")
@endpoint("purchases:write", body="ClaimRequest", idempotent=True)
def make_claim_code(call: Call) -> tuple[int, Any]:
    body = call.body
    view = make_claim(call.session, call.program, body["amount"], call.now,
                      source=body.get("source", DEFAULT_SOURCE), order_id=body["order_id"],
                      categories=body.get("categories"), actor=call.actor,
                      api_token_id=call.token.id)
    return (200 if view.duplicate else 201), views.claim(call.state, view)


@bp.get("/claims/<code>")
@endpoint("purchases:write")
def claim_state(call: Call, code: str) -> tuple[int, Any]:
    return 200, views.claim(call.state, claim_view(call.session, code, call.now))


@bp.post("/claims/<code>/cancel")
@endpoint("purchases:write", idempotent=True)
def cancel_claim_code(call: Call, code: str) -> tuple[int, Any]:
    view = cancel_claim(call.session, call.program, code, call.now, actor=call.actor)
    for coupon_id in view.coupons_back:
        withdraw(call.session, coupon_used_key(coupon_id))
    return 200, views.claim(call.state, view)


@bp.post("/refunds")
@endpoint("purchases:write", body="RefundRequest", idempotent=True)
def refund(call: Call) -> tuple[int, Any]:
    body = call.body
    result = refund_order(call.session, call.program, body["amount"], call.now,
                          source=body.get("source", DEFAULT_SOURCE), order_id=body["order_id"],
                          refund_id=body["refund_id"], actor=call.actor)
    r = result.refund
    return (200 if result.duplicate else 201), {
        "refund_id": r.refund_id, "order_id": body["order_id"], "amount": r.amount,
        "points_reversed": r.points_reversed, "points_unrecovered": r.points_unrecovered,
        "stamps_reversed": r.stamps_reversed, "stamps_unrecovered": r.stamps_unrecovered,
        "duplicate": result.duplicate}


@bp.get("/members/<member_code>")
@endpoint("members:read")
def by_code(call: Call, member_code: str) -> tuple[int, Any]:
    return 200, views.member(find_member(call, {"member_code": member_code}))


@bp.get("/members/by-line-user/<line_user_id>")
@endpoint("members:read")
def by_line_user(call: Call, line_user_id: str) -> tuple[int, Any]:
    return 200, views.member(find_member(call, {"line_user_id": line_user_id}))


@bp.get("/members/by-phone/<phone>")
@endpoint("members:read")
def by_phone(call: Call, phone: str) -> tuple[int, Any]:
    return 200, views.member(find_member(call, {"phone": phone}))


@bp.get("/members/<member_code>/summary")
@endpoint("members:read")
def summary(call: Call, member_code: str) -> tuple[int, Any]:
    owner = find_by_code(call.session, member_code)
    return 200, views.summary(member_summary(call.session, call.program, owner, call.now))


@bp.post("/members/<member_code>/rewards")
@endpoint("points:redeem", body="RewardRequest", idempotent=True)
def reward(call: Call, member_code: str) -> tuple[int, Any]:
    owner = find_by_code(call.session, member_code)
    coupon = redeem_reward(call.session, call.program, owner.id, call.body["reward"],
                           call.now, actor=call.actor, shown_points=call.body.get("points"))
    return 201, {"coupon": views.coupon(_view(call, coupon), owner),
                 "balance": owner.points_balance}


@bp.post("/members/<member_code>/coupons")
@endpoint("coupons:issue", body="IssueRequest", idempotent=True)
def issue(call: Call, member_code: str) -> tuple[int, Any]:
    owner = find_by_code(call.session, member_code)
    template = call.body["template"]
    if template not in call.program.coupons:
        raise ApiError(404, "unknown_template", f"the program has no coupon template "
                                                f"{template!r}; it has: "
                                                f"{', '.join(call.program.coupons)}")
    coupon = issue_coupon(call.session, call.program, owner.id, template, call.now,
                          reason="api", actor=call.actor)
    return 201, views.coupon(_view(call, coupon), owner)


@bp.post("/members/<member_code>/tags")
@endpoint("members:write", body="TagRequest")
def tag(call: Call, member_code: str) -> tuple[int, Any]:
    owner = find_by_code(call.session, member_code)
    segments.add_tag(call.session, owner, call.body["tag"], call.now, actor=call.actor)
    return 200, {"member_code": owner.member_code,
                 "tags": segments.member_tags(call.session, owner.id)}


@bp.delete("/members/<member_code>/tags/<tag>")
@endpoint("members:write")
def untag(call: Call, member_code: str, tag: str) -> tuple[int, Any]:
    owner = find_by_code(call.session, member_code)
    segments.remove_tag(call.session, owner, tag, call.now, actor=call.actor)
    return 200, {"member_code": owner.member_code,
                 "tags": segments.member_tags(call.session, owner.id)}


@bp.post("/coupons/validate")
@endpoint("coupons:redeem", body="CouponCheckRequest")
def validate(call: Call) -> tuple[int, Any]:
    body = call.body
    member_id = find_by_code(call.session, body["member_code"]).id \
        if "member_code" in body else None
    view = check_coupon(call.session, call.program, body["code"], call.now,
                        member_id=member_id, order_amount=body.get("order_amount"))
    return 200, {"valid": True, "discount": view.discount,
                 "coupon": views.coupon(view, owner_of(call.session, view))}


@bp.post("/coupons/redeem")
@endpoint("coupons:redeem", body="CouponRedeemRequest", idempotent=True)
def redeem(call: Call) -> tuple[int, Any]:
    body, purchase = call.body, None
    member_id = find_by_code(call.session, body["member_code"]).id \
        if "member_code" in body else None
    if "order_id" in body:
        purchase = find_purchase(call.session, body.get("source", DEFAULT_SOURCE),
                                 body["order_id"])
        if purchase is None:
            raise UnknownOrder()
        member_id = purchase.member_id if member_id is None else member_id
    view = redeem_coupon(call.session, call.program, body["code"], call.now, actor=call.actor,
                         member_id=member_id, order_amount=body.get("order_amount"),
                         purchase_id=purchase.id if purchase else None, channel="api")
    owner = owner_of(call.session, view)
    views.notify(call.session, call.state, owner, "coupon_used",
                 coupon_used_key(view.coupon.id),
                 lambda ctx: messages.customer_coupon_used(ctx, view), call.now)
    return 200, {"coupon": views.coupon(view, owner), "discount": view.discount,
                 "purchase_id": purchase.id if purchase else None,
                 "redeemed_at": views.iso(view.coupon.redeemed_at)}



@bp.get("/reports/summary")
@endpoint("reports:read")
def report(call: Call) -> tuple[int, Any]:
    try:
        days = [dt.date.fromisoformat(request.args[k]) if request.args.get(k) else None
                for k in ("from", "to")]
        start, end = report_period(call.program, days[0], days[1], call.now)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"from and to are dates like 2026-11-01: {exc}"
                       ) from None
    return 200, build_report(call.session, call.program, start, end, call.now,
                             quota=call.program.allowance).to_dict()
