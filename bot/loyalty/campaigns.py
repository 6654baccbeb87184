"""Campaigns: one coupon template for a segment, given at once or claimed until a cap.

Each member gets a campaign's coupon at most once (the issue key `campaign:<key>:<member>`),
and a claim campaign never gives out more than its cap: the claim counter moves with a
conditional UPDATE in the same transaction as the coupon.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.audiences import may_market
from bot.loyalty.coupons import issue_coupon
from bot.loyalty.errors import (
    AlreadyClaimed,
    CampaignCapInvalid,
    CampaignError,
    CampaignFull,
    CampaignKeyInvalid,
    CampaignKeyTaken,
    CampaignKeywordInvalid,
    CampaignKeywordTaken,
    CampaignNoSchedule,
    CampaignNotClaim,
    CampaignNotOpen,
    CampaignNotScheduled,
    CampaignSending,
    CampaignTimePassed,
    NotInSegment,
    UnknownCampaign,
)
from bot.loyalty.ledger import lock_member
from bot.loyalty.report import coupons_by_reason
from bot.loyalty.segments import needs_automatic_tags, refresh_automatic_tags, segment_filter
from bot.models import Campaign, Coupon, Member
from bot.program import Program

KEY = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")


@dataclass(frozen=True)
class Reach:
    members: int  # who get the coupon
    pushes: int  # of them, who can be messaged in LINE (LINE bills each recipient)


def keyword_of(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip().lower()


def create_campaign(session: Session, program: Program, key: str, *, template: str,
                    now: dt.datetime, name: str = "", segment: str = "",
                    keyword: str | None = None, cap: int | None = None,
                    push: bool = False, actor: str = "owner") -> Campaign:
    """A draft campaign; with a keyword (or a cap) it is a claim campaign."""
    if not KEY.fullmatch(key or ""):
        raise CampaignKeyInvalid(key=key)
    if template not in program.coupons:
        raise CampaignError(detail=f"no coupon template {template!r}; the program has: "
                                   f"{', '.join(program.coupons)}")
    if session.scalar(select(Campaign.id).where(Campaign.key == key)) is not None:
        raise CampaignKeyTaken(key=key)
    if needs_automatic_tags(session, segment):  # a fresh database: the tags job never ran
        refresh_automatic_tags(session, program, now)
    segment_filter(session, segment)  # refuse a segment that cannot be read, now
    claim = keyword is not None or cap is not None
    if cap is not None and cap < 1:
        raise CampaignCapInvalid()
    if keyword is not None:
        keyword = keyword_of(keyword)
        if not keyword or len(keyword) > 64 or " " in keyword:
            raise CampaignKeywordInvalid()
        if session.scalar(select(Campaign.id).where(Campaign.keyword == keyword)):
            raise CampaignKeywordTaken(keyword=keyword)
    title = program.coupons[template].title
    campaign = Campaign(key=key, name=name.strip() or title, template=template,
                        segment=segment.strip(), mode="claim" if claim else "issue",
                        keyword=keyword, cap=cap, push=push, created_at=now)
    session.add(campaign)
    session.flush()
    audit.record(session, "campaign.create", member_id=None, actor=actor, at=now,
                 campaign=key, template=template, segment=segment, mode=campaign.mode)
    return campaign


def find_campaign(session: Session, key: str, *, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.key == key)
    campaign = session.scalar(query.with_for_update() if lock else query)
    if campaign is None:
        raise UnknownCampaign()
    return campaign


def all_campaigns(session: Session) -> list[Campaign]:
    """Every campaign, oldest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.id)))


def audience(session: Session, campaign: Campaign):
    """The members a campaign is for: active, in its segment, in id order (a SELECT). An
    issue campaign is marketing and leaves out staff and members who stopped marketing; a
    claim campaign is asked for with its keyword, so a staff member who is also a customer
    (or a member who stopped marketing) may claim it."""
    rules = [Member.status == "active", segment_filter(session, campaign.segment)]
    if campaign.mode == "issue":
        rules.append(may_market())
    return select(Member.id).where(*rules).order_by(Member.id)


def reach(session: Session, campaign: Campaign) -> Reach:
    """How many members a campaign gives a coupon to, and how many pushes that costs."""
    ids = audience(session, campaign).order_by(None).subquery()
    members = session.scalar(select(func.count()).select_from(ids))
    pushes = session.scalar(select(func.count()).select_from(Member).where(
        Member.id.in_(select(ids.c.id)), Member.line_user_id.is_not(None))) \
        if campaign.push else 0
    return Reach(members, pushes)


def would_reach(session: Session, *, segment: str, mode: str, push: bool) -> Reach:
    """What a campaign not made yet would reach (the console's count as its form changes)."""
    return reach(session, Campaign(segment=segment, mode=mode, push=push))


def set_status(session: Session, campaign: Campaign, status: str, now: dt.datetime, *,
               actor: str = "owner") -> None:
    if campaign.mode == "claim" and status not in ("open", "closed"):
        raise CampaignError(detail="a claim campaign is opened or closed")
    if campaign.mode == "issue" and status in ("open", "closed"):
        raise CampaignNotClaim(name=campaign.name)
    campaign.status = status
    audit.record(session, f"campaign.{status}", member_id=None, actor=actor, at=now,
                 campaign=campaign.key)


