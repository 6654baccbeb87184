"""Sending an issue campaign: who it gives its coupon to, and marking it sent once done."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bot.loyalty.campaigns import audience, find_campaign
from bot.loyalty.errors import CampaignError
from bot.models import Campaign


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
