"""Members: join (or come back), find by any handle, birthdays, manual point adjustments."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import new_code, normalize_code
from bot.loyalty.coupons import issue_coupon
from bot.loyalty.errors import (
    BirthdayAlreadySet,
    CapReached,
    CouponWindowClosed,
    InvalidAmount,
    InvalidBirthday,
    ReasonRequired,
    UnknownMember,
)
from bot.loyalty.ledger import credit, debit, lock_member, remember_locks, settle_expired
from bot.models import Coupon, Member, OutboxMessage
from bot.outbox import waits_for
from bot.outbox.replies import note_waiting
from bot.outbox.sender import MARKETING
from bot.program import Program

MAX_ADJUSTMENT = 100_000_000  # points, either way: beyond it a typing slip, not a correction


@dataclass(frozen=True)
class Registration:
    member: Member
    created: bool
    reactivated: bool
    welcome_coupon: Coupon | None


def register_member(session: Session, program: Program, line_user_id: str, now: dt.datetime,
                    *, display_name: str = "", language: str = "zh-TW") -> Registration:
    """Join a LINE user, or reactivate them; the welcome coupon comes once per member, ever."""
    member = session.scalar(select(Member).where(Member.line_user_id == line_user_id))
    created = member is None
    if created:
        try:
            with session.begin_nested():
                member = Member(line_user_id=line_user_id, member_code=_unused_member_code(session),
                                display_name=display_name[:200], language=language,
                                tier=program.tiers[0].key, tier_since=now, joined_at=now,
                                last_activity_at=now)
                session.add(member)
        except IntegrityError:  # the same user joined in a concurrent request
            created = False
            member = session.scalar(select(Member).where(Member.line_user_id == line_user_id))
    member = lock_member(session, member.id)
    reactivated = not created and member.status != "active"
    member.status, member.last_activity_at = "active", now
    if display_name:
        member.display_name = display_name[:200]
    if language:
        member.language = language
    if created or reactivated:
        audit.record(session, "member.join" if created else "member.rejoin", member_id=member.id,
                     actor=line_user_id, at=now)
    return Registration(member, created, reactivated, _welcome(session, program, member, now))


def welcome_key(line_user_id: str) -> str:
    """The welcome gift's grant key: one per LINE account, ever. It holds a hash of the
    LINE user id, the one trace of an erased member kept, for this purpose alone (a LINE id
    is 128 random bits: the hash can only be matched by someone who holds the id)."""
    return "welcome:" + hashlib.sha256(f"welcome|{line_user_id}".encode()).hexdigest()


def _welcome(session: Session, program: Program, member: Member, now: dt.datetime
             ) -> Coupon | None:
    if member.welcome_given_at is not None or not program.welcome_coupon:
        return None
    member.welcome_given_at = now
    key = welcome_key(member.line_user_id or "")
    if session.scalar(select(Coupon.id).where(Coupon.issue_key == key)):
        return None  # this LINE account had its gift as a member since erased
    try:
        return issue_coupon(session, program, member.id, program.welcome_coupon, now,
                            reason="welcome", issue_key=key)
    except (CapReached, CouponWindowClosed) as exc:
        audit.record(session, "coupon.not_issued", member_id=member.id, actor="system", at=now,
                     reason=exc.code, template=program.welcome_coupon)
        return None


def _unused_member_code(session: Session) -> str:
    while True:
        code = new_code()
        if session.scalar(select(Member.id).where(Member.member_code == code)) is None:
            return code


def unfollow(session: Session, line_user_id: str, now: dt.datetime) -> Member | None:
    """The user blocked the account: stop messaging them, keep everything they own."""
    member = session.scalar(select(Member).where(Member.line_user_id == line_user_id))
    if member is None or member.status == "blocked":
        return member
    member.status = "blocked"
    audit.record(session, "member.leave", member_id=member.id, actor=line_user_id, at=now)
    return member


def find_by_code(session: Session, text: str, *, lock: bool = False) -> Member:
    """The member whose card shows this code; with `lock`, as lock_member loads it, and
    with whether anything waits for them to join a push (noted as
    bot.outbox.replies.member_for_reply does): one statement for all."""
    code = normalize_code(text)
    found = code and session.execute(_BY_CODE_LOCKED if lock else _BY_CODE,
                                     {"code": code}).first()
    if not found:
        raise UnknownMember()
    if not lock:
        return found[0]
    if found[0].line_user_id:  # whether a push to them (a receipt) has company to take
        note_waiting(session, found[0].line_user_id, found.waits)
    return remember_locks(session, [found[0]])[0]


_BY_LINE_USER = select(Member).where(Member.line_user_id == bindparam("line_user_id"))
_BY_CODE = select(Member).where(Member.member_code == bindparam("code"))  # built once
_BY_CODE_LOCKED = (  # built once; the subquery locks nothing, FOR UPDATE takes the member
    select(Member, exists().where(*waits_for(Member.line_user_id)).label("waits"))
    .where(Member.member_code == bindparam("code"))
    .with_for_update(of=Member).execution_options(populate_existing=True))


def member_by_id(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise UnknownMember()
    return member


def find_by_line_user(session: Session, line_user_id: str) -> Member:
    member = session.scalar(_BY_LINE_USER, {"line_user_id": line_user_id})
    if member is None:
        raise UnknownMember()
    return member


def set_birthday(session: Session, member_id: int, birthday: dt.date | str, now: dt.datetime,
                 *, actor: str, by_owner: bool = False, reason: str = "") -> Member:
    """A customer sets their birthday once; only the owner can change it afterwards."""
    if isinstance(birthday, str):
        try:
            birthday = dt.date.fromisoformat(birthday)
        except ValueError:
            raise InvalidBirthday() from None
    if not dt.date(1900, 1, 1) <= birthday <= now.date():
        raise InvalidBirthday()
    member = lock_member(session, member_id)
    if member.birthday is not None and not by_owner:
        raise BirthdayAlreadySet()
    previous, member.birthday, member.birthday_set_at = member.birthday, birthday, now
    audit.record(session, "member.birthday", member_id=member.id, actor=actor, at=now,
                 reason=reason, birthday=birthday.isoformat(),
                 previous=previous.isoformat() if previous else None)
    return member


def correct_birthday(session: Session, member_id: int, birthday: dt.date | str,
                     now: dt.datetime, *, reason: str, actor: str) -> Member:
    """The shop corrects a member's birthday (set once by the customer), with a reason."""
    if not (reason or "").strip():
        raise ReasonRequired()
    return set_birthday(session, member_id, birthday, now, actor=actor, by_owner=True,
                        reason=reason.strip())


