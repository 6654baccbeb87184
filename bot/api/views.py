"""How the API shows domain objects as JSON, and tells customers in LINE what happened."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from bot.bootstrap import Runtime
from bot.line.formatting import RenderContext
from bot.line.qr import claim_payload, qr_url
from bot.loyalty.claims import ClaimView
from bot.loyalty.codes import format_code
from bot.loyalty.coupons import CouponView
from bot.loyalty.summary import MemberSummary
from bot.models import Member
from bot.outbox import Queued, deliver_queued, tell

log = logging.getLogger("bot.api")


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def member(m: Member) -> dict[str, Any]:
    return {"member_code": m.member_code, "display_name": m.display_name, "tier": m.tier,
            "status": m.status, "points_balance": m.points_balance,
            "line_linked": m.line_user_id is not None, "phone": m.phone,
            "external_id": m.external_id,
            "birthday": m.birthday.isoformat() if m.birthday else None,
            "joined_at": iso(m.joined_at)}


def coupon(view: CouponView, owner: Member | None = None) -> dict[str, Any]:
    c, t = view.coupon, view.template
    shown = {"code": c.code, "template": t.key, "title": t.title, "kind": t.kind,
             "status": c.status, "valid_from": iso(c.valid_from),
             "valid_until": iso(c.valid_until), "min_spend": t.min_spend}
    if owner is not None:
        shown["member_code"] = owner.member_code
    return shown


def summary(s: MemberSummary) -> dict[str, Any]:
    return {"member": member(s.member), "balance": s.balance,
            "expiring": [{"date": e.date.isoformat(), "points": e.points} for e in s.expiring],
            "tier": s.tier.key, "next_tier": s.next_tier.key if s.next_tier else None,
            "spend": s.spend, "spend_to_next": s.spend_to_next, "stamps": s.stamps,
            "stamp_goal": s.stamp_goal, "stamps_to_next_reward": s.stamps_to_next_reward,
            "coupons": [coupon(v) for v in s.wallet]}


def claim(state: Runtime, view: ClaimView) -> dict[str, Any]:
    c, p, config = view.claim, view.purchase, state.config
    link = claim_payload(config.line_oa_basic_id, format_code(c.code))
    return {"code": format_code(c.code), "status": view.status, "order_id": p.external_order_id,
            "source": p.source, "amount": p.amount, "expires_at": iso(c.expires_at),
            "claim_url": link, "qr_png": qr_url(config.secret_key, config.public_base_url, link),
            "member_code": view.claimed_by.member_code if view.claimed_by else None,
            "claimed_at": iso(c.claimed_at), "duplicate": view.duplicate}


def notify(session: Session, state: Runtime, owner: Member, kind: str, key: str,
           build: Callable[[RenderContext], list[dict]], now: dt.datetime) -> None:
    """Tell the customer about the call's change (a receipt, a redemption)."""
    tell(session, state.program, owner, kind, key,
         lambda: build(state.render(owner.language)), now)


def deliver_after_commit(state: Runtime, rows: list[Queued], now: dt.datetime) -> None:
    """Push what the call queued right away when LINE is set up; otherwise, or if this
    fails, the clock's sender will."""
    if not rows or not state.config.line_configured:
        return
    try:
        deliver_queued(state.sessions, state.line, rows, now)
    except Exception:  # the change is committed; the sender retries the push later
        log.exception("push after an API call failed; the sender will retry")
