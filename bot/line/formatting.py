"""Loyalty objects as template fields (names, money, dates, coupons) in the reader's language."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any

from bot.line.flex import Strings, clip
from bot.line.qr import coupon_payload
from bot.loyalty.coupons import CouponView
from bot.loyalty.purchases import PurchaseResult
from bot.loyalty.stamps import stamp_minimum
from bot.loyalty.timeutil import local_date
from bot.models import Member
from bot.program import CouponTemplate, Program, Tier

TITLE_LIMIT = 80  # program titles are free text: keep 12 bubbles well under 50 KB
ECHO_LIMIT = 30  # a title repeated in a button's displayText (the user's side of the chat)
NAME_LIMIT = 400  # UTF-16 units: all of a 200-character Member.display_name
CURRENCY_SYMBOLS = {"TWD": "NT$"}
CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")  # Chinese, full-width forms


# -- the one way numbers, money and dates are written, to customers and to staff alike ------
def money_text(amount: int | float, currency: str = "TWD") -> str:
    """NT$1,234 in either language: whole dollars (an average is rounded), no `TWD 150`."""
    code = currency.strip() or "TWD"
    symbol = CURRENCY_SYMBOLS.get(code, f"{code} ")
    return f"{'-' if amount < 0 else ''}{symbol}{abs(round(amount)):,}"


def date_text(day: dt.date) -> str:
    """2027/01/06 in either language; an instant is shown in its own timezone's day."""
    return f"{day.year}/{day.month:02d}/{day.day:02d}"


def datetime_text(instant: dt.datetime) -> str:
    """2027/01/06 14:05: pass a time already in the program's timezone, never UTC."""
    return f"{date_text(instant.date())} {instant.hour:02d}:{instant.minute:02d}"


@dataclass(frozen=True)
class RenderContext:
    """What every message needs: the program, the reader's language and QR image URLs."""

    program: Program
    lang: str
    qr_url: Callable[[str], str]  # QR payload -> https URL of its PNG
    oa_basic_id: str = ""

    @cached_property
    def strings(self) -> Strings:  # (asked many times per message: made once)
        return Strings(self.lang)


def shop(ctx: RenderContext) -> str:
    program = ctx.program
    return program.shop_name_en if ctx.strings.english else program.shop_name


def tier(ctx: RenderContext, level: Tier) -> str:
    return level.name_en if ctx.strings.english else level.name


def title(ctx: RenderContext, template: CouponTemplate, limit: int = TITLE_LIMIT) -> str:
    return clip(template.title_en if ctx.strings.english else template.title, limit)


def readable(ctx: RenderContext, text: str) -> str:
    """An owner's free text (a campaign's name) on a card: English readers get the shop's
    English name instead of Chinese they may not read."""
    return shop(ctx) if ctx.strings.english and CJK.search(text) else text


def name(ctx: RenderContext, member: Member | None) -> str:
    given = (member.display_name or "").strip() if member else ""
    return clip(given, NAME_LIMIT) if given else ctx.strings("name.anonymous")


def money(ctx: RenderContext, amount: int) -> str:
    return money_text(amount, ctx.program.currency)


def coupon_until(ctx: RenderContext, view: CouponView) -> str:
    """The last local day a coupon can be used (valid_until is the first instant after it)."""
    last = view.coupon.valid_until - dt.timedelta(microseconds=1)
    return date_text(local_date(last, ctx.program.timezone))


def coupon(ctx: RenderContext, view: CouponView) -> dict[str, Any]:
    """The fields every coupon layout uses, its QR image included."""
    s, row, template = ctx.strings, view.coupon, view.template
    since = local_date(row.valid_from, ctx.program.timezone)
    return {
        "id": row.id, "code": view.display_code, "title": title(ctx, template),
        "kind": s(f"kind.{template.kind}"), "value": value(ctx, template),
        "conditions": [{"text": line} for line in conditions(ctx, template)],
        "until": coupon_until(ctx, view), "since": date_text(since),
        "not_yet": since > local_date(row.issued_at, ctx.program.timezone),
        "qr": ctx.qr_url(coupon_payload(ctx.oa_basic_id, row.code)),
    }


