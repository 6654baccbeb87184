"""Tags and segments: manual tags from the owner or the POS, automatic tags recomputed daily,
and tag expressions (`vip and not dormant`, `new or (active and birthday_month)`) that pick
members with one query.

Automatic tags (as of the day they are computed, in the program's timezone):
  new             joined in the last NEW_DAYS days.
  active          a purchase in the last ACTIVE_DAYS days.
  dormant         no counted purchase (a fully refunded one is none) in the program's
                  win-back days (`[winback] after_days`, DORMANT_DAYS if unset), having
                  joined before them: bot.loyalty.audiences.dormant, as the report counts.
  vip             spend over the tier window (`[tier_rules] window_months`) at or above the
                  top tier's threshold.
  birthday_month  a birthday in the current month.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import ColumnElement, delete, exists, extract, func, literal, select
from sqlalchemy.orm import Session

from bot.db import dialect_insert
from bot.loyalty import audit
from bot.loyalty.audiences import dormant
from bot.loyalty.errors import (
    SegmentError,
    TagAutomatic,
    TagNameInvalid,
)
from bot.loyalty.timeutil import add_months, local_date, start_of_day
from bot.models import Member, MemberTag, Purchase, Tag
from bot.program import Program

NEW_DAYS, ACTIVE_DAYS, DORMANT_DAYS = 30, 90, 60
AUTOMATIC = ("new", "active", "dormant", "vip", "birthday_month")
TAG_NAME = re.compile(r"[a-z0-9_\-\u3400-\u9fff]{1,64}")
EVERYONE = {"", "all", "everyone", "全部"}


def tag_name(text: str) -> str:
    name = (text or "").strip().lower()
    if not TAG_NAME.fullmatch(name) or name in ("and", "or", "not"):
        raise TagNameInvalid(text=(text or "")[:70])
    return name


def _tag(session: Session, name: str, *, automatic: bool = False) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        tag = Tag(name=name, automatic=automatic)
        session.add(tag)
        session.flush()
    return tag


def add_tag(session: Session, member: Member, text: str, now: dt.datetime, *, actor: str
            ) -> bool:
    """Tag a member by hand; False if they had it already. Automatic tags are not for hand."""
    name = tag_name(text)
    if name in AUTOMATIC:
        raise TagAutomatic(name=name)
    tag = _tag(session, name)
    if session.get(MemberTag, (member.id, tag.id)) is not None:
        return False
    session.add(MemberTag(member_id=member.id, tag_id=tag.id, tagged_at=now))
    audit.record(session, "tag.add", member_id=member.id, actor=actor, at=now, tag=name)
    return True


def remove_tag(session: Session, member: Member, text: str, now: dt.datetime, *, actor: str
               ) -> bool:
    name = tag_name(text)
    tag = session.scalar(select(Tag).where(Tag.name == name))
    link = tag and session.get(MemberTag, (member.id, tag.id))
    if not link:
        return False
    session.delete(link)
    audit.record(session, "tag.remove", member_id=member.id, actor=actor, at=now, tag=name)
    return True


def member_tags(session: Session, member_id: int) -> list[str]:
    return list(session.scalars(select(Tag.name).join(MemberTag).where(
        MemberTag.member_id == member_id).order_by(Tag.name)))


def tag_counts(session: Session) -> list[tuple[str, bool, int]]:
    return [tuple(row) for row in session.execute(
        select(Tag.name, Tag.automatic, func.count(MemberTag.member_id))
        .outerjoin(MemberTag).group_by(Tag.id).order_by(Tag.automatic.desc(), Tag.name))]


# -- automatic tags ----------------------------------------------------------------------------
def _automatic_rules(program: Program, now: dt.datetime) -> dict[str, ColumnElement[bool]]:
    tz = program.timezone
    today = local_date(now, tz)
    dormant_days = program.winback_after_days or DORMANT_DAYS
    window = start_of_day(add_months(today, -program.tier_window_months), tz)
    top = max(program.tiers, key=lambda t: t.threshold)
    spenders = (select(Purchase.member_id).where(Purchase.created_at > window,
                                                 Purchase.created_at <= now)
                .group_by(Purchase.member_id)
                .having(func.sum(Purchase.amount - Purchase.refunded_amount) >= top.threshold))
    return {
        "new": Member.joined_at > now - dt.timedelta(days=NEW_DAYS),
        "active": Member.last_purchase_at > now - dt.timedelta(days=ACTIVE_DAYS),
        "dormant": dormant(dormant_days, now),
        "vip": Member.id.in_(spenders) if top.threshold > 0 else literal(False),
        "birthday_month": extract("month", Member.birthday) == today.month,
    }


def refresh_automatic_tags(session: Session, program: Program, now: dt.datetime
                           ) -> dict[str, int]:
    """Recompute every automatic tag with two set-based statements each; returns the counts."""
    counts = {}
    for name, rule in _automatic_rules(program, now).items():
        tag = _tag(session, name, automatic=True)
        session.execute(delete(MemberTag).where(  # an anti-join, never NOT IN (a subquery)
            MemberTag.tag_id == tag.id, ~exists().where(
                Member.id == MemberTag.member_id, rule, Member.status == "active")))
        # ON CONFLICT, not NOT EXISTS: an INSERT whose SELECT reads the table it fills can
        # get a plan that rescans every row it has just added (quadratic at a million)
        session.execute(dialect_insert(session, MemberTag).from_select(
            ["member_id", "tag_id", "tagged_at"],
            select(Member.id, literal(tag.id), literal(now, MemberTag.tagged_at.type))
            .where(rule, Member.status == "active"))
            .on_conflict_do_nothing(index_elements=["member_id", "tag_id"]))
        counts[name] = session.scalar(select(func.count()).select_from(MemberTag).where(
            MemberTag.tag_id == tag.id))
    return counts


# -- tag expressions ---------------------------------------------------------------------------
TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def needs_automatic_tags(session: Session, expression: str) -> bool:
    """Does the expression name an automatic tag never computed yet (the daily `tags` job
    has not run on this database)?"""
    words = {word.lower() for word in TOKEN.findall(expression or "")} & set(AUTOMATIC)
    return bool(words) and bool(words - set(session.scalars(
        select(Tag.name).where(Tag.name.in_(words)))))


def segment_filter(session: Session, expression: str) -> ColumnElement[bool]:
    """A WHERE clause on Member for a tag expression: names joined by and, or, not and
    parentheses. An empty expression (or `all`) is everyone."""
    text = (expression or "").strip()
    if text.lower() in EVERYONE:
        return literal(True)
    tokens = TOKEN.findall(text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise SegmentError(detail=f"cannot read {expression!r}")
    known = dict(session.execute(select(Tag.name, Tag.id)).all())
    position = 0

    def peek() -> str | None:
        return tokens[position].lower() if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def either() -> ColumnElement[bool]:
        clause = both()
        while peek() == "or":
            take()
            clause = clause | both()
        return clause

    def both() -> ColumnElement[bool]:
        clause = single()
        while peek() == "and":
            take()
            clause = clause & single()
        return clause

    def single() -> ColumnElement[bool]:
        word = peek()
        if word is None:
            raise SegmentError(detail=f"{expression!r} ends too early")
        if word == "not":
            take()
            return ~single()
        if word == "(":
            take()
            clause = either()
            if peek() != ")":
                raise SegmentError(detail=f"a ( is not closed in {expression!r}")
            take()
            return clause
        if word in ("and", "or", ")"):
            raise SegmentError(detail=f"unexpected {word!r} in {expression!r}")
        name = take().lower()
        if name in AUTOMATIC and name not in known:
            raise SegmentError(detail=f"{name!r} is an automatic tag not computed yet: run "
                                      "`flask --app bot jobs run tags` first")
        if name not in known:
            raise SegmentError(detail=f"no tag {name!r}; tags: {', '.join(sorted(known))}"
                               if known else f"no tag {name!r} (no tags yet)")
        return exists().where(MemberTag.member_id == Member.id,
                              MemberTag.tag_id == known[name])

    clause = either()
    if position != len(tokens):
        raise SegmentError(detail=f"unexpected {tokens[position]!r} in {expression!r}")
    return clause
