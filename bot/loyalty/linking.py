"""Link: a LINE member claims the record a POS import made for them (its member code and
matching phone).

The record's ledger rows are moved, not copied: every point entry (lots with their remainders
and expiries, draws, expiries), purchase, refund, coupon, redemption, stamp card, tag and
notice of the record becomes the LINE member's, and the record's cached balance is added to
the LINE member's. Because all of the record's entries move together, the ledger invariant
(cached balance == sum of lot remainders == sum of entries) holds for both members after the
merge (the record ends with 0 == 0 == 0), each lot keeps its own expiry, and a later refund of
a moved purchase finds its own lot on the member who now owns the purchase. The audit trail
is not rewritten: "member.merged" (-points) on the record and "member.link" (+points) on the
LINE member record the move. The record is then closed with status 'merged', and a second
link of it is refused. The verbs flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import normalize_code
from bot.loyalty.errors import (
    InvalidPhone,
    LinkAlreadyLinked,
    LinkNeedsLineMember,
    LinkNoRecordForPhone,
    LinkNotImported,
    LinkPhoneMismatch,
    LinkRecordClosed,
    LinkToSelf,
    LinkUnknownRecord,
    MemberBlocked,
    UnknownMember,
)
from bot.loyalty.ledger import lock_members, settle_expired
from bot.loyalty.phones import normalize_phone
from bot.loyalty.stamps import add_stamps
from bot.loyalty.tiers import TierChange, evaluate_tier
from bot.loyalty.timeutil import local_date
from bot.models import (
    Coupon,
    Member,
    MemberTag,
    Notice,
    PendingAction,
    PointEntry,
    Purchase,
    Redemption,
    Stamp,
    StampCard,
)
from bot.program import Program

# Audit actions
LINKED, MERGED = "member.link", "member.merged"


@dataclass(frozen=True)
class LinkResult:
    member: Member  # the LINE member, now holding the record's points and history
    record: Member  # the imported record, now closed
    points: int  # points moved
    lots: int  # lots with points left that moved, each with its own expiry
    purchases: int
    coupons: int
    stamp_cards: int
    stamps_carried: int  # stamps moved onto the LINE member's current card
    filled: tuple[str, ...]  # the LINE member's empty fields filled from the record
    tier_change: TierChange | None


def link_member(session: Session, program: Program, line_member_id: int, member_code: str,
                phone: str, now: dt.datetime, *, actor: str) -> LinkResult:
    """Merge the imported record with this member code and phone into a LINE member, once.

    Refused: an unknown code (LinkUnknownRecord), the LINE member's own code (LinkToSelf),
    another LINE member's code (LinkNotImported), a record already merged
    (LinkAlreadyLinked) or closed/erased (LinkRecordClosed), a phone that is not a mobile
    number (InvalidPhone) or not the record's (LinkPhoneMismatch), a target that is not a
    LINE member (LinkNeedsLineMember) or not active (MemberBlocked). Both rows are locked in
    id order. See the module docstring for what moves and why the ledger stays balanced.
    """
    code = normalize_code(member_code)
    record_id = code and session.scalar(select(Member.id).where(Member.member_code == code))
    if not record_id:
        raise LinkUnknownRecord()
    if record_id == line_member_id:
        raise LinkToSelf()
    locked = {m.id: m for m in lock_members(session, [line_member_id, record_id])}
    member, record = locked.get(line_member_id), locked[record_id]
    if member is None:
        raise UnknownMember()
    if member.line_user_id is None:
        raise LinkNeedsLineMember()
    if member.status != "active":
        raise MemberBlocked()
    if record.line_user_id is not None:
        raise LinkNotImported()
    if record.status == "merged":
        raise LinkAlreadyLinked()
    if record.status != "active":
        raise LinkRecordClosed()
    wanted = normalize_phone(phone)
    if wanted is None:
        raise InvalidPhone()
    if record.phone != wanted:
        raise LinkPhoneMismatch()

    merged = merge_history(session, program, member, record, now)
    filled = fill_in(session, member, record, now)
    record.status = "merged"
    member.last_activity_at = now
    counts = merged.counts()
    audit.record(session, MERGED, member_id=record.id, actor=actor, at=now,
                 points_delta=-merged.points, reason=f"merged into member {member.member_code}",
                 into_member_id=member.id, **counts)
    audit.record(session, LINKED, member_id=member.id, actor=actor, at=now,
                 points_delta=merged.points,
                 reason=f"linked imported record {record.member_code}", record_id=record.id,
                 stamps_carried=merged.stamps_carried, filled=list(filled), **counts)
    tier_change = evaluate_tier(session, program, member, now)  # the record's purchases count
    session.flush()
    return LinkResult(member, record, merged.points, merged.lots, merged.purchases,
                      merged.coupons, merged.stamp_cards, merged.stamps_carried, filled,
                      tier_change)


@dataclass(frozen=True)
class Merged:
    points: int  # points moved
    lots: int  # lots with points left that moved, each with its own expiry
    purchases: int
    coupons: int
    stamp_cards: int
    stamps_carried: int  # stamps moved onto the member's current card

    def counts(self) -> dict[str, int]:
        return dict(lots=self.lots, purchases=self.purchases, coupons=self.coupons,
                    stamp_cards=self.stamp_cards)


def merge_history(session: Session, program: Program, member: Member, record: Member,
                  now: dt.datetime) -> Merged:
    """Move every ledger row, purchase, coupon, stamp card, tag and notice of `record` to
    `member` (both locked by the caller), with its points: see the module docstring. Both
    current stamp cards: the record's stamps go onto the member's card."""
    settle_expired(session, record, now)
    settle_expired(session, member, now)
    points = record.points_balance
    lots = session.scalar(select(func.count()).select_from(PointEntry)
                          .where(PointEntry.member_id == record.id, PointEntry.remaining > 0))
    own_card, their_card = _current_card(session, member.id, now), \
        _current_card(session, record.id, now)
    moved = {model.__tablename__: _move(session, model, record.id, member.id)
             for model in (PointEntry, Purchase, Coupon, Redemption, StampCard, Stamp, Notice,
                           PendingAction)}
    _move_tags(session, record.id, member.id)
    carried = _carry_stamps(session, program, member, own_card, their_card, now)
    member.points_balance += points
    record.points_balance = 0
    if record.last_purchase_at and (member.last_purchase_at is None
                                    or record.last_purchase_at > member.last_purchase_at):
        member.last_purchase_at = record.last_purchase_at
    return Merged(points, lots, moved["purchases"], moved["coupons"], moved["stamp_cards"],
                  carried)


def link_by_phone(session: Session, program: Program, line_member_code: str, phone: str,
                  now: dt.datetime, *, actor: str) -> LinkResult:
    """Staff's `綁定 MEMBERCODE PHONE`: the customer shows their LINE member card (its code)
    and gives the phone their POS record was imported with; after checking the person,
    the record with that phone merges into their LINE membership (link_member's rules)."""
    wanted = normalize_phone(phone)
    if wanted is None:
        raise InvalidPhone()
    code = normalize_code(line_member_code)
    member = code and session.scalar(select(Member).where(Member.member_code == code))
    if not member:
        raise UnknownMember()
    record = session.scalar(select(Member).where(Member.phone == wanted))
    if record is not None and record.id == member.id:  # the phone came with a linked record
        raise LinkAlreadyLinked()
    if record is None:
        raise LinkNoRecordForPhone()
    try:
        return link_member(session, program, member.id, record.member_code, wanted, now,
                           actor=actor)
    except (LinkNotImported, LinkRecordClosed):  # whose phone it is stays unsaid
        raise LinkNoRecordForPhone() from None


def _move(session: Session, model: type, from_id: int, to_id: int) -> int:
    return session.execute(update(model).where(model.member_id == from_id)
                           .values(member_id=to_id)
                           .execution_options(synchronize_session="fetch")).rowcount


def _move_tags(session: Session, from_id: int, to_id: int) -> None:
    has = select(MemberTag.tag_id).where(MemberTag.member_id == to_id)
    session.execute(update(MemberTag).where(MemberTag.member_id == from_id,
                                            MemberTag.tag_id.not_in(has))
                    .values(member_id=to_id).execution_options(synchronize_session=False))
    session.execute(delete(MemberTag).where(MemberTag.member_id == from_id)
                    .execution_options(synchronize_session=False))


def _current_card(session: Session, member_id: int, now: dt.datetime) -> StampCard | None:
    """The card stamps would go on now (as stamps.active_card picks it), if there is one."""
    card = session.scalar(select(StampCard).where(StampCard.member_id == member_id,
                                                  StampCard.status == "active")
                          .order_by(StampCard.id.desc()))
    return None if card is None or (card.expires_at is not None and card.expires_at <= now) \
        else card


def _carry_stamps(session: Session, program: Program, member: Member,
                  own: StampCard | None, theirs: StampCard | None, now: dt.datetime) -> int:
    """Both had a current card: the record's (now moved) card is closed and its stamps go on
    the LINE member's card, with the usual milestone and completion coupons."""
    if own is None or theirs is None:
        return 0  # the record's current card (if any) simply became the member's
    carried, theirs.stamps, theirs.status = theirs.stamps, 0, "expired"
    if carried:
        session.add(Stamp(card_id=theirs.id, member_id=member.id, count=-carried,
                          local_day=local_date(now, program.timezone), reason="merge",
                          created_at=now))
        session.flush()
        add_stamps(session, program, member, carried, "merge", now)
    return carried


def fill_in(session: Session, member: Member, record: Member, now: dt.datetime
            ) -> tuple[str, ...]:
    """Move the record's phone, birthday and external id to the member where theirs is empty."""
    filled = tuple(name for name in ("phone", "birthday", "external_id")
                   if getattr(member, name) is None and getattr(record, name) is not None)
    values = {name: getattr(record, name) for name in filled}
    for name in filled:
        setattr(record, name, None)
    session.flush()  # the unique phone and external id leave the record first
    for name, value in values.items():
        setattr(member, name, value)
    if "birthday" in filled:
        member.birthday_set_at = record.birthday_set_at or now
        record.birthday_set_at = None
    return filled