def value(ctx: RenderContext, template: CouponTemplate) -> str:
    """What a coupon is worth, in a few words."""
    s = ctx.strings
    if template.kind == "amount_off":
        return s("value.amount_off", amount=money(ctx, template.amount))
    if template.kind == "percent_off":
        pay = 100 - template.percent  # Taiwan says 10% off as "9折", 15% off as "85折"
        zhe = str(pay // 10) if pay % 10 == 0 else (str(pay) if pay >= 10 else f"0.{pay}")
        return s("value.percent_off", percent=template.percent, zhe=zhe)
    if template.kind == "free_shipping":
        return s("value.free_shipping")
    gift = template.gift_en if s.english else template.gift
    return clip(gift, TITLE_LIMIT) if gift else s("value.free_gift")


def conditions(ctx: RenderContext, template: CouponTemplate) -> list[str]:
    s, lines = ctx.strings, []
    if template.min_spend:
        lines.append(s("condition.min_spend", amount=money(ctx, template.min_spend)))
    if template.kind == "percent_off" and template.max_discount:
        lines.append(s("condition.max_discount", amount=money(ctx, template.max_discount)))
    return lines or [s("condition.none")]


def purchase(ctx: RenderContext, result: PurchaseResult) -> dict[str, Any]:
    s, change = ctx.strings, result.tier_change
    up = bool(change and change.upgraded)
    progress = result.card_goal is not None
    why = {"minimum": s("receipt.no_stamp_minimum",
                        amount=money(ctx, stamp_minimum(ctx.program))),
           "today": s("receipt.no_stamp_today")}.get(result.no_stamp or "", "")
    return {"amount": money(ctx, result.purchase.amount), "points": s.number(result.points),
            "stamps": s.number(result.stamps), "tier_up": up,
            "has_progress": progress, "no_stamp": why,
            "progress": s("receipt.progress", have=s.number(result.card_stamps or 0),
                          goal=s.number(result.card_goal or 0)) if progress else "",
            "tier": tier(ctx, change.new) if change else "",
            "benefits": [{"text": clip(line, TITLE_LIMIT)}
                         for line in (tier_benefits(ctx, change.new) if up else [])]}


REWARD_CHANGES = ("reward_price", "reward_gone", "reward_ends", "reward_changed")
TITLED = (*REWARD_CHANGES, "card_reward_changed")  # their subject is a coupon template
CUSTOMER_CHANGES = ("earn_slower", "rounding_less", "category_lower", "campaign_gone",
                    "expiry_shorter", "expiry_month_end_gone", *REWARD_CHANGES,
                    "card_reward_changed", "tier_gone",
                    "tier_multiplier_lower", "tier_threshold_higher", "tier_birthday_gone",
                    "tier_benefit_gone", "tier_rules_stricter")  # not notice_shorter: the
# shop's own business


def coming(ctx: RenderContext, kinds: tuple[str, ...] = CUSTOMER_CHANGES) -> list[str]:
    """What the program's next version takes away and from when (the notice period), one
    line each in the reader's language; [] when nothing is coming."""
    program, s = ctx.program, ctx.strings
    if not program.coming or program.coming_at is None:
        return []
    day = date_text(program.coming_at.astimezone(program.timezone).date())
    lines = []
    for change in (c for c in program.coming if c.kind in kinds):
        values = {"date": day, "old": change.old, "new": change.new, "what": change.subject}
        if change.kind in TITLED:
            template = program.coupons.get(change.subject)
            values["what"] = title(ctx, template) if template else change.subject
        if isinstance(change.old, dt.date):
            values["old"] = date_text(change.old)
        if isinstance(change.new, dt.date):
            values["new"] = date_text(change.new)
        if change.kind == "rounding_less":
            values.update(old=s(f"rounding.{change.old}"), new=s(f"rounding.{change.new}"))
        if change.kind == "tier_birthday_gone":
            gift = program.coupons.get(change.old)
            values["old"] = title(ctx, gift) if gift else change.old
        elif change.kind.startswith("tier_"):
            level = next((t for t in program.tiers if t.key == change.subject), None)
            values["what"] = tier(ctx, level) if level else change.subject
        if change.kind == "category_lower":
            values["what"] = category(ctx, change.subject)
        if change.kind in ("category_lower", "tier_multiplier_lower"):
            values.update(old=times(change.old), new=times(change.new))
        if change.kind in ("earn_slower", "tier_threshold_higher"):
            values.update(old=money(ctx, change.old), new=money(ctx, change.new))
        lines.append(s(f"coming.{change.kind}", **values))
    return lines


def category(ctx: RenderContext, key: str) -> str:
    """A product category as customers read it ([earning.category_names], or `_en` on English
    cards); its key, the POS's, only where the program names it in neither."""
    program = ctx.program
    names = (program.category_names_en, program.category_names) if ctx.strings.english \
        else (program.category_names,)
    return next((n[key] for n in names if key in n), key)


def times(multiplier: Fraction) -> str:
    """1.5 / 2 / 1.25: a multiplier as people write it."""
    return f"{float(multiplier):g}"


def tier_benefits(ctx: RenderContext, level: Tier, every_multiplier: bool = False) -> list[str]:
    """What a tier gives: its points multiplier (x1 only when `every_multiplier`, as the rules
    compare tiers), its birthday gift, then the program's own `benefits` lines, in the
    reader's language."""
    s, lines = ctx.strings, []
    if level.multiplier != 1 or every_multiplier:
        lines.append(s("tier.multiplier", times=times(level.multiplier)))
    if level.birthday_coupon:
        lines.append(s("tier.birthday",
                       title=title(ctx, ctx.program.coupons[level.birthday_coupon])))
    return lines + list(level.benefits_en if s.english else level.benefits)


def progress(current: Tier, upcoming: Tier | None, spend: int) -> int:
    """Percent of the way from this tier's threshold to the next one's."""
    if upcoming is None:
        return 100
    span = upcoming.threshold - current.threshold
    return max(0, min(100, (spend - current.threshold) * 100 // span))


def stamp_rows(stamps: int, goal: int, markers: set[int], per_row: int = 5) -> list[dict]:
    """Grid cells: filled, a reward marker, or plain; the last row padded with blanks."""
    cells = [{"filled": n <= stamps, "marker": n > stamps and n in markers,
              "plain": n > stamps and n not in markers, "blank": False, "n": str(n)}
             for n in range(1, goal + 1)]
    cells += [{"filled": False, "marker": False, "plain": False, "blank": True, "n": ""}
              ] * (-goal % per_row)
    return [{"cells": cells[i:i + per_row]} for i in range(0, len(cells), per_row)]


def stamps_to_go(ctx: RenderContext, stamps: int, goal: int, to_next: int,
                 rewards: dict[int, str]) -> str:
    """The line under the grid: stamps to the next reward, or that the card is full."""
    s = ctx.strings
    if stamps >= goal:
        return s("stamps.full")
    remaining = to_next if 0 < to_next <= goal - stamps else goal - stamps
    reward = rewards.get(stamps + remaining)
    if reward is None:
        return s.count("stamps.to_go", remaining)
    return s.count("stamps.to_go_reward", remaining,
                   reward=title(ctx, ctx.program.coupons[reward]))
