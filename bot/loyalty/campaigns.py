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
    CampaignError,
    CampaignFull,
    CampaignNotOpen,
    NotInSegment,
    UnknownCampaign,
)
from bot.loyalty.ledger import lock_member
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
                    push: bool = False) -> Campaign:
    """A draft campaign; with a keyword (or a cap) it is a claim campaign."""
    if not KEY.fullmatch(key or ""):
        raise CampaignError(detail=f"{key!r}: a key is lower-case letters, digits, _ and -")
    if template not in program.coupons:
        raise CampaignError(detail=f"no coupon template {template!r}; the program has: "
                                   f"{', '.join(program.coupons)}")
    if session.scalar(select(Campaign.id).where(Campaign.key == key)) is not None:
        raise CampaignError(detail=f"a campaign {key!r} exists already")
    if needs_automatic_tags(session, segment):  # a fresh database: the tags job never ran
        refresh_automatic_tags(session, program, now)
    segment_filter(session, segment)  # refuse a segment that cannot be read, now
    claim = keyword is not None or cap is not None
    if cap is not None and cap < 1:
        raise CampaignError(detail="the cap must be at least 1")
    if keyword is not None:
        keyword = keyword_of(keyword)
        if not keyword or len(keyword) > 64 or " " in keyword:
            raise CampaignError(detail="the keyword is one word of up to 64 characters")
        if session.scalar(select(Campaign.id).where(Campaign.keyword == keyword)):
            raise CampaignError(detail=f"another campaign uses the keyword {keyword!r}")
    title = program.coupons[template].title
    campaign = Campaign(key=key, name=name.strip() or title, template=template,
                        segment=segment.strip(), mode="claim" if claim else "issue",
                        keyword=keyword, cap=cap, push=push, created_at=now)
    session.add(campaign)
    session.flush()
    audit.record(session, "campaign.create", member_id=None, actor="owner", at=now,
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


def set_status(session: Session, campaign: Campaign, status: str, now: dt.datetime) -> None:
    if campaign.mode == "claim" and status not in ("open", "closed"):
        raise CampaignError(detail="a claim campaign is opened or closed")
    campaign.status = status
    audit.record(session, f"campaign.{status}", member_id=None, actor="owner", at=now,
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
