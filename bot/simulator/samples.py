"""Sample data for every message: the simulator's template gallery and the message tests.

Each builder makes the domain objects a message function takes (a member, a coupon, a
summary, a purchase) without a database; `flex_samples` renders every Flex template once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from bot.line import formatting as fmt
from bot.line import messages as m
from bot.line.formatting import RenderContext
from bot.line.qr import qr_url
from bot.loyalty.claims import ClaimView
from bot.loyalty.codes import ALPHABET
from bot.loyalty.coupons import CouponView
from bot.loyalty.errors import CouponAlreadyRedeemed
from bot.loyalty.purchases import PurchaseResult
from bot.loyalty.summary import Expiring, MemberSummary
from bot.loyalty.tiers import TierChange, next_tier
from bot.models import Claim, Coupon, Member, Purchase
from bot.program import Change, Program

NOW = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 22)
Samples = Iterator[tuple[str, list[dict]]]
Makers = Iterator[tuple[str, Callable[[], list[dict]]]]


def code(n: int) -> str:
    return "".join(ALPHABET[(n * 7 + i * 3) % len(ALPHABET)] for i in range(9))


def member(name: str = "小美", tier: str = "silver") -> Member:
    return Member(id=7, line_user_id="U7", member_code=code(999), display_name=name,
                  language="zh-TW", tier=tier, tier_since=NOW, status="active",
                  points_balance=1234, joined_at=NOW, last_activity_at=NOW)


def view(program: Program, key: str = "welcome", n: int = 1, title: str | None = None,
         title_en: str | None = None, days: int = 30, **coupon: Any) -> CouponView:
    template = program.coupons.get(key) or next(iter(program.coupons.values()))
    if title:
        template = dataclasses.replace(template, title=title, title_en=title_en or title,
                                       gift=title, gift_en=title_en or title)
    row = Coupon(id=n, code=code(n), template_id=1, member_id=7, valid_from=NOW,
                 valid_until=NOW + dt.timedelta(days=days), issued_at=NOW, reason="test",
                 **{"status": "issued", **coupon})
    return CouponView(row, template, 0)


def summary(program: Program, who: Member, *, balance: int = 1234, spend: int = 8000,
            stamps: int = 3, goal: int = 10, to_next: int = 2, lots: int = 2,
            wallet: list[CouponView] = ()) -> MemberSummary:
    tier = program.tier(who.tier)
    upcoming = next_tier(program, tier)
    return MemberSummary(
        member=who, balance=balance, tier=tier, next_tier=upcoming, spend=spend,
        expiring=[Expiring(TODAY + dt.timedelta(days=i), 10 + i) for i in range(lots)],
        spend_to_next=max(0, upcoming.threshold - spend) if upcoming else None,
        stamps=stamps, stamp_goal=goal, stamps_to_next_reward=to_next, wallet=list(wallet),
        stamps_until=TODAY + dt.timedelta(days=300))


def purchase(program: Program, coupons: int = 1, tier_up: bool = True) -> PurchaseResult:
    row = Purchase(id=3, member_id=7, source="line", external_order_id="o-3", amount=3500,
                   points_earned=116, stamps_earned=1, created_at=NOW)
    change = TierChange(program.tier("silver"), program.tier("gold")) if tier_up else None
    won = [view(program, "free_drink", n).coupon for n in range(coupons)]
    return PurchaseResult(row, 116, 1, won, change)


def context(program: Program, lang: str, qr: Callable[[str], str] | None = None
            ) -> RenderContext:
    """Render in `lang`; QR images from `qr` (payload -> URL), else from a sample address."""
    return RenderContext(program=program, lang=lang, oa_basic_id="@mountainmist",
                         qr_url=qr or partial(qr_url, "sample-key", "https://cafe.example"))


def announcing(ctx: RenderContext) -> RenderContext:
    """The program as it is while a saved version that takes something away waits out the
    notice period: a dearer first reward, points that expire sooner."""
    program = ctx.program
    coming = [Change("expiry_shorter", "", program.expiry_months,
                     max(1, program.expiry_months // 2))]
    if program.rewards:
        first = program.rewards[0]
        coming.append(Change("reward_price", first.coupon, first.points, first.points + 20))
    return dataclasses.replace(ctx, program=dataclasses.replace(
        program, coming=tuple(coming), coming_at=NOW + dt.timedelta(days=30)))


def sample_makers(program: Program, ctx: RenderContext) -> Makers:
    """(name, make) for every Flex template, some twice (with and without a gift ...).

    The coupon keys are the example program's; another program's first coupon stands in for
    a key it does not have, so the gallery works for any shop."""
    who = member()
    coupon = view(program)
    used = view(program, "pct10", 2, redeemed_at=NOW, status="redeemed")
    rewards = program.rewards

    def title(key: str) -> str:  # in the gallery's language, like the jobs pass it
        return fmt.title(ctx, program.coupons.get(key) or next(iter(program.coupons.values())))
    yield "welcome", lambda: m.welcome(ctx, who, coupon)
    yield "welcome without gift or name", lambda: m.welcome(ctx, member(""), None)
    yield "points_card", lambda: m.points_card(ctx, summary(program, who))
    yield "points_card changes coming", lambda: m.points_card(
        announcing(ctx), summary(program, who))
    yield "stamp_card", lambda: m.stamp_card(ctx, summary(program, who))
    yield "wallet", lambda: m.wallet(ctx, [view(program, k, i)
                                           for i, k in enumerate(program.coupons)])
    yield "coupon_detail", lambda: m.coupon_detail(ctx, view(program, "xmas_beans", 3))
    yield "member_card", lambda: m.member_card(ctx, who, summary(program, who, wallet=[coupon]))
    yield "rewards_catalog", lambda: m.rewards_catalog(ctx, 600)
    yield "rewards_catalog changes coming", lambda: m.rewards_catalog(announcing(ctx), 600)
    if rewards:
        yield "reward_confirm", lambda: m.reward_confirm(ctx, rewards[0], 600)
        yield "reward_confirm short", lambda: m.reward_confirm(
            ctx, rewards[min(2, len(rewards) - 1)], 50)
    yield "reward_issued", lambda: m.reward_issued(ctx, view(program, "nt50", 4), 500)
    yield "purchase_receipt", lambda: m.purchase_receipt(ctx, purchase(program), 1350, [coupon])
    yield "staff_purchase_recorded", lambda: m.staff_purchase_recorded(ctx, who,
                                                                       purchase(program))
    yield "staff_confirm_purchase", lambda: m.staff_confirm_purchase(ctx, who, 4200,
                                                                     "tok-123_x")
    yield "staff_confirm_purchase claim", lambda: m.staff_confirm_purchase(ctx, None, 4200,
                                                                           "tok-123_x")
    yield "staff_claim_code", lambda: m.staff_claim_code(ctx, claim(program, 350))
    yield "staff_claim_code again", lambda: m.staff_claim_code(
        ctx, dataclasses.replace(claim(program, 350), duplicate=True))
    yield "staff_redemption_ok", lambda: m.staff_redemption_ok(
        ctx, dataclasses.replace(used, discount=50), who, 500)
    yield "staff_redemption_ok gift", lambda: m.staff_redemption_ok(
        ctx, view(program, "free_drink"), None, None)
    yield "staff_redemption_failed", lambda: m.staff_redemption_failed(
        ctx, CouponAlreadyRedeemed(), "2026/11/20 14:05 · Amy")
    yield "customer_coupon_used", lambda: m.customer_coupon_used(ctx, used)
    yield "birthday_gift", lambda: m.birthday_gift(ctx, who, view(program, "bday_member", 5))
    yield "nudge", lambda: m.nudge(ctx, who, "stamps", 2, title("free_drink"))
    yield "nudge one point", lambda: m.nudge(ctx, who, "points", 1, title("nt50"))
    yield "expiry_warning", lambda: m.expiry_warning(
        ctx, who, [(TODAY, 40)], [coupon], None,
        (rewards[0], max(0, rewards[0].points - 40)) if rewards else None)
    yield "expiry_warning stamp card only", lambda: m.expiry_warning(
        ctx, who, [], [], (TODAY + dt.timedelta(days=7), 8, 10))
    yield "rules", lambda: m.rules(ctx)


def claim(program: Program, amount: int, status: str = "open", taker: Member | None = None
          ) -> ClaimView:
    """A claim code for an order of `amount`, made at NOW by the counter, in `status`."""
    order = Purchase(id=41, member_id=None, source="line", external_order_id="claim:e1",
                     amount=amount, categories={}, points_earned=0, stamps_earned=0,
                     refunded_amount=0, created_at=NOW)
    taken = status == "claimed"
    row = Claim(id=5, code=code(77), purchase_id=41, created_at=NOW,
                status="open" if status == "expired" else status,
                expires_at=NOW + program.claims.lifetime("line"),
                claimed_by=taker.id if taken and taker else None,
                claimed_at=NOW + dt.timedelta(minutes=1) if taken else None)
    return ClaimView(row, order, status, taker if taken else None)


def flex_samples(program: Program, ctx: RenderContext) -> Samples:
    for name, make in sample_makers(program, ctx):
        yield name, make()
