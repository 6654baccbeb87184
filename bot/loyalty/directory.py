"""Finding members and reading one member's history, for the owner console."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Text, and_, func, literal, or_, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session

from bot.loyalty.codes import normalize_code
from bot.loyalty.phones import normalize_phone
from bot.models import AuditLog, Member, MemberTag, PointEntry, Purchase, Tag

SEARCH_LIMIT = 20
SHORT = 2  # characters: a name this short is looked up by its characters, not trigrams


def search_members(session: Session, text: str, limit: int = SEARCH_LIMIT) -> list[Member]:
    """Members matching what an owner typed: a phone in any spelling, a member code, or a
    part of the name (as the member or their LINE profile gave it); the latest added first.

    By id, not join time: PostgreSQL then walks the primary key backwards and stops at
    `limit` matches when a name is common. A name nobody has is looked up in an index
    (trigrams from 3 characters, the characters and pairs of characters below), never by
    reading every member."""
    text = (text or "").strip()
    if not text:
        return []
    rules = []
    if (phone := normalize_phone(text)) is not None:
        rules.append(Member.phone == phone)
    if (code := normalize_code(text)) is not None:
        rules.append(Member.member_code == code)
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    name = Member.display_name.ilike(pattern, escape="\\")  # pg_trgm index (0015)
    if len(text) <= SHORT and session.get_bind().dialect.name == "postgresql":
        # no trigram in one or two characters: the index of their characters and pairs
        # (0018) finds the few names holding them; ILIKE stays the exact test
        grams = func.name_grams(Member.display_name).op("@>")(
            array([func.lower(literal(text, Text))]))
        name = and_(grams, name)
    rules.append(name)
    return list(session.scalars(select(Member).where(or_(*rules))
                                .order_by(Member.id.desc())
                                .limit(limit)))


@dataclass(frozen=True)
class History:
    entries: list[PointEntry]  # newest first
    purchases: list[Purchase]
    tags: list[str]
    audit: list[AuditLog]


def member_history(session: Session, member_id: int, limit: int = 30) -> History:
    """A member's latest ledger entries, purchases (with what was refunded), tags and audit
    trail, newest first, `limit` of each."""
    return History(
        entries=list(session.scalars(select(PointEntry).where(PointEntry.member_id == member_id)
                                     .order_by(PointEntry.id.desc()).limit(limit))),
        purchases=list(session.scalars(select(Purchase).where(Purchase.member_id == member_id)
                                       .order_by(Purchase.id.desc()).limit(limit))),
        tags=list(session.scalars(select(Tag.name).join(MemberTag, MemberTag.tag_id == Tag.id)
                                  .where(MemberTag.member_id == member_id).order_by(Tag.name))),
        audit=list(session.scalars(select(AuditLog).where(AuditLog.member_id == member_id)
                                   .order_by(AuditLog.id.desc()).limit(limit))))
