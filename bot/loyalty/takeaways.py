"""What a new version of the program takes away from members (bot.loyalty.programs waits
out the notice period for it, and the cards announce it meanwhile).

Only what members would lose counts: a change that gives more (a better rate, a cheaper
reward, a new coupon) is in force at once. When in doubt (a reward's coupon changed in a
way that is not plainly better), it counts: a notice given needlessly costs the shop a
wait, a notice not given costs members what they were promised.
"""

from __future__ import annotations

import datetime as dt

from bot.program import ROUNDING, Change, CouponTemplate, Program, Reward

GENEROSITY = {name: rank for rank, name in enumerate(ROUNDING)}  # floor < round < ceil
STRICTNESS = {"never": 0, "grace": 1, "rolling": 2}  # how soon a tier is lost (DOWNGRADE_RULES)


def takeaways(old: Program, new: Program, today: dt.date) -> list[Change]:
    """What `new` takes away from members that `old` gives them, as of `today` (a local
    day: a reward or a campaign already over is nobody's loss)."""
    return [*_earning(old, new, today), *_expiry(old, new), *_rewards(old, new, today),
            *_card(old, new), *_tiers(old, new),
            *([Change("notice_shorter", "", old.notice_days, new.notice_days)]
              if new.notice_days < old.notice_days else [])]


def _earning(old: Program, new: Program, today: dt.date) -> list[Change]:
    found = [Change("earn_slower", "", old.amount_per_point, new.amount_per_point)
             ] if new.amount_per_point > old.amount_per_point else []
    if GENEROSITY[new.rounding] < GENEROSITY[old.rounding]:
        found.append(Change("rounding_less", "", old.rounding, new.rounding))
    found += [Change("category_lower", name, rate, new.category_multipliers.get(name, 1))
              for name, rate in old.category_multipliers.items()
              if new.category_multipliers.get(name, 1) < rate]
    kept = {(c.starts, c.ends, c.multiplier) for c in new.campaigns}
    found += [Change("campaign_gone", c.name, c.ends, None) for c in old.campaigns
              if c.ends >= today and not any(
                  starts <= c.starts and c.ends <= ends and rate >= c.multiplier
                  for starts, ends, rate in kept)]
    return found


def _expiry(old: Program, new: Program) -> list[Change]:
    if new.expiry_months < old.expiry_months or (
            old.expiry_mode, new.expiry_mode) == ("rolling", "lot"):
        return [Change("expiry_shorter", "", old.expiry_months, new.expiry_months)]
    if old.expiry_end_of_month and not new.expiry_end_of_month and new.expiry_mode == "lot":
        return [Change("expiry_month_end_gone", "", True, False)]
    return []


def _rewards(old: Program, new: Program, today: dt.date) -> list[Change]:
    found = []
    offered = [r for r in new.rewards if not r.retired and not new.coupons[r.coupon].retired]
    for reward in (r for r in old.rewards if _offered(r, today)):
        same = next((r for r in offered if r.key == reward.key), None) or next(
            (r for r in offered if (r.coupon, r.points) == (reward.coupon, reward.points)),
            None)  # a reward whose key alone changed is the same reward
        if same is None:
            found.append(Change("reward_gone", reward.coupon, reward.points, None))
            continue
        if same.points > reward.points:
            found.append(Change("reward_price", reward.coupon, reward.points, same.points))
        if same.ends is not None and (reward.ends is None or same.ends < reward.ends):
            found.append(Change("reward_ends", reward.coupon, reward.ends, same.ends))
        if same.coupon != reward.coupon or _worse(old.coupons[reward.coupon],
                                                  new.coupons[same.coupon]):
            found.append(Change("reward_changed", reward.coupon, reward.points, same.points))
    return found


def _card(old: Program, new: Program) -> list[Change]:
    """A stamp card keeps the templates of its rewards, not their terms: a template removed
    or giving less changes what cards already begun give."""
    used = {old.stamps.completion_reward, *(m.reward for m in old.stamps.milestones)}
    return [Change("card_reward_changed", key, None, None) for key in sorted(used - {None})
            if key not in new.coupons or new.coupons[key].retired
            or _worse(old.coupons[key], new.coupons[key])]


def _offered(reward: Reward, today: dt.date) -> bool:
    return not reward.retired and (reward.ends is None or reward.ends >= today)


def _worse(old: CouponTemplate, new: CouponTemplate) -> bool:
    """A coupon that gives less, or less often, or for less long."""
    def less(a: int | None, b: int | None) -> bool:  # None: no limit
        return b is not None and (a is None or b < a)
    return (new.kind != old.kind or new.amount < old.amount or new.percent < old.percent
            or less(old.max_discount, new.max_discount) or new.min_spend > old.min_spend
            or new.gift != old.gift or less(old.valid_days, new.valid_days)
            or less(old.valid_until and old.valid_until.toordinal(),
                    new.valid_until and new.valid_until.toordinal())
            or less(old.total_cap, new.total_cap) or less(old.per_member_cap,
                                                          new.per_member_cap))


def _tiers(old: Program, new: Program) -> list[Change]:
    found = []
    tiers = {t.key: t for t in new.tiers}
    for tier in old.tiers:
        kept = tiers.get(tier.key)
        if kept is None:  # members of a tier whose key is gone fall to the first tier
            found.append(Change("tier_gone", tier.key, tier.threshold, None))
            continue
        if kept.multiplier < tier.multiplier:
            found.append(Change("tier_multiplier_lower", tier.key, tier.multiplier,
                                kept.multiplier))
        if kept.threshold > tier.threshold:
            found.append(Change("tier_threshold_higher", tier.key, tier.threshold,
                                kept.threshold))
        if tier.birthday_coupon and (kept.birthday_coupon != tier.birthday_coupon or _worse(
                old.coupons[tier.birthday_coupon], new.coupons[tier.birthday_coupon])):
            found.append(Change("tier_birthday_gone", tier.key, tier.birthday_coupon, None))
        found += [Change("tier_benefit_gone", tier.key, line, None)
                  for line in tier.benefits if line not in kept.benefits]
    if (new.tier_window_months < old.tier_window_months
            or new.grace_months < old.grace_months
            or STRICTNESS[new.downgrade] > STRICTNESS[old.downgrade]):
        found.append(Change("tier_rules_stricter", "", None, None))
    return found
