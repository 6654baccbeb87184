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

from sqlalchemy import extract, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.db import transaction
from bot.line import messages
from bot.line.formatting import RenderContext
from bot.loyalty.coupons import expire_due_coupons, find_coupon, issue_coupon
from bot.loyalty.errors import CapReached, CouponWindowClosed
from bot.loyalty.ledger import expire_due_points, lock_member
from bot.loyalty.tiers import evaluate_tier
from bot.loyalty.timeutil import local_date
from bot.models import Coupon, JobRun, Member, Notice, PointEntry, StampCard
from bot.outbox import enqueue
from bot.program import Program

log = logging.getLogger("bot.jobs")
CHUNK = 500


@dataclass
class Runtime:
    program: Program
    sessions: sessionmaker[Session]
    render: Callable[[str], RenderContext]  # member language -> how to render for them
    deliver: Callable[[dt.datetime], str] | None = None  # the outbox sender, when LINE is set


@dataclass(frozen=True)
class Job:
    name: str
    cron: dict[str, Any]  # APScheduler cron fields, in the program's timezone
    run: Callable[[Runtime, dt.datetime, dt.datetime], str]
    description: str


def window_start(last: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """Catch up from the last completed run, and always look back at least a day."""
    day_ago = now - dt.timedelta(days=1)
    return min(last, day_ago) if last else day_ago


def run_job(rt: Runtime, job: Job, now: dt.datetime) -> str:
    """Run one job as of `now`, recording its start and completion."""
    with transaction(rt.sessions) as session:
        row = session.get(JobRun, job.name)
        if row is None:
            try:
                with session.begin_nested():
                    row = JobRun(name=job.name)
                    session.add(row)
            except IntegrityError:  # another clock made it first
                row = session.get(JobRun, job.name)
        since = window_start(row.last_completed_at, now)
        row.last_started_at = now
    summary = job.run(rt, since, now)
    with transaction(rt.sessions) as session:
        row = session.get(JobRun, job.name)
        if row.last_completed_at is None or row.last_completed_at < now:
            row.last_completed_at = now
        row.last_summary = summary[:1000]
    log.info("job %s as of %s: %s", job.name, now.isoformat(), summary)
    return summary


def local_days(program: Program, since: dt.datetime, now: dt.datetime) -> Iterator[dt.date]:
    """The shop's local days after `since`'s day, up to and including `now`'s day."""
    day, last = local_date(since, program.timezone), local_date(now, program.timezone)
    while day < last:
        day += dt.timedelta(days=1)
        yield day


def _push(session: Session, rt: Runtime, member: Member, kind: str, key: str,
          build: Callable[[RenderContext], list[dict]], now: dt.datetime) -> bool:
    payload = build(rt.render(member.language))
    return bool(payload) and enqueue(session, member, kind, key, payload, now) is not None


# -- birthday ----------------------------------------------------------------------------------
def birthday_members(session: Session, program: Program, day: dt.date) -> list[int]:
    """Members celebrating on `day`: their birthday, or the 1st of the month in month mode.
    A Feb 29 birthday is celebrated on Feb 28 in other years."""
    month, dom = extract("month", Member.birthday), extract("day", Member.birthday)
    if program.birthday_when == "month":
        if day.day != 1:
            return []
        match = month == day.month
    else:
        match = (month == day.month) & (dom == day.day)
        if (day.month, day.day) == (2, 28) and not _leap(day.year):
            match = match | ((month == 2) & (dom == 29))
    return list(session.scalars(select(Member.id).where(
        match, Member.status == "active", Member.line_user_id.is_not(None))
        .order_by(Member.id)))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthday(rt: Runtime, since: dt.datetime, now: dt.datetime) -> str:
    """Give each member their tier's birthday coupon and a birthday card, once a year."""
    sent = 0
    for day in local_days(rt.program, since, now):
        with rt.sessions() as session:
            ids = birthday_members(session, rt.program, day)
        for member_id in ids:
            with transaction(rt.sessions) as session:
                sent += _birthday_gift(session, rt, member_id, day.year, now)
    return f"{sent} birthday messages queued"


def _birthday_gift(session: Session, rt: Runtime, member_id: int, year: int,
                   now: dt.datetime) -> int:
    member = lock_member(session, member_id)
    template = rt.program.tier(member.tier).birthday_coupon
    if template is None:
        return 0
    try:
        coupon = issue_coupon(session, rt.program, member.id, template, now, reason="birthday",
                              issue_key=f"birthday:{member.id}:{year}")
    except (CapReached, CouponWindowClosed) as exc:
        log.warning("birthday coupon for member %s not issued: %s", member.id, exc.code)
        return 0
    view = find_coupon(session, rt.program, coupon.code)
    return int(_push(session, rt, member, "birthday", f"birthday:{member.id}:{year}",
                     lambda ctx: messages.birthday_gift(ctx, member, view), now))


# -- expiry ------------------------------------------------------------------------------------
def expire(rt: Runtime, since: dt.datetime, now: dt.datetime) -> str:
    """Expire due points and coupons in small transactions, so no lock is held for long."""
    members = points = coupons = 0
    while True:
        with transaction(rt.sessions) as session:
            batch_members, batch_points = expire_due_points(session, now, limit=CHUNK // 5)
            batch_coupons = expire_due_coupons(session, now, limit=CHUNK)
        members, points, coupons = (members + batch_members, points + batch_points,
                                    coupons + batch_coupons)
        if not (batch_members or batch_coupons):
            return f"expired {points} points of {members} members and {coupons} coupons"


def _notice(session: Session, member_id: int, keys: list[str], now: dt.datetime) -> bool:
    """Claim these notices for a member; False if any was already given (maybe just now)."""
    try:
        with session.begin_nested():
            session.add_all([Notice(key=key, member_id=member_id, created_at=now)
                             for key in keys])
    except IntegrityError:
        return False
    return True


def expiry_warnings(rt: Runtime, since: dt.datetime, now: dt.datetime) -> str:
    """One message per member for points (per lot, per horizon) and coupons about to expire."""
    program, due = rt.program, {}
    with rt.sessions() as session:
        for days in program.expiry_warning_days:
            horizon = now + dt.timedelta(days=days)
            for lot_id, member_id, expires, points in session.execute(
                    select(PointEntry.id, PointEntry.member_id, PointEntry.expires_at,
                           PointEntry.remaining)
                    .where(PointEntry.remaining > 0, PointEntry.expires_at > now,
                           PointEntry.expires_at <= horizon)):
                due.setdefault(member_id, {})[f"lot:{lot_id}:{days}"] = (expires, points)
        horizon = now + dt.timedelta(days=program.coupon_warning_days)
        for coupon_id, member_id in session.execute(
                select(Coupon.id, Coupon.member_id).where(
                    Coupon.status == "issued", Coupon.valid_until > now,
                    Coupon.valid_until <= horizon)):
            due.setdefault(member_id, {})[f"coupon:{coupon_id}"] = coupon_id
    sent = 0
    for member_id, items in due.items():
        with transaction(rt.sessions) as session:
            sent += _warn(session, rt, member_id, items, now)
    return f"{sent} expiry warnings queued"


def _warn(session: Session, rt: Runtime, member_id: int, items: dict, now: dt.datetime) -> int:
    given = set(session.scalars(select(Notice.key).where(Notice.key.in_(list(items)))))
    fresh = {key: value for key, value in items.items() if key not in given}
    if not fresh or not _notice(session, member_id, sorted(fresh), now):
        return 0
    member = session.get(Member, member_id)
    if member.status != "active":
        return 0
    tz, by_day = rt.program.timezone, {}
    for key, value in fresh.items():
        if key.startswith("lot:"):
            day = local_date(value[0] - dt.timedelta(microseconds=1), tz)
            by_day[day] = by_day.get(day, 0) + value[1]
    coupons = [find_coupon(session, rt.program, session.get(Coupon, cid).code)
               for key, cid in fresh.items() if key.startswith("coupon:")]
    digest = hashlib.sha256("|".join(sorted(fresh)).encode()).hexdigest()[:16]
    return int(_push(session, rt, member, "expiry_warning", f"expiry:{member_id}:{digest}",
                     lambda ctx: messages.expiry_warning(ctx, member, sorted(by_day.items()),
                                                         coupons), now))


# -- nudges ------------------------------------------------------------------------------------
def nudges(rt: Runtime, since: dt.datetime, now: dt.datetime) -> str:
    """'2 more stamps for a free drink!': one nudge per crossing, not one every day."""
    program, sent = rt.program, 0
    targets = sorted({m.at for m in program.stamps.milestones} | {program.stamps.goal})
    with rt.sessions() as session:
        cards = session.execute(
            select(StampCard.id, StampCard.member_id, StampCard.stamps)
            .join(Member, Member.id == StampCard.member_id)
            .where(StampCard.status == "active", Member.status == "active",
                   or_(*[StampCard.stamps.between(t - program.nudge_stamps, t - 1)
                         for t in targets]))).all()
        rewards = sorted(program.rewards, key=lambda r: r.points)
        near = session.execute(select(Member.id, Member.points_balance).where(
            Member.status == "active", or_(*[Member.points_balance.between(
                r.points - program.nudge_points, r.points - 1) for r in rewards]))).all() \
            if rewards else []
    for card_id, member_id, stamps in cards:
        target = next(t for t in targets if t > stamps)
        reward = _card_reward(program, target)
        with transaction(rt.sessions) as session:
            sent += _nudge(session, rt, member_id, f"nudge:card:{card_id}:{target}", "stamps",
                           target - stamps, reward, now)
    for member_id, balance in near:
        reward = next(r for r in rewards if r.points > balance)
        with transaction(rt.sessions) as session:
            spends = session.scalar(select(func.count()).select_from(PointEntry).where(
                PointEntry.member_id == member_id, PointEntry.kind == "spend"))
            sent += _nudge(session, rt, member_id,
                           f"nudge:points:{member_id}:{reward.id}:{spends}", "points",
                           reward.points - balance, reward.coupon, now)
    return f"{sent} nudges queued"


def _card_reward(program: Program, target: int) -> str:
    milestone = next((m for m in program.stamps.milestones if m.at == target), None)
    return milestone.reward if milestone else program.stamps.completion_reward or ""


def _nudge(session: Session, rt: Runtime, member_id: int, key: str, what: str, remaining: int,
           template: str, now: dt.datetime) -> int:
    if not template or not _notice(session, member_id, [key], now):
        return 0
    member = session.get(Member, member_id)
    coupon = rt.program.coupons[template]

    def build(ctx: RenderContext) -> list[dict]:
        title = coupon.title_en if ctx.lang == "en" else coupon.title
        return messages.nudge(ctx, member, what, remaining, title)
    return int(_push(session, rt, member, "nudge", key, build, now))


# -- win-back and tiers ------------------------------------------------------------------------
def winback(rt: Runtime, since: dt.datetime, now: dt.datetime) -> str:
    """A comeback coupon and double points next time, once per dormant spell."""
    program = rt.program
    if not program.winback_after_days or not program.winback_coupon:
        return "win-back is off"
    last_seen = func.coalesce(Member.last_purchase_at, Member.joined_at)
    with rt.sessions() as session:
        ids = list(session.scalars(select(Member.id).where(
            Member.status == "active", Member.line_user_id.is_not(None),
            last_seen <= now - dt.timedelta(days=program.winback_after_days),
            or_(Member.winback_sent_at.is_(None), Member.winback_sent_at < last_seen))))
    sent = 0
    for member_id in ids:
        with transaction(rt.sessions) as session:
            sent += _win_back(session, rt, member_id, now)
    return f"{sent} win-back messages queued"


def _win_back(session: Session, rt: Runtime, member_id: int, now: dt.datetime) -> int:
    member = lock_member(session, member_id)
    spell = (member.last_purchase_at or member.joined_at).isoformat()
    try:
        issue_coupon(session, rt.program, member.id, rt.program.winback_coupon, now,
                     reason="winback", issue_key=f"winback:{member.id}:{spell}")
    except (CapReached, CouponWindowClosed) as exc:
        log.warning("win-back coupon for member %s not issued: %s", member.id, exc.code)
        return 0
    member.winback_sent_at, member.bonus_multiplier = now, 2
    template = rt.program.coupons[rt.program.winback_coupon]

    def build(ctx: RenderContext) -> list[dict]:
        title = template.title_en if ctx.lang == "en" else template.title
        return messages.text(ctx, "winback", title=title)
    return int(_push(session, rt, member, "winback", f"winback:{member.id}:{spell}", build, now))


def tiers(rt: Runtime, since: dt.datetime, now: dt.datetime) -> str:
    """Re-evaluate members above the first tier (downgrades); tell those who changed."""
    base = rt.program.tiers[0].key
    with rt.sessions() as session:
        ids = list(session.scalars(select(Member.id).where(Member.tier != base)))
    changed = 0
    for member_id in ids:
        with transaction(rt.sessions) as session:
            member = lock_member(session, member_id)
            change = evaluate_tier(session, rt.program, member, now)
            if change is None:
                continue
            changed += 1
            tier = change.new
            key = "tier_up" if change.upgraded else "tier_down"
            _push(session, rt, member, "tier", f"tier:{member.id}:{now.date()}:{tier.key}",
                  lambda ctx, t=tier, k=key: messages.text(
                      ctx, k, tier=t.name_en if ctx.lang == "en" else t.name), now)
    return f"{changed} tier changes"


def send(rt: Runtime, since: dt.datetime, now: dt.datetime) -> str:
    """Deliver pending pushes (bot.line.sender); a no-op without a LINE channel."""
    if rt.deliver is None:
        return "LINE is not configured: nothing sent"
    return rt.deliver(now)


JOBS: dict[str, Job] = {job.name: job for job in (
    Job("send", {"minute": "*"}, send, "deliver queued pushes (quiet hours, budget, retries)"),
    Job("expire", {"hour": 0, "minute": 5}, expire, "expire points and coupons past validity"),
    Job("birthday", {"hour": 9, "minute": 0}, birthday, "birthday coupon and card"),
    Job("expiry-warnings", {"hour": 10, "minute": 0}, expiry_warnings,
        "warn before points and coupons expire"),
    Job("nudges", {"hour": 11, "minute": 0}, nudges, "near a stamp or points reward"),
    Job("winback", {"hour": 15, "minute": 0}, winback, "comeback coupon for dormant members"),
    Job("tiers", {"hour": 3, "minute": 0}, tiers, "re-evaluate tiers and downgrades"),
)}
