"""Every message the bot sends, as LINE message dicts ready for the Messaging API.

Each function gathers data from the loyalty domain into fields and fills a Flex template
(flex_templates/<name>.json); the words come from the strings tables, in zh-TW or English.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from bot.line import flex
from bot.line import formatting as fmt
from bot.line.flex import clip
from bot.line.formatting import ECHO_LIMIT, TITLE_LIMIT, RenderContext
from bot.line.limits import MAX_ALT_TEXT, MAX_BUBBLES, MAX_TEXT
from bot.line.qr import claim_payload, member_payload
from bot.loyalty.claims import ClaimView
from bot.loyalty.codes import format_code
from bot.loyalty.coupons import CouponView
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.purchases import PurchaseResult
from bot.loyalty.rewards import offer_digest
from bot.loyalty.stamps import program_card_rewards
from bot.loyalty.summary import MemberSummary
from bot.models import Member
from bot.program import Faq, Reward, Tier

WALLET_PAGE = 11  # coupon bubbles on a page that has more after it (+1 "more" bubble)
REWARDS_PER_BUBBLE = 5
REWARD_BUBBLES = 10  # 50 rewards; with the longest titles the carousel stays under 50 KB
ROWS = 5  # expiring lots or coupons listed before "and more"
DETAIL_LIMIT = 500

Messages = list[dict[str, Any]]


# -- customer messages ----------------------------------------------------------------------
def welcome(ctx: RenderContext, member: Member, coupon: CouponView | None) -> Messages:
    s = ctx.strings
    named = bool((member.display_name or "").strip())
    greeting = s("welcome.greeting", name=fmt.name(ctx, member)) if named else s("welcome.hello")
    fields = {"greeting": greeting, "has_coupon": coupon is not None,
              **(fmt.coupon(ctx, coupon) if coupon else {})}
    return _flex(ctx, "welcome", s("alt.welcome", shop=fmt.shop(ctx)), fields)


def points_card(ctx: RenderContext, summary: MemberSummary) -> Messages:
    s, upcoming = ctx.strings, summary.next_tier
    progress = fmt.progress(summary.tier, upcoming, summary.spend)
    hidden = summary.expiring[ROWS:]
    fields = {
        "balance": s.number(summary.balance), "tier": fmt.tier(ctx, summary.tier),
        "has_next": upcoming is not None,
        "next_tier": fmt.tier(ctx, upcoming) if upcoming else "",
        "to_next": fmt.money(ctx, summary.spend_to_next or 0),
        "spend": fmt.money(ctx, summary.spend), "months": ctx.program.tier_window_months,
        "progress": f"{progress}%", "has_progress": progress > 0,
        "expiring": [{"date": fmt.date_text(e.date), "points": s.number(e.points)}
                     for e in summary.expiring[:ROWS]],
        "has_expiring": bool(summary.expiring), "more_expiring": bool(hidden),
        "more_points": s.number(sum(e.points for e in hidden)),
        "benefits": _lines(fmt.tier_benefits(ctx, summary.tier)),
        "has_benefits": bool(fmt.tier_benefits(ctx, summary.tier)),
        **_coming(ctx),
    }
    alt = s("alt.points_card", balance=fields["balance"], tier=fields["tier"])
    return _flex(ctx, "points_card", alt, fields)


RULES_CAMPAIGNS = 3  # dated points campaigns the rules card lists, the soonest first


def rules(ctx: RenderContext, opted_out: bool = False, today: dt.date | None = None
          ) -> Messages:
    """How it works: earning (categories and the points campaigns not over by `today`) and
    expiry, the stamp card, each tier and the birthday gift; a button stops promotions (or
    starts them again for a member who stopped them)."""
    s, program, card = ctx.strings, ctx.program, ctx.program.stamps
    if program.expiry_mode == "rolling":
        expiry = s("rules.expiry_rolling", months=program.expiry_months)
    else:
        key = "rules.expiry_lot_month_end" if program.expiry_end_of_month else "rules.expiry_lot"
        expiry = s(key, months=program.expiry_months)
    points = [s("rules.earn", amount=fmt.money(ctx, program.amount_per_point)),
              *(s("rules.category", what=fmt.category(ctx, key), times=fmt.times(rate))
                for key, rate in program.category_multipliers.items() if rate != 1),
              *(s("rules.campaign", times=fmt.times(c.multiplier),
                  name=fmt.readable(ctx, c.name_en if s.english else c.name),
                  starts=fmt.date_text(c.starts), ends=fmt.date_text(c.ends))
                for c in sorted((c for c in program.campaigns
                                 if today is None or c.ends >= today),
                                key=lambda c: c.starts)[:RULES_CAMPAIGNS]),
              expiry, *([s("rules.redeem")] if program.rewards else [])]
    if card.per == "amount":
        stamps = [s("rules.stamp_amount", amount=fmt.money(ctx, card.amount_per_stamp))]
    elif card.min_amount:
        stamps = [s("rules.stamp_visit_min", amount=fmt.money(ctx, card.min_amount))]
    else:
        stamps = [s("rules.stamp_visit")]
    if card.one_per_day:
        stamps.append(s("rules.one_per_day"))
    rewards = {m.at: m.reward for m in card.milestones}
    if card.completion_reward:
        rewards[card.goal] = card.completion_reward
    stamps += [s("stamps.milestone", at=at, title=fmt.title(ctx, program.coupons[key]))
               for at, key in sorted(rewards.items())]
    if card.card_valid_days:
        stamps.append(s("rules.card_valid", days=s.number(card.card_valid_days)))
    tiers = [{"name": fmt.tier(ctx, level),
              "threshold": s("tier.threshold", amount=fmt.money(ctx, level.threshold),
                             months=program.tier_window_months)
              if level.threshold else s("tier.first"),
              "benefits": _lines(fmt.tier_benefits(ctx, level, every_multiplier=True))}
             for level in program.tiers]
    birthday = any(level.birthday_coupon for level in program.tiers)
    fields = {"points": _lines(points), "stamps": _lines(stamps), "tiers": tiers,
              "has_birthday": birthday,
              "birthday": s(f"rules.birthday_{program.birthday_when}") if birthday else "",
              "opted_out": opted_out}
    return _flex(ctx, "rules", s("alt.rules"), fields)


def privacy_notice(ctx: RenderContext) -> Messages:
    """The shop's notice under Taiwan's Personal Data Protection Act ([privacy] notice in the
    program file), or a short default naming what is kept and why."""
    program = ctx.program
    notice = program.privacy_notice_en if ctx.strings.english else program.privacy_notice
    if notice:
        return [{"type": "text", "text": clip(notice, MAX_TEXT)}]
    return [{"type": "text",
             "text": clip(ctx.strings("name.privacy", shop=fmt.shop(ctx)), MAX_TEXT)}]


def stamp_card(ctx: RenderContext, summary: MemberSummary) -> Messages:
    s, coupons = ctx.strings, ctx.program.coupons
    goal = summary.stamp_goal
    stamps = min(summary.stamps, goal)
    kept = (program_card_rewards(ctx.program, goal) if summary.stamp_rewards is None
            else summary.stamp_rewards)  # the card's own: a later program change moves none
    rewards = {at: key for at, key in kept.items() if key in coupons}
    milestones = {at: key for at, key in rewards.items() if at < goal}
    legend = [{"text": s("stamps.milestone", at=at, title=fmt.title(ctx, coupons[key]))}
              for at, key in sorted(rewards.items())]
    fields = {"stamps": str(stamps), "goal": str(goal), "legend": legend,
              "has_legend": bool(legend),
              "rows": fmt.stamp_rows(stamps, goal, {*milestones, goal}),
              "to_go": fmt.stamps_to_go(ctx, stamps, goal, summary.stamps_to_next_reward,
                                        rewards),
              "has_until": summary.stamps_until is not None,
              "until": fmt.date_text(summary.stamps_until) if summary.stamps_until else ""}
    return _flex(ctx, "stamp_card", s("alt.stamp_card", stamps=stamps, goal=goal), fields)


def wallet(ctx: RenderContext, views: list[CouponView], page: int = 1) -> Messages:
    """One bubble per coupon; past 12, pages of 11 and a bubble posting back the next page."""
    s, total = ctx.strings, len(views)
    last = 1 + max(0, math.ceil((total - MAX_BUBBLES) / WALLET_PAGE))
    page = min(max(page, 1), last)
    start = (page - 1) * WALLET_PAGE
    rest = views[start:]
    shown = rest if len(rest) <= MAX_BUBBLES else rest[:WALLET_PAGE]
    coupons = [{**fmt.coupon(ctx, view), "position": f"{start + i} / {total}"}
               for i, view in enumerate(shown, start=1)]
    more = len(rest) - len(shown)
    fields = {"coupons": coupons, "more": more > 0, "remaining": s.number(more),
              "next_page": page + 1, "empty": not views}
    alt = s("alt.wallet", count=s.number(total)) if views else s("wallet.empty_title")
    return _flex(ctx, "wallet", alt, fields)


def coupon_detail(ctx: RenderContext, view: CouponView) -> Messages:
    fields = fmt.coupon(ctx, view)
    alt = ctx.strings("alt.coupon", title=fields["title"], code=fields["code"])
    return _flex(ctx, "coupon_detail", alt, fields)


def member_card(ctx: RenderContext, member: Member, summary: MemberSummary) -> Messages:
    s = ctx.strings
    fields = {"name": fmt.name(ctx, member), "code": format_code(member.member_code),
              "tier": fmt.tier(ctx, summary.tier), "balance": s.number(summary.balance),
              "stamps": s.number(summary.stamps), "goal": s.number(summary.stamp_goal),
              "coupons": s.number(len(summary.wallet)),
              "qr": ctx.qr_url(member_payload(ctx.oa_basic_id, member.member_code))}
    return _flex(ctx, "member_card", s("alt.member_card", code=fields["code"]), fields)


def rewards_catalog(ctx: RenderContext, balance: int,
                    rewards: Sequence[Reward] | None = None) -> Messages:
    """The rewards on offer (rewards.available_rewards; the whole program's by default)."""
    s, program = ctx.strings, ctx.program
    items = [{"key": r.key, "title": fmt.title(ctx, program.coupons[r.coupon]),
              "echo": fmt.title(ctx, program.coupons[r.coupon], ECHO_LIMIT),
              "points": s.number(r.points), "affordable": balance >= r.points,
              "missing": s.number(max(0, r.points - balance))}
             for r in (program.rewards if rewards is None else rewards)]
    pages = [{"rewards": items[i:i + REWARDS_PER_BUBBLE]}
             for i in range(0, len(items), REWARDS_PER_BUBBLE)][:REWARD_BUBBLES]
    fields = {"pages": pages, "empty": not items, "balance": s.number(balance),
              "has_coming": False}
    if pages:  # on the first page only: every page repeating it would pass LINE's 50 KB
        pages[0].update(_coming(ctx, fmt.REWARD_CHANGES))
    return _flex(ctx, "rewards_catalog", s("alt.rewards", balance=fields["balance"]), fields)


def reward_confirm(ctx: RenderContext, reward: Reward, balance: int) -> Messages:
    s, template = ctx.strings, ctx.program.coupons[reward.coupon]
    fields = {"key": reward.key, "price": reward.points,
              "offer": offer_digest(ctx.program, reward), "title": fmt.title(ctx, template),
              "echo": fmt.title(ctx, template, ECHO_LIMIT), "value": fmt.value(ctx, template),
              "points": s.number(reward.points), "balance": s.number(balance),
              "after": s.number(balance - reward.points), "affordable": balance >= reward.points,
              "missing": s.number(max(0, reward.points - balance))}
    return _flex(ctx, "reward_confirm", s("alt.reward_confirm", title=fields["title"]), fields)


def reward_issued(ctx: RenderContext, view: CouponView, balance: int) -> Messages:
    fields = {**fmt.coupon(ctx, view), "balance": ctx.strings.number(balance)}
    return _flex(ctx, "reward_issued", ctx.strings("alt.reward_issued", title=fields["title"]),
                 fields)


def purchase_receipt(ctx: RenderContext, result: PurchaseResult, balance: int,
                     coupons: list[CouponView]) -> Messages:
    s = ctx.strings
    fields = {**fmt.purchase(ctx, result), "balance": s.number(balance),
              "has_coupons": bool(coupons), "more_coupons": len(coupons) > ROWS,
              "more_count": s.number(len(coupons) - ROWS),
              "coupons": [{"title": fmt.title(ctx, v.template)} for v in coupons[:ROWS]]}
    alt = s("alt.receipt", points=fields["points"], balance=fields["balance"])
    return _flex(ctx, "purchase_receipt", alt, fields)


def customer_coupon_used(ctx: RenderContext, view: CouponView) -> Messages:
    used = view.coupon.redeemed_at
    when = fmt.datetime_text(used.astimezone(ctx.program.timezone)) if used else ""
    fields = {**fmt.coupon(ctx, view), "used_at": when}
    return _flex(ctx, "customer_coupon_used", ctx.strings("alt.used", title=fields["title"]),
                 fields)


def birthday_gift(ctx: RenderContext, member: Member, view: CouponView) -> Messages:
    fields = {**fmt.coupon(ctx, view), "name": fmt.name(ctx, member)}
    return _flex(ctx, "birthday_gift", ctx.strings("alt.birthday", name=fields["name"]), fields)


def tier_news(ctx: RenderContext, tier: Tier, upgraded: bool) -> Messages:
    """A tier change; a move up lists what the new tier gives."""
    news = text(ctx, "tier_up" if upgraded else "tier_down", tier=fmt.tier(ctx, tier))
    benefits = fmt.tier_benefits(ctx, tier) if upgraded else []
    if benefits:
        bullet = ctx.strings("name.bullet")
        listed = "\n".join(f"{bullet}{line}" for line in benefits)
        news[0]["text"] = clip(f"{news[0]['text']}\n{listed}", MAX_TEXT)
    return news


def nudge(ctx: RenderContext, member: Member, what: str, remaining: int,
          reward_title: str) -> Messages:
    """A near-goal nudge; `what` is "stamps" or "points", `reward_title` in the member's
    language."""
    if what not in ("stamps", "points"):
        raise ValueError(f"nudge is about 'stamps' or 'points', not {what!r}")
    s = ctx.strings
    headline = s.count(f"nudge.{what}", remaining, reward=clip(reward_title, TITLE_LIMIT))
    fields = {"headline": headline, "points": what == "points",
              "detail": s(f"nudge.{what}_detail", name=fmt.name(ctx, member))}
    return _flex(ctx, "nudge", headline, fields)


def expiry_warning(ctx: RenderContext, member: Member, points: list[tuple[dt.date, int]],
                   coupons: list[CouponView],
                   card: tuple[dt.date, int, int] | None = None,
                   offer: tuple[Reward, int] | None = None) -> Messages:
    """Points, an unfinished stamp card (its last day, stamps, goal) and coupons about to
    expire, in one message; nothing to warn about means no message ([])."""
    if not points and not coupons and not card:
        return []
    s = ctx.strings
    later = points[ROWS:]
    fields = {
        "name": fmt.name(ctx, member),
        "has_points": bool(points), "more_points": bool(later),
        "points": [{"date": fmt.date_text(day), "points": s.number(n)} for day, n in points[:ROWS]],
        "later_points": s.number(sum(n for _, n in later)),
        "has_coupons": bool(coupons), "more_coupons": len(coupons) > ROWS,
        "more_count": s.number(len(coupons) - ROWS),
        "coupons": [{"title": fmt.title(ctx, v.template), "until": fmt.coupon_until(ctx, v)}
                    for v in coupons[:ROWS]],
        "has_offer": bool(points and offer),
        "offer": _offer(ctx, offer) if points and offer else "",
        "has_card": card is not None,
        "card": s("expiry.card", date=fmt.date_text(card[0]), stamps=s.number(card[1]),
                  goal=s.number(card[2]), left=s.number(card[2] - card[1])) if card else "",
    }
    counts = [s("expiry.count_points", n=s.number(sum(n for _, n in points))) if points else "",
              s("expiry.count_coupons", n=s.number(len(coupons))) if coupons else "",
              s("expiry.count_card") if card else ""]
    alt = s("alt.expiry", what=s("expiry.separator").join(c for c in counts if c))
    return _flex(ctx, "expiry_warning", alt, fields)


# -- staff messages -------------------------------------------------------------------------
def staff_purchase_recorded(ctx: RenderContext, member: Member,
                            result: PurchaseResult) -> Messages:
    s = ctx.strings
    fields = {**fmt.purchase(ctx, result), "name": fmt.name(ctx, member),
              "member_code": format_code(member.member_code), "duplicate": result.duplicate,
              "has_coupons": bool(result.coupons), "count": s.number(len(result.coupons))}
    alt = s("alt.recorded", amount=fields["amount"], name=fields["name"])
    return _flex(ctx, "staff_purchase_recorded", alt, fields)


def staff_confirm_purchase(ctx: RenderContext, member: Member | None, amount: int,
                           token: str) -> Messages:
    """A large amount to confirm: for a member, or (None) for a claim code."""
    s = ctx.strings
    fields = {"amount": fmt.money(ctx, amount), "token": quote(token, safe=""),
              "name": fmt.name(ctx, member) if member else s("claim.confirm_name"),
              "member_code": format_code(member.member_code) if member else "—"}
    alt = s("alt.confirm_purchase", amount=fields["amount"], name=fields["name"])
    return _flex(ctx, "staff_confirm_purchase", alt, fields)


def staff_claim_code(ctx: RenderContext, view: ClaimView) -> Messages:
    """The claim code's QR for the customer to scan, with the code for a printed receipt."""
    s = ctx.strings
    until = view.claim.expires_at.astimezone(ctx.program.timezone)
    fields = {"amount": fmt.money(ctx, view.purchase.amount),
              "code": format_code(view.claim.code), "until": fmt.datetime_text(until),
              "duplicate": view.duplicate,
              "qr": ctx.qr_url(claim_payload(ctx.oa_basic_id, format_code(view.claim.code)))}
    return _flex(ctx, "staff_claim_code", s("alt.claim_code", code=fields["code"],
                                             amount=fields["amount"]), fields)


def staff_claim_status(ctx: RenderContext, view: ClaimView) -> Messages:
    """Who took a claim code and when, or why nobody did."""
    tz = ctx.program.timezone
    claim, taker = view.claim, view.claimed_by
    fields = {"code": format_code(claim.code), "amount": fmt.money(ctx, view.purchase.amount),
              "until": fmt.datetime_text(claim.expires_at.astimezone(tz))}
    if view.status == "claimed":
        fields.update(name=fmt.name(ctx, taker) if taker else "—",
                      member_code=format_code(taker.member_code) if taker else "—",
                      when=fmt.datetime_text(claim.claimed_at.astimezone(tz)))
    return text(ctx, f"claim_status_{view.status}", **fields)


def staff_redemption_ok(ctx: RenderContext, view: CouponView, member: Member | None,
                        order_amount: int | None) -> Messages:
    s, template = ctx.strings, view.template
    has_order = order_amount is not None
    if has_order and view.discount:
        benefit = s("staff.benefit_discount", amount=fmt.money(ctx, view.discount))
    else:
        benefit = fmt.value(ctx, template)
    fields = {**fmt.coupon(ctx, view), "benefit": benefit, "has_order": has_order,
              "name": fmt.name(ctx, member), "order": fmt.money(ctx, order_amount or 0),
              "discount": fmt.money(ctx, view.discount),
              "to_pay": fmt.money(ctx, max(0, (order_amount or 0) - view.discount))}
    return _flex(ctx, "staff_redemption_ok", s("alt.redeemed", benefit=benefit), fields)


def staff_redemption_failed(ctx: RenderContext, error: LoyaltyError,
                            detail: str = "") -> Messages:
    reason = error.message(ctx.strings.lang)
    fields = {"reason": reason, "detail": clip(detail, DETAIL_LIMIT)}
    return _flex(ctx, "staff_redemption_failed", ctx.strings("alt.failed", reason=reason),
                 fields)


# -- plain text -----------------------------------------------------------------------------
def text(ctx: RenderContext, key: str, **fields: Any) -> Messages:
    """The strings-table entry `text.<key>`; whole-number fields get thousands separators,
    and a whole-number `amount` is money (NT$1,234)."""
    s = ctx.strings
    shown = {name: (fmt.money(ctx, value) if name == "amount" else s.number(value))
             if isinstance(value, int) and not isinstance(value, bool) else value
             for name, value in fields.items()}
    return [{"type": "text", "text": clip(s(f"text.{key}", **shown), MAX_TEXT)}]


def owner_alerts(ctx: RenderContext, alerts: list[tuple[str, dict[str, Any]]]) -> Messages:
    """The owner's daily alert message: a title, one line per (kind, values), a pointer to
    the console."""
    s = ctx.strings

    def shown(key: str, value: Any) -> Any:
        if key == "job":  # a job's name in the reader's words
            return s(f"alert.job.{value}")
        return s.number(value) if isinstance(value, int) else value
    lines = [s("alert.line", text=s(f"alert.{kind}", **{k: shown(k, v) for k, v in values.items()}))
             for kind, values in alerts]
    text = "\n".join([s("alert.title"), *lines, s("alert.more")])
    return [{"type": "text", "text": clip(text, MAX_TEXT)}]


def birthday_confirm(ctx: RenderContext, day: dt.date) -> Messages:
    """The date picked, to confirm before it is saved (it can be set once): yes, pick
    another day, or cancel, as quick replies."""
    s = ctx.strings
    message = text(ctx, "birthday_confirm", date=fmt.date_text(day))[0]
    message["quickReply"] = {"items": [
        {"type": "action", "action": {
            "type": "postback", "label": s("birthday.yes"), "displayText": s("birthday.yes"),
            "data": f"action=birthday_confirm&date={day.isoformat()}"}},
        {"type": "action", "action": {
            "type": "datetimepicker", "label": s("birthday.again"), "data": "action=birthday",
            "mode": "date", "initial": day.isoformat()}},
        {"type": "action", "action": {
            "type": "postback", "label": s("button.cancel"), "displayText": s("button.cancel"),
            "data": "action=cancel"}}]}
    return [message]


def help_text(ctx: RenderContext) -> Messages:
    """What the bot does and the words it knows, the program's FAQ keywords included, with
    the rules card and the privacy notice as quick replies."""
    s = ctx.strings
    message = text(ctx, "help")[0]
    words = [next((w for w in faq.keywords if s.english != bool(fmt.CJK.search(w))),
                  faq.keywords[0]) for faq in ctx.program.faq]
    if words:
        more = s("name.help_faq", keywords=s("expiry.separator").join(words))
        message["text"] = clip(f"{message['text']}\n{more}", MAX_TEXT)
    message["quickReply"] = {"items": [
        {"type": "action", "action": {"type": "postback", "label": s(label),
                                      "displayText": s(label), "data": f"action={action}"}}
        for label, action in (("rules.title", "rules"), ("button.privacy", "privacy"))]}
    return [message]


def faq_answer(ctx: RenderContext, faq: Faq) -> Messages:
    """The shop's own answer to one of its FAQ keywords, in the reader's language."""
    return [{"type": "text",
             "text": clip(faq.answer_en if ctx.strings.english else faq.answer, MAX_TEXT)}]


def error(ctx: RenderContext, exc: LoyaltyError) -> Messages:
    """A domain error in the reader's language."""
    return text(ctx, "error", message=exc.message(ctx.strings.lang))


# -- helpers --------------------------------------------------------------------------------
def _offer(ctx: RenderContext, offer: tuple[Reward, int]) -> str:
    """A reward the member can take before points expire, or how many points it still needs."""
    reward, missing = offer
    title = fmt.title(ctx, ctx.program.coupons[reward.coupon], TITLE_LIMIT)
    if missing:
        return ctx.strings("expiry.offer_missing", missing=ctx.strings.number(missing),
                           title=title)
    return ctx.strings("expiry.offer", title=title)


COMING_LINES = 5  # lines of "changes coming" on a card


def _coming(ctx: RenderContext, kinds: tuple[str, ...] = fmt.CUSTOMER_CHANGES
            ) -> dict[str, Any]:
    """A card's announcement of what the next program version takes away, and when: the
    first COMING_LINES, then how many more."""
    lines = fmt.coming(ctx, kinds)
    if len(lines) > COMING_LINES:
        more = ctx.strings.number(len(lines) - COMING_LINES + 1)
        lines = [*lines[:COMING_LINES - 1], ctx.strings("coming.more", count=more)]
    return {"coming": [{"text": clip(line, 120)} for line in lines], "has_coming": bool(lines)}


def _lines(texts: list[str]) -> list[dict[str, str]]:
    return [{"text": clip(line, TITLE_LIMIT)} for line in texts]


def _flex(ctx: RenderContext, template: str, alt: str, fields: dict[str, Any]) -> Messages:
    contents = _renderer(template)({"shop": fmt.shop(ctx), **fields}, ctx.strings.table)
    return [{"type": "flex", "altText": clip(alt, MAX_ALT_TEXT), "contents": contents}]


# template name -> (the template read, tagged copy, the tagged copy compiled)
_TAGGED: dict[str, tuple[Any, Any, flex.Renderer]] = {}


def _tagged(name: str) -> Any:
    """Template `name` with every postback button saying which message it was in, for the
    bot's own tap counts (bot.loyalty.taps; rich-menu taps carry none): tagged once per
    template read, not at every message."""
    return _prepared(name)[1]


def _renderer(name: str) -> flex.Renderer:
    """The tagged template `name` as a function of (fields, strings), compiled with it."""
    return _prepared(name)[2]


def _prepared(name: str) -> tuple[Any, Any, flex.Renderer]:
    source = flex.template(name)
    kept = _TAGGED.get(name)
    if kept is None or kept[0] is not source:  # a template edited and read again (gallery)
        tagged = copy.deepcopy(source)
        _tag_postbacks(tagged, f"&via={name}")
        kept = _TAGGED[name] = (source, tagged, flex.compile_template(tagged))
    return kept


def _tag_postbacks(node: Any, via: str) -> None:
    if isinstance(node, dict):
        action = node.get("action")
        if isinstance(action, dict) and action.get("type") == "postback" \
                and "via=" not in action.get("data", ""):
            action["data"] += via
        for value in node.values():
            if isinstance(value, dict | list):
                _tag_postbacks(value, via)
    elif isinstance(node, list):
        for item in node:
            _tag_postbacks(item, via)
