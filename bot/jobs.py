"""Scheduled jobs as plain functions of (since, now), each safe to run twice or at once.

A job records when it last completed; the next run covers everything that fell due since
then (a clock that was down catches up). Nothing is sent twice because every grant and every
push carries a unique key in the database (an issue key, a notice, an outbox dedupe key),
not because the scheduler is trusted to run once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.db import transaction
from bot.line import formatting as fmt
from bot.line import messages
from bot.line.formatting import RenderContext
from bot.loyalty import daily
from bot.loyalty import dashboard as figures
from bot.loyalty.alerts import current as current_alerts
from bot.loyalty.alerts import linked_chats
from bot.loyalty.audiences import (
    active_members,
    birthday_members,
    cards_expiring,
    coupons_expiring,
    members_to_retier,
    near_points_goal,
    near_stamp_goal,
    points_expiring,
    points_spend_counts,
    winback_members,
    winback_still_due,
)
from bot.loyalty.campaigns import due_campaigns, issue_campaign_members, mark_campaign_sent
from bot.loyalty.coupons import CouponView, coupon_views, expire_due_coupons, issue_coupons
from bot.loyalty.errors import CouponWindowClosed
from bot.loyalty.idempotency import EVENTS_KEPT, forget_events
from bot.loyalty.import_queue import run_waiting
from bot.loyalty.job_runs import finish_run, start_run
from bot.loyalty.ledger import expire_due_points, lock_members
from bot.loyalty.notices import claim_notices
from bot.loyalty.rewards import available_rewards, within_reach
from bot.loyalty.segments import refresh_automatic_tags
from bot.loyalty.stamps import kept_rewards
from bot.loyalty.tiers import evaluate_tier, window_spends
from bot.loyalty.timeutil import local_date
from bot.loyalty.winback import begin_winback
from bot.models import Coupon, Member
from bot.outbox import enqueue_many
from bot.program import Program

log = logging.getLogger("bot.jobs")
CHUNK = 500


@dataclass
class JobContext:
    program: Program
    sessions: sessionmaker[Session]
    render: Callable[[str], RenderContext]  # member language -> how to render for them
    deliver: Callable[[dt.datetime], str] | None = None  # the outbox sender, when LINE is set


@dataclass(frozen=True)
class Job:
    name: str
    cron: dict[str, Any]  # APScheduler cron fields, in the program's timezone
    run: Callable[[JobContext, dt.datetime, dt.datetime], str]
    description: str
    at_start: bool = True  # run once when the clock starts (a long one waits for its cron)


def window_start(last: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """Catch up from the last completed run, and always look back at least a day."""
    day_ago = now - dt.timedelta(days=1)
    return min(last, day_ago) if last else day_ago


def run_job(rt: JobContext, job: Job, now: dt.datetime) -> str:
    """Run one job as of `now`, recording its start and completion."""
    with transaction(rt.sessions) as session:
        since = window_start(start_run(session, job.name, now), now)
    summary = job.run(rt, since, now)
    with transaction(rt.sessions) as session:
        finish_run(session, job.name, now, summary)
    log.info("job %s as of %s: %s", job.name, now.isoformat(), summary)
    return summary


def local_days(program: Program, since: dt.datetime, now: dt.datetime) -> Iterator[dt.date]:
    """The shop's local days after `since`'s day, up to and including `now`'s day."""
    day, last = local_date(since, program.timezone), local_date(now, program.timezone)
    while day < last:
        day += dt.timedelta(days=1)
        yield day


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _issue_to(session: Session, rt: JobContext, members: list[Member], template: str,
              now: dt.datetime, reason: str, keys: list[str]) -> list[Coupon | None]:
    """One template to locked members at once; a closed window or a cap is logged, not raised."""
    try:
        coupons = issue_coupons(session, rt.program, list(zip([m.id for m in members], keys,
                                                          strict=True)),
                                template, now, reason=reason)
    except CouponWindowClosed:
        log.warning("%s coupon %s not issued to %d members: its window has closed",
                    reason, template, len(members))
        return [None] * len(members)
    if capped := sum(coupon is None for coupon in coupons):
        log.warning("%s coupon %s not issued to %d members: cap reached", reason, template,
                    capped)
    return coupons