def set_marketing(session: Session, member_id: int, wanted: bool, now: dt.datetime, *,
                  actor: str) -> Member:
    """停止推播 / stop promotions (wanted=False) or start them again (True). Marketing
    (nudges, win-back, issue campaigns) then leaves the member out, and their marketing
    pushes still waiting alone in the outbox are skipped; receipts, expiry warnings,
    birthdays and tier news still come."""
    member = lock_member(session, member_id)
    if member.marketing_opt_out == (not wanted):
        return member
    member.marketing_opt_out, member.marketing_opt_out_at = not wanted, None if wanted else now
    if not wanted:
        session.execute(update(OutboxMessage).where(
            OutboxMessage.member_id == member.id, OutboxMessage.status == "pending",
            OutboxMessage.kind.in_(MARKETING), OutboxMessage.batch_id.is_(None))
            .values(status="skipped").execution_options(synchronize_session=False))
    audit.record(session, "member.marketing", member_id=member.id, actor=actor, at=now,
                 wanted=wanted)
    return member


def adjust_points(session: Session, program: Program, member_id: int, delta: int, now: dt.datetime,
                  *, reason: str, actor: str) -> Member:
    """A manual correction, always as a new ledger entry with its reason."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 \
            or abs(delta) > MAX_ADJUSTMENT:
        raise InvalidAmount(detail=f"the adjustment must be a non-zero whole number of points, "
                                   f"{MAX_ADJUSTMENT:,} at most either way")
    if not reason.strip():
        raise ReasonRequired()
    member = lock_member(session, member_id)
    settle_expired(session, member, now)
    if delta > 0:
        credit(session, program, member, delta, "adjust", now, actor=actor, reason=reason)
    else:
        debit(session, member, -delta, "adjust", now, actor=actor, reason=reason)
    return member