def find_by_keyword(session: Session, text: str) -> Campaign | None:
    word = keyword_of(text)
    return session.scalar(select(Campaign).where(Campaign.keyword == word)) if word else None


def claim(session: Session, program: Program, campaign: Campaign, member_id: int,
          now: dt.datetime, *, actor: str) -> Coupon:
    """A member claims a claim campaign's coupon: once each, never beyond the cap."""
    member = lock_member(session, member_id)
    if campaign.status != "open":
        raise CampaignNotOpen(name=campaign.name)
    key = f"campaign:{campaign.key}:{member.id}"
    if session.scalar(select(Coupon.id).where(Coupon.issue_key == key)) is not None:
        raise AlreadyClaimed(name=campaign.name)
    if not session.scalar(audience(session, campaign).where(Member.id == member.id)):
        raise NotInSegment()
    taken = session.execute(
        update(Campaign).where(Campaign.id == campaign.id, Campaign.status == "open",
                               (Campaign.cap.is_(None)) | (Campaign.claimed < Campaign.cap))
        .values(claimed=Campaign.claimed + 1).execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise CampaignFull(name=campaign.name)
    return issue_coupon(session, program, member.id, campaign.template, now,
                        reason=f"campaign:{campaign.key}", actor=actor, issue_key=key)


def issue_campaign_members(session: Session, key: str) -> tuple[Campaign, list[int]]:
    """An issue campaign and its members' ids, in id order; a claim campaign is refused
    (members ask for it with its keyword)."""
    campaign = find_campaign(session, key)
    if campaign.mode != "issue":
        raise CampaignError(detail=f"{key} is a claim campaign: open it instead")
    return campaign, list(session.scalars(audience(session, campaign)))


def mark_campaign_sent(session: Session, key: str, now: dt.datetime) -> None:
    """A draft campaign becomes sent as of `now`; one sent before keeps its first date."""
    campaign = find_campaign(session, key, lock=True)
    if campaign.status == "draft":
        campaign.status, campaign.sent_at = "sent", now
    session.flush()


def schedule(session: Session, key: str, at: dt.datetime, now: dt.datetime, *,
             actor: str) -> Campaign:
    """The clock sends draft issue campaign `key` once `at` has come (`at` = `now`: at its
    next minute). A new time replaces the old one until the old one has come."""
    campaign = find_campaign(session, key, lock=True)
    if campaign.mode != "issue" or campaign.status != "draft":
        raise CampaignNotScheduled(name=campaign.name)
    if campaign.scheduled_at is not None and campaign.scheduled_at <= now:
        raise CampaignSending(name=campaign.name)
    if at < now:
        raise CampaignTimePassed(when=at.isoformat(timespec="minutes"))
    campaign.scheduled_at = at
    audit.record(session, "campaign.schedule", member_id=None, actor=actor, at=now,
                 campaign=key, scheduled_at=at.isoformat())
    return campaign


def cancel_schedule(session: Session, key: str, now: dt.datetime, *, actor: str) -> Campaign:
    """Take back a campaign's schedule before its time; once the time has come the clock is
    sending it (CampaignSending). The row lock orders this against the clock's pick."""
    campaign = find_campaign(session, key, lock=True)
    if campaign.status != "draft" or campaign.scheduled_at is None:
        raise CampaignNoSchedule(name=campaign.name)
    if campaign.scheduled_at <= now:
        raise CampaignSending(name=campaign.name)
    audit.record(session, "campaign.unschedule", member_id=None, actor=actor, at=now,
                 campaign=key, scheduled_at=campaign.scheduled_at.isoformat())
    campaign.scheduled_at = None
    return campaign


def due_campaigns(session: Session, now: dt.datetime) -> list[str]:
    """Keys of the draft issue campaigns whose time has come, earliest first (locked, so a
    cancel waits for this transaction and then finds the time passed)."""
    return list(session.scalars(
        select(Campaign.key).where(Campaign.mode == "issue", Campaign.status == "draft",
                                   Campaign.scheduled_at <= now)
        .order_by(Campaign.scheduled_at, Campaign.id).with_for_update()))


@dataclass(frozen=True)
class Results:
    issued: int  # coupons given
    claimed: int | None  # a claim campaign's claims (None: an issue campaign)
    redeemed: int  # of them, used (voids not counted)
    orders: int  # purchases those redemptions were part of
    revenue: int  # their amounts, net of refunds


EVER = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 1, 1, tzinfo=dt.UTC))


def results(session: Session, listed: list[Campaign]) -> dict[str, Results]:
    """Each campaign's figures so far, by key: the report's coupon figures for its coupons
    (reason `campaign:<key>`), over all time."""
    rows = coupons_by_reason(session, [f"campaign:{c.key}" for c in listed], *EVER)
    return {c.key: Results(issued=row.issued, redeemed=row.redeemed,
                           claimed=c.claimed if c.mode == "claim" else None,
                           orders=row.attributed_orders, revenue=row.attributed_revenue)
            for c, row in zip(listed, rows.values(), strict=True)}