# -- birthday ----------------------------------------------------------------------------------
def birthday(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Give each member their tier's birthday coupon and a birthday card, once a year."""
    sent = 0
    for day in local_days(rt.program, since, now):
        with rt.sessions() as session:
            ids = birthday_members(session, rt.program, day)
        for chunk in _chunks(ids):
            with transaction(rt.sessions) as session:
                sent += _birthday_gifts(session, rt, chunk, day.year, now)
    return f"{sent} birthday messages queued"


def _birthday_gifts(session: Session, rt: JobContext, ids: list[int], year: int,
                    now: dt.datetime) -> int:
    by_template: dict[str, list[Member]] = {}
    for member in lock_members(session, ids):
        template = rt.program.tier(member.tier).birthday_coupon
        if template is not None and member.status == "active":
            by_template.setdefault(template, []).append(member)
    pushes = []
    for template, members in by_template.items():
        keys = [f"birthday:{m.id}:{year}" for m in members]
        for member, key, coupon in zip(members, keys, _issue_to(
                session, rt, members, template, now, "birthday", keys), strict=True):
            if coupon is not None:
                view = CouponView(coupon, rt.program.coupons[template])
                pushes.append((member, "birthday", key, messages.birthday_gift(
                    rt.render(member.language), member, view)))
    return enqueue_many(session, rt.program, pushes, now)


# -- expiry ------------------------------------------------------------------------------------
def expire(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Expire due points and coupons in chunks, so no lock is held for long."""
    members = points = coupons = 0
    while True:
        with transaction(rt.sessions) as session:
            batch_members, batch_points = expire_due_points(session, now, limit=CHUNK)
            batch_coupons = expire_due_coupons(session, now, limit=CHUNK)
        members, points, coupons = (members + batch_members, points + batch_points,
                                    coupons + batch_coupons)
        if not (batch_members or batch_coupons):
            return f"expired {points} points of {members} members and {coupons} coupons"


def expiry_warnings(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """One message per member for points (per lot, per horizon), an unfinished stamp card
    (per card, per horizon) and coupons about to expire."""
    program, due = rt.program, {}
    with rt.sessions() as session:
        for days in program.expiry_warning_days:
            horizon = now + dt.timedelta(days=days)
            for lot_id, member_id, expires, points in points_expiring(session, now, horizon):
                due.setdefault(member_id, {})[f"lot:{lot_id}:{days}"] = (expires, points)
            for card_id, member_id, expires, stamps, goal in cards_expiring(session, now,
                                                                            horizon):
                due.setdefault(member_id, {})[f"card:{card_id}:{days}"] = (expires, stamps, goal)
        horizon = now + dt.timedelta(days=program.coupon_warning_days)
        for coupon_id, member_id in coupons_expiring(session, now, horizon):
            due.setdefault(member_id, {})[f"coupon:{coupon_id}"] = coupon_id
    sent = 0
    for chunk in _chunks(sorted(due)):
        with transaction(rt.sessions) as session:
            sent += _warn(session, rt, {member_id: due[member_id] for member_id in chunk}, now)
    return f"{sent} expiry warnings queued"


def _warn(session: Session, rt: JobContext, due: dict[int, dict], now: dt.datetime) -> int:
    fresh = claim_notices(session, [(key, member_id) for member_id, items in due.items()
                                    for key in items], now)
    members = active_members(session, [m for m, items in due.items() if fresh & items.keys()])
    views = coupon_views(session, rt.program, [
        cid for m in members for key, cid in due[m].items()
        if key in fresh and key.startswith("coupon:")])
    tz, pushes = rt.program.timezone, []
    rewards = available_rewards(session, rt.program, now)
    for member_id, member in members.items():
        items = {key: value for key, value in due[member_id].items() if key in fresh}
        by_day: dict[dt.date, int] = {}
        for key, value in items.items():
            if key.startswith("lot:"):
                day = local_date(value[0] - dt.timedelta(microseconds=1), tz)
                by_day[day] = by_day.get(day, 0) + value[1]
        coupons = sorted((views[cid] for key, cid in items.items() if key.startswith("coupon:")),
                         key=lambda v: (v.coupon.valid_until, v.coupon.id))
        card = next(((local_date(v[0] - dt.timedelta(microseconds=1), tz), v[1], v[2])
                     for key, v in items.items() if key.startswith("card:")), None)
        digest = hashlib.sha256("|".join(sorted(items)).encode()).hexdigest()[:16]
        pushes.append((member, "expiry_warning", f"expiry:{member_id}:{digest}",
                       messages.expiry_warning(rt.render(member.language), member,
                                               sorted(by_day.items()), coupons, card,
                                               within_reach(rewards, member.points_balance))))
    return enqueue_many(session, rt.program, pushes, now)


# -- nudges ------------------------------------------------------------------------------------
def nudges(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """'2 more stamps for a free drink!': one nudge per crossing, not one every day; nudges
    are marketing, so none for staff (bot.loyalty.audiences)."""
    program, sent = rt.program, 0
    targets = sorted({m.at for m in program.stamps.milestones} | {program.stamps.goal})
    with rt.sessions() as session:
        rewards = sorted(available_rewards(session, program, now), key=lambda r: r.points)
        cards = near_stamp_goal(session, targets, program.nudge_stamps)
        near = near_points_goal(session, [r.points for r in rewards], program.nudge_points)
    wanted = []  # (notice key, member id, 'stamps' or 'points', how many to go, coupon template)
    for card_id, member_id, stamps, goal, kept in cards:
        own = kept_rewards(program, goal, kept)  # the card's own: a program change moves none
        target = min((at for at in (*own, goal) if at > stamps), default=None)
        if target is None or target - stamps > program.nudge_stamps:
            continue  # near one of today's targets, but not one of this card's
        reward = own.get(target, "")
        wanted.append((f"nudge:card:{card_id}:{target}", member_id, "stamps", target - stamps,
                       reward if reward in program.coupons else ""))
    for chunk in _chunks(near):
        with rt.sessions() as session:  # a new crossing after every points redemption
            spends = points_spend_counts(session, [m for m, _ in chunk])
        for member_id, balance in chunk:
            reward = next(r for r in rewards if r.points > balance)
            wanted.append((f"nudge:points:{member_id}:{reward.key}:{spends.get(member_id, 0)}",
                           member_id, "points", reward.points - balance, reward.coupon))
    for chunk in _chunks([w for w in wanted if w[4]]):
        with transaction(rt.sessions) as session:
            sent += _nudge(session, rt, chunk, now)
    return f"{sent} nudges queued"


def _nudge(session: Session, rt: JobContext, wanted: list[tuple], now: dt.datetime) -> int:
    fresh = claim_notices(session, [(key, member_id) for key, member_id, *_ in wanted], now)
    members = active_members(session, [member_id for key, member_id, *_ in wanted
                                       if key in fresh])
    pushes = []
    for key, member_id, what, remaining, template in wanted:
        if key in fresh and (member := members.get(member_id)):
            ctx, coupon = rt.render(member.language), rt.program.coupons[template]
            title = coupon.title_en if ctx.lang == "en" else coupon.title
            pushes.append((member, "nudge", key,
                           messages.nudge(ctx, member, what, remaining, title)))
    return enqueue_many(session, rt.program, pushes, now)


# -- win-back and tiers ------------------------------------------------------------------------
def winback(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """A comeback coupon and double points next time, once per dormant spell."""
    program = rt.program
    if not program.winback_after_days or not program.winback_coupon:
        return "win-back is off"
    with rt.sessions() as session:
        ids = winback_members(session, program, now)
    sent = 0
    for chunk in _chunks(ids):
        with transaction(rt.sessions) as session:
            sent += _win_back(session, rt, chunk, now)
    return f"{sent} win-back messages queued"


def _win_back(session: Session, rt: JobContext, ids: list[int], now: dt.datetime) -> int:
    template = rt.program.coupons[rt.program.winback_coupon]
    locked = lock_members(session, ids)  # asked again under the lock: one may have bought
    due = winback_still_due(session, rt.program, now, ids)
    members = [m for m in locked if m.id in due]
    keys = [f"winback:{m.id}:{due[m.id].isoformat()}" for m in members]
    coupons = _issue_to(session, rt, members, template.key, now, "winback", keys)
    won = [(m, key) for m, key, coupon in zip(members, keys, coupons, strict=True)
           if coupon is not None]
    begin_winback(session, [m for m, _ in won], now)
    pushes = []
    for member, key in won:
        ctx = rt.render(member.language)
        title = template.title_en if ctx.lang == "en" else template.title
        pushes.append((member, "winback", key, messages.text(ctx, "winback", title=title)))
    return enqueue_many(session, rt.program, pushes, now)


def tiers(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Re-evaluate members above the first tier (downgrades); tell those who changed."""
    with rt.sessions() as session:
        ids = members_to_retier(session, rt.program)
    changed = 0
    for chunk in _chunks(ids):
        with transaction(rt.sessions) as session:
            changed += _retier(session, rt, chunk, now)
    return f"{changed} tier changes"


def _retier(session: Session, rt: JobContext, ids: list[int], now: dt.datetime) -> int:
    members = lock_members(session, ids)
    spends = window_spends(session, rt.program, ids, now)
    pushes = []
    for member in members:
        change = evaluate_tier(session, rt.program, member, now, spends.get(member.id, 0))
        if change is None:
            continue
        tier, ctx = change.new, rt.render(member.language)
        pushes.append((member, "tier", f"tier:{member.id}:{now.date()}:{tier.key}",
                       messages.tier_news(ctx, tier, change.upgraded)))
    enqueue_many(session, rt.program, pushes, now)
    return len(pushes)


def tags(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Recompute the automatic tags (new, active, dormant, vip, birthday_month)."""
    with transaction(rt.sessions) as session:
        counts = refresh_automatic_tags(session, rt.program, now)
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def send_campaign(rt: JobContext, key: str, now: dt.datetime) -> str:
    """Give an issue campaign's coupon to its segment, a chunk per transaction, and queue
    one identical text per language (so the sender multicasts it). Safe to run again: a
    member who has the coupon is skipped, and nobody is messaged twice."""
    with rt.sessions() as session:
        campaign, ids = issue_campaign_members(session, key)
    template = rt.program.coupons[campaign.template]
    given = sent = 0
    for chunk in _chunks(ids):
        with transaction(rt.sessions) as session:
            members = [m for m in lock_members(session, chunk) if m.status == "active"]
            keys = [f"campaign:{key}:{m.id}" for m in members]
            coupons = _issue_to(session, rt, members, template.key, now, f"campaign:{key}",
                                keys)
            given += sum(c is not None for c in coupons)
            if campaign.push:
                pushes = []
                for member, issue_key, coupon in zip(members, keys, coupons, strict=True):
                    if coupon is not None:
                        ctx = rt.render(member.language)
                        pushes.append((member, "campaign", issue_key, messages.text(
                            ctx, "campaign_gift", name=fmt.readable(ctx, campaign.name),
                            title=fmt.title(ctx, template))))
                sent += enqueue_many(session, rt.program, pushes, now)
    with transaction(rt.sessions) as session:
        mark_campaign_sent(session, key, now)
    return f"{key}: {given} of {len(ids)} members have the coupon; {sent} messages queued"


def campaigns(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Send the campaigns whose scheduled time has come. A second clock, or a run after a
    crash halfway, sends the same campaign again: send_campaign skips every member who has
    its coupon, so each is given (and messaged) once; a campaign leaves the list once sent."""
    with transaction(rt.sessions) as session:
        keys = due_campaigns(session, now)
    return "; ".join(send_campaign(rt, key, now) for key in keys) or "no campaign due"


def alerts(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Tell each owner who linked their LINE chat what needs them: one message a shop day
    at most (its dedupe key), through the outbox, billed like any push. The clock's own
    health is left out: a clock that runs this has not stopped (the console's banner says
    when it has)."""
    with transaction(rt.sessions) as session:
        found = [(a.kind, a.values) for a in current_alerts(session, rt.program, now)
                 if not a.kind.startswith("clock")]
        day = local_date(now, rt.program.timezone).isoformat()
        pushes = [(member, "owner_alert", f"owner-alert:{account.id}:{day}",
                   messages.owner_alerts(rt.render(member.language), found))
                  for account, member in (linked_chats(session) if found else [])]
        queued = enqueue_many(session, rt.program, pushes, now)
    return f"{len(found)} alerts; {queued} owners told"


def send(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Deliver pending pushes (bot.outbox.sender); a no-op without a LINE channel."""
    if rt.deliver is None:
        return "LINE is not configured: nothing sent"
    return rt.deliver(now)


def imports(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Import the members files uploaded in the console (bot.loyalty.import_queue)."""
    return run_waiting(rt.sessions, rt.program)


def dashboard(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Bring the console dashboard's daily figures up to date (bot.loyalty.daily)."""
    with transaction(rt.sessions) as session:
        return daily.refresh(session, rt.program, now)


FORGET_CHUNK = 5_000  # webhook events forgotten per transaction (see tidy)


def tidy(rt: JobContext, since: dt.datetime, now: dt.datetime) -> str:
    """Forget webhook events handled more than EVENTS_KEPT ago (idempotency.forget_events),
    a few thousand per transaction: on SQLite the webhook waits for each one's write lock."""
    before, forgotten = now - EVENTS_KEPT, 0
    while True:
        with transaction(rt.sessions) as session:
            done = forget_events(session, before, FORGET_CHUNK)
        forgotten += done
        if done < FORGET_CHUNK:
            return f"forgot {forgotten} webhook events handled before {before:%Y-%m-%d %H:%M} UTC"


JOBS: dict[str, Job] = {job.name: job for job in (
    Job("campaigns", {"minute": "*"}, campaigns, "send campaigns whose scheduled time came"),
    Job("send", {"minute": "*"}, send, "deliver queued pushes (quiet hours, budget, retries)"),
    Job("alerts", {"minute": "*/15"}, alerts,
        "a LINE message to owners who linked their chat, once a day, when something is wrong"),
    Job("expire", {"hour": 0, "minute": 5}, expire, "expire points and coupons past validity"),
    Job("birthday", {"hour": 9, "minute": 0}, birthday, "birthday coupon and card"),
    Job("expiry-warnings", {"hour": 10, "minute": 0}, expiry_warnings,
        "warn before points and coupons expire"),
    Job("nudges", {"hour": 11, "minute": 0}, nudges, "near a stamp or points reward"),
    Job("winback", {"hour": 15, "minute": 0}, winback, "comeback coupon for dormant members"),
    Job("tiers", {"hour": 3, "minute": 0}, tiers, "re-evaluate tiers and downgrades"),
    Job("tags", {"hour": 2, "minute": 30}, tags, "recompute automatic tags for segments"),
    Job("dashboard", {"minute": f"*/{figures.EVERY_MINUTES}"}, dashboard,
        "the console dashboard's daily figures"),
    Job("tidy", {"hour": 4, "minute": 30}, tidy,
        f"forget webhook events handled more than {EVENTS_KEPT.days} days ago"),
    Job("imports", {"minute": "*"}, imports, "import members files uploaded in the console",
        at_start=False),
)}
