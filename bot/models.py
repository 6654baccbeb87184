"""Typed SQLAlchemy 2.0 models. Constraints carry the invariants the services rely on."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC on every database; always read back as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the program stores aware UTC datetimes only")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


Id = Mapped[int]


def pk() -> Any:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def ref(target: str, nullable: bool = False) -> Any:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                         ForeignKey(target), nullable=nullable, index=True)


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("points_balance >= 0", name="balance_not_negative"),
        CheckConstraint("status IN ('active', 'blocked', 'merged', 'erased')",
                        name="status_known"),
        # the console's name search (ILIKE '%...%'): a pg_trgm GIN index, PostgreSQL only
        # (migration 0015, which qualifies the operator class with pg_trgm's schema)
        Index("ix_members_display_name_trgm", "display_name", postgresql_using="gin",
              postgresql_ops={"display_name": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
        # ... and names of one or two characters, which hold no trigram: each name's
        # characters and pairs of characters (migration 0018 makes the function)
        Index("ix_members_display_name_grams", text("name_grams(display_name)"),
              postgresql_using="gin").ddl_if(dialect="postgresql"),
        # the dashboard's daily figures (migration 0018): joins by time, and the few members
        # who are not active (blocked, merged, erased) for the dormant count
        Index("ix_members_joined_at", "joined_at"),
        Index("ix_members_not_active", "id", sqlite_where=text("status <> 'active'"),
              postgresql_where=text("status <> 'active'")),
    )

    id: Id = pk()
    line_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    member_code: Mapped[str] = mapped_column(String(16), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(16), default="zh-TW")
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    birthday_set_at: Mapped[dt.datetime | None]
    tier: Mapped[str] = mapped_column(String(32))
    tier_since: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="active")
    points_balance: Mapped[int] = mapped_column(Integer, default=0)
    welcome_given_at: Mapped[dt.datetime | None]
    joined_at: Mapped[dt.datetime]
    last_activity_at: Mapped[dt.datetime]
    last_purchase_at: Mapped[dt.datetime | None]
    winback_sent_at: Mapped[dt.datetime | None]  # the current dormant spell got its coupon
    bonus_multiplier: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # "停止推播": no nudges, win-back or campaign pushes (receipts and warnings still come)
    marketing_opt_out: Mapped[bool] = mapped_column(default=False, server_default=false())
    marketing_opt_out_at: Mapped[dt.datetime | None]


class PointEntry(Base):
    """One line of the append-only ledger. Positive entries are lots that later draws consume."""

    __tablename__ = "point_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('earn', 'spend', 'expire', 'reverse', 'adjust')",
                        name="kind_known"),
        CheckConstraint("points <> 0", name="points_not_zero"),
        CheckConstraint("remaining IS NULL OR (remaining >= 0 AND remaining <= points)",
                        name="remaining_within_lot"),
        Index("ix_point_entries_open_lots", "member_id", "expires_at",
              postgresql_where=text("remaining > 0"), sqlite_where=text("remaining > 0")),
        Index("ix_point_entries_due", "expires_at",  # the expiry jobs' way in
              postgresql_where=text("remaining > 0"), sqlite_where=text("remaining > 0")),
    )

    id: Id = pk()
    member_id: Mapped[int] = ref("members.id")
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    purchase_id: Mapped[int | None] = ref("purchases.id", nullable=True)
    refund_id: Mapped[int | None] = ref("refunds.id", nullable=True)
    coupon_id: Mapped[int | None] = ref("coupons.id", nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(300), default="system")


class PointDraw(Base):
    """Which lots a negative entry consumed, and how much of each."""

    __tablename__ = "point_draws"
    __table_args__ = (CheckConstraint("points > 0", name="points_positive"),)

    id: Id = pk()
    entry_id: Mapped[int] = ref("point_entries.id")
    lot_id: Mapped[int] = ref("point_entries.id")
    points: Mapped[int] = mapped_column(Integer)


class Purchase(Base):
    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("source", "external_order_id", name="uq_purchases_source_order"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount",
                        name="refund_within_amount"),
        Index("ix_purchases_member_created", "member_id", "created_at"),
        Index("ix_purchases_created_at", "created_at"),
    )

    id: Id = pk()
    # None while the order waits for its customer to take its claim code (bot.loyalty.claims)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    source: Mapped[str] = mapped_column(String(32))
    external_order_id: Mapped[str] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(Integer)
    categories: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    points_earned: Mapped[int] = mapped_column(Integer, default=0)
    stamps_earned: Mapped[int] = mapped_column(Integer, default=0)
    refunded_amount: Mapped[int] = mapped_column(Integer, default=0)
    staff_id: Mapped[int | None] = ref("staff.id", nullable=True)
    created_at: Mapped[dt.datetime]


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("source", "refund_id", name="uq_refunds_source_refund"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_created_at", "created_at"),
    )

    id: Id = pk()
    purchase_id: Mapped[int] = ref("purchases.id")
    source: Mapped[str] = mapped_column(String(32))
    refund_id: Mapped[str] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(Integer)
    points_reversed: Mapped[int] = mapped_column(Integer, default=0)
    points_unrecovered: Mapped[int] = mapped_column(Integer, default=0)
    stamps_reversed: Mapped[int] = mapped_column(Integer, default=0)
    stamps_unrecovered: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime]


class StampCard(Base):
    __tablename__ = "stamp_cards"
    __table_args__ = (
        CheckConstraint("stamps >= 0 AND stamps <= goal", name="stamps_within_goal"),
        CheckConstraint("status IN ('active', 'completed', 'expired')", name="status_known"),
        Index("ix_stamp_cards_started_at", "started_at"),
    )

    id: Id = pk()
    member_id: Mapped[int] = ref("members.id")
    goal: Mapped[int] = mapped_column(Integer)
    stamps: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    started_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    # the rewards the card started with, {"5": "pct10", "10": "free_drink"} (stamps ->
    # coupon template): a later program change does not move them; None on cards begun
    # before they were kept (the program's then)
    rewards: Mapped[dict[str, str] | None] = mapped_column(JSON)


class Stamp(Base):
    """Stamps added to (positive count) or taken off (negative count) a card."""

    __tablename__ = "stamps"
    __table_args__ = (CheckConstraint("count <> 0", name="count_not_zero"),
                      Index("ix_stamps_created_at", "created_at"))

    id: Id = pk()
    card_id: Mapped[int] = ref("stamp_cards.id")
    member_id: Mapped[int] = ref("members.id")
    purchase_id: Mapped[int | None] = ref("purchases.id", nullable=True)
    count: Mapped[int] = mapped_column(Integer)
    local_day: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(32), default="visit")
    created_at: Mapped[dt.datetime]


class CouponTemplateRow(Base):
    """The program's coupon templates, mirrored so caps can be counted atomically.

    No CHECK on issued_count <= total_cap: an owner may lower a cap below what was already
    given out; issue_coupons reads the count under a row lock and stops new issues.
    """

    __tablename__ = "coupon_templates"

    id: Id = pk()
    key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    total_cap: Mapped[int | None] = mapped_column(Integer)
    issued_count: Mapped[int] = mapped_column(Integer, default=0)


class CouponTerms(Base):
    """What coupons promised when they were issued (kind, amount or percent, maximum
    discount, minimum spend, titles, gift), shared by every coupon issued on the same terms:
    editing a template later changes only the coupons issued after the edit."""

    __tablename__ = "coupon_terms"

    id: Id = pk()
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the terms
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("status IN ('issued', 'redeemed', 'expired', 'void')",
                        name="status_known"),
        Index("ix_coupons_status_valid_until", "status", "valid_until"),
        Index("ix_coupons_issued_at", "issued_at"),
        Index("ix_coupons_reason", "reason"),  # a campaign's coupons (campaign:<key>)
    )

    id: Id = pk()
    code: Mapped[str] = mapped_column(String(16), unique=True)
    template_id: Mapped[int] = ref("coupon_templates.id")
    terms_id: Mapped[int | None] = ref("coupon_terms.id", nullable=True)  # None: issued
    # before terms were kept and the program has no template for it any more
    member_id: Mapped[int] = ref("members.id")
    status: Mapped[str] = mapped_column(String(16), default="issued")
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    issued_at: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(String(64))
    # Makes an automatic grant (welcome, milestone, birthday ...) happen at most once, ever.
    issue_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    redeemed_at: Mapped[dt.datetime | None]


class Redemption(Base):
    """A coupon's use. A staff void is recorded on the row (voided_at, voided_by), never a
    delete; a coupon has at most one redemption that is not voided."""
    __tablename__ = "redemptions"
    __table_args__ = (
        Index("uq_redemptions_live_coupon", "coupon_id", unique=True,
              sqlite_where=text("voided_at IS NULL"),
              postgresql_where=text("voided_at IS NULL")),
        Index("ix_redemptions_redeemed_at", "redeemed_at"),
        Index("ix_redemptions_voided_at", "voided_at",
              sqlite_where=text("voided_at IS NOT NULL"),
              postgresql_where=text("voided_at IS NOT NULL")),
    )

    id: Id = pk()
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"))
    member_id: Mapped[int] = ref("members.id")
    staff_id: Mapped[int | None] = ref("staff.id", nullable=True)
    purchase_id: Mapped[int | None] = ref("purchases.id", nullable=True)
    order_amount: Mapped[int | None] = mapped_column(Integer)
    discount: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(32), default="staff")
    redeemed_at: Mapped[dt.datetime]
    voided_at: Mapped[dt.datetime | None]
    voided_by: Mapped[str | None] = mapped_column(String(64))


class Staff(Base):
    __tablename__ = "staff"

    id: Id = pk()
    line_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default="staff")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime]


class Tag(Base):
    __tablename__ = "tags"

    id: Id = pk()
    name: Mapped[str] = mapped_column(String(64), unique=True)
    automatic: Mapped[bool] = mapped_column(default=False)


class MemberTag(Base):
    __tablename__ = "member_tags"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True)
    tagged_at: Mapped[dt.datetime]


class AuditLog(Base):
    """Who changed what and why: every balance change and every redemption."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_member_at", "member_id", "at"),
                      Index("ix_audit_log_at", "at"))

    id: Id = pk()
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(300))  # console:EMAIL (254)
    action: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    points_delta: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ProcessedEvent(Base):
    """A webhook event already handled: redelivery of the same webhookEventId does nothing."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(32))
    processed_at: Mapped[dt.datetime]


class OutboxMessage(Base):
    """A message to a member, written in the same transaction as the change it reports.

    It goes out in one of three ways (`via`): alone or combined with the member's other
    messages in one push, in a multicast of identical messages, or for free inside a reply to
    the member's own message or tap. Rows sharing a `push_key` are one push request, sent
    with that key as X-Line-Retry-Key on every attempt, so a retry after a timeout is never
    delivered twice (LINE answers 409 to a key it already accepted). A row is pushed only once
    its push_key or batch_id is set, and neither changes after that. Until `hold_until` a
    row is not pushed: a reply may carry it meanwhile.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped', 'dropped')",
                        name="status_known"),
        Index("ix_outbox_status_id", "status", "id"),
        Index("ix_outbox_pending_user", "line_user_id",
              sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
        Index("ix_outbox_push_key", "push_key"),
        Index("ix_outbox_sent_at", "sent_at"),
    )

    id: Id = pk()
    member_id: Mapped[int | None] = ref("members.id", nullable=True)
    line_user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_key: Mapped[str] = mapped_column(String(36), unique=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    first_attempt_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    batch_id: Mapped[int | None] = ref("outbox_batches.id", nullable=True)
    push_key: Mapped[str | None] = mapped_column(String(36))
    hold_until: Mapped[dt.datetime | None]
    via: Mapped[str | None] = mapped_column(String(16))  # push, multicast, reply


class OutboxBatch(Base):
    """Identical pushes to many members sent as one multicast. Its recipients and retry key
    are fixed when it is made, so a retry repeats exactly the same request."""

    __tablename__ = "outbox_batches"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_known"),
    )

    id: Id = pk()
    recipients: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"to": [user ids]}
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_key: Mapped[str] = mapped_column(String(36), unique=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    first_attempt_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]


class PendingAction(Base):
    """A staff action waiting for a confirm tap (a purchase above the confirmation amount)."""

    __tablename__ = "pending_actions"

    id: Id = pk()
    token: Mapped[str] = mapped_column(String(32), unique=True)
    staff_id: Mapped[int] = ref("staff.id")
    member_id: Mapped[int | None] = ref("members.id", nullable=True)  # None: a claim code
    amount: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class Claim(Base):
    """A one-time code for an order recorded without its customer: the customer sends it to
    the bot (by scanning its QR) and the order becomes theirs, with its points and stamps."""

    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'claimed', 'cancelled')", name="status_known"),
    )

    id: Id = pk()
    code: Mapped[str] = mapped_column(String(16), unique=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    staff_id: Mapped[int | None] = ref("staff.id", nullable=True)
    api_token_id: Mapped[int | None] = ref("api_tokens.id", nullable=True)
    reserved_for: Mapped[int | None] = ref("members.id", nullable=True)  # only they may take it
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    claimed_by: Mapped[int | None] = ref("members.id", nullable=True)
    claimed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]


class TapCount(Base):
    """Taps on the bot's buttons per local day, per where the button was (the rich menu, a
    kind of message, a campaign) and per action: counted by the bot itself, every day."""

    __tablename__ = "tap_counts"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    action: Mapped[str] = mapped_column(String(32), primary_key=True)
    taps: Mapped[int] = mapped_column(Integer, default=0)


class StaffInvite(Base):
    """A one-time code a new staff member sends to the bot to become staff."""

    __tablename__ = "staff_invites"

    id: Id = pk()
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_by: Mapped[str | None] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None]


class JobRun(Base):
    """When each scheduled job last completed: a restarted clock catches up from here."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_started_at: Mapped[dt.datetime | None]
    last_completed_at: Mapped[dt.datetime | None]
    last_summary: Mapped[str] = mapped_column(Text, default="")
    last_failed_at: Mapped[dt.datetime | None]  # a run that raised (the clock kept going)
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookFailure(Base):
    """An event /callback could not handle (answered 503 for LINE to redeliver, or lost to
    an error): the owner's alerts count the recent ones."""

    __tablename__ = "webhook_failures"

    id: Id = pk()
    at: Mapped[dt.datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")


class SendHold(Base):
    """Pushes stopped until a time, for every process: LINE answered that the month's
    messages are used up. Replies are free and go on."""

    __tablename__ = "send_holds"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    until: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]


class Notice(Base):
    """A reminder already given (an expiry warning for a lot at a horizon, a nudge for a
    crossing): the unique key is what makes each one happen once, even with two clocks."""

    __tablename__ = "notices"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    member_id: Mapped[int] = ref("members.id")
    created_at: Mapped[dt.datetime]


class ApiToken(Base):
    """A bearer token for the REST API. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Id = pk()
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # to tell tokens apart in lists
    scopes: Mapped[str] = mapped_column(Text)  # space-separated
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]


class IdempotencyRecord(Base):
    """The first response to an Idempotency-Key, per token: a retry gets it back verbatim.

    Claimed in the same transaction as the change, so concurrent requests with one key make
    one change: the others wait on the key's row, then answer from it."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # "<token id>:<header>"
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime]


class Campaign(Base):
    """A coupon given to a segment at once (mode 'issue'), or claimed by keyword or button
    until its cap is reached (mode 'claim'). Each member gets it at most once."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("mode IN ('issue', 'claim')", name="mode_known"),
        CheckConstraint("status IN ('draft', 'sent', 'open', 'closed')", name="status_known"),
        CheckConstraint("cap IS NULL OR claimed <= cap", name="claims_within_cap"),
    )

    id: Id = pk()
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(Text, default="")  # a tag expression; "" = everyone
    mode: Mapped[str] = mapped_column(String(8))
    keyword: Mapped[str | None] = mapped_column(String(64), unique=True)
    cap: Mapped[int | None] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    push: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]
    # a draft issue campaign the clock sends once this time has come (None: not scheduled)
    scheduled_at: Mapped[dt.datetime | None]


class ConsoleAccount(Base):
    """Someone who signs in to the owner console: an owner, or a manager."""

    __tablename__ = "console_accounts"
    __table_args__ = (CheckConstraint("role IN ('owner', 'manager')", name="role_known"),)

    id: Id = pk()
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))  # None until set by link
    password_changed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    removed_at: Mapped[dt.datetime | None]
    # the account's own LINE chat (as a member), where the owner's daily alerts go
    line_member_id: Mapped[int | None] = ref("members.id", nullable=True)
    line_link_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    line_link_expires_at: Mapped[dt.datetime | None]


class ConsoleSession(Base):
    """A signed-in browser: only the hash of its cookie's token is kept."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = ref("console_accounts.id")
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    address: Mapped[str] = mapped_column(String(64), default="")


class ConsoleLink(Base):
    """A one-time link to set a password (a new account, or a reset), valid for a day."""

    __tablename__ = "console_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = ref("console_accounts.id")
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class ConsoleLoginFailure(Base):
    """A failed sign-in, for throttling per account and per client address."""

    __tablename__ = "console_login_failures"
    __table_args__ = (Index("ix_console_login_failures_email_at", "email", "at"),
                      Index("ix_console_login_failures_address_at", "address", "at"))

    id: Id = pk()
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]



class DailyFigures(Base):
    """The report's additive figures per local day (days since 1970-01-01 in the program's
    timezone), kept by the `dashboard` clock job for the console's dashboard."""

    __tablename__ = "daily_figures"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchases: Mapped[int] = mapped_column(Integer, default=0)  # counted ones
    revenue: Mapped[int] = mapped_column(BigInteger, default=0)  # net of refunds
    refunded: Mapped[int] = mapped_column(Integer, default=0)  # fully refunded, left out
    unclaimed: Mapped[int] = mapped_column(Integer, default=0)  # counted, with no customer yet
    coupons_issued: Mapped[int] = mapped_column(Integer, default=0)
    coupons_redeemed: Mapped[int] = mapped_column(Integer, default=0)  # not voided
    billed: Mapped[int] = mapped_column(Integer, default=0)  # messages LINE bills


class DailyJoins(Base):
    """Members who joined on a local day and are active or blocked now (the job recounts
    these on every run: erasures and merges change them)."""

    __tablename__ = "daily_joins"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    joined: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)


class DailyCoupons(Base):
    """Coupons issued and redeemed (not voided) per local day and template."""

    __tablename__ = "daily_coupons"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issued: Mapped[int] = mapped_column(Integer, default=0)
    redeemed: Mapped[int] = mapped_column(Integer, default=0)


class DailyCards(Base):
    """Stamp cards by the local day they started and where they stand now."""

    __tablename__ = "daily_cards"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    stamps: Mapped[int] = mapped_column(Integer, primary_key=True)
    completed: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1 or 0
    cards: Mapped[int] = mapped_column(Integer, default=0)


class MemberDay(Base):
    """A local day on which a member made counted purchases, linked to their previous and
    next such day: what makes distinct-customer figures (customers, repurchase rate and
    cycle, dormant, new and returning per week) sums over a range of days."""

    __tablename__ = "member_days"
    __table_args__ = (Index("ix_member_days_day", "day"),
                      Index("ix_member_days_first_day", "first_day"))

    member_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                           primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchases: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[dt.datetime]  # the day's last counted purchase
    prev_day: Mapped[int | None] = mapped_column(Integer)
    next_day: Mapped[int | None] = mapped_column(Integer)
    first_day: Mapped[int] = mapped_column(Integer)  # the member's first purchase day ever


class VisitDays(Base):
    """Per local day, of the member_days rows on it: how many, how many are a member's first
    purchase day ever, or their first of the week after buying before it, and how many had
    one purchase."""

    __tablename__ = "visit_days"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    firsts: Mapped[int] = mapped_column(Integer, default=0)
    week_returning: Mapped[int] = mapped_column(Integer, default=0)
    ones: Mapped[int] = mapped_column(Integer, default=0)


class VisitPairs(Base):
    """Pairs of a member's purchase days, counted by the local weeks of the two days (days
    since 1970-01-01 plus 3, over 7): `all` a day and the one before (every gap), and for
    days with one purchase `one_pd` the day and the one before, `one_dq` the day and the
    one after, `one_pq` the ones before and after. How many pairs fall inside a period is
    then a sum over whole weeks plus the rows of the few days at its edges."""

    __tablename__ = "visit_pairs"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    x_week: Mapped[int] = mapped_column(Integer, primary_key=True)
    y_week: Mapped[int] = mapped_column(Integer, primary_key=True)
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    days: Mapped[int] = mapped_column(BigInteger, default=0)  # the sum of y - x


class VisitPairDays(Base):
    """visit_pairs by the days themselves, for the days at a period's edges."""

    __tablename__ = "visit_pair_days"
    __table_args__ = (Index("ix_visit_pair_days_kind_y_day", "kind", "y_day"),)

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    x_day: Mapped[int] = mapped_column(Integer, primary_key=True)
    y_day: Mapped[int] = mapped_column(Integer, primary_key=True)
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    days: Mapped[int] = mapped_column(BigInteger, default=0)


class DormantDays(Base):
    """How the count of dormant members changes from one end day to the next: active members
    who become dormant as of a day (+) or stop being so (-), by the report's rule. The count
    as of a day is the sum up to it."""

    __tablename__ = "dormant_days"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    change: Mapped[int] = mapped_column(Integer, default=0)


class CountedMember(Base):
    """The members whose changes dormant_days holds (those active when last counted): what
    to take away when a member's purchases or status change."""

    __tablename__ = "counted_members"

    member_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                           primary_key=True)


class DailyState(Base):
    """When the `dashboard` job last brought the daily figures up to date, the last row ids
    it saw, and the stock figures of that moment (tiers, points outstanding)."""

    __tablename__ = "daily_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # "default"
    computed_at: Mapped[dt.datetime]
    took_ms: Mapped[int] = mapped_column(Integer)
    marks: Mapped[dict[str, Any]] = mapped_column(JSON)  # table -> last id seen
    stock: Mapped[dict[str, Any]] = mapped_column(JSON)  # tiers, points outstanding


class ProgramVersion(Base):
    """One version of the shop's program (bot.loyalty.programs): the newest is live. Rows are
    never changed; a rollback is a new version. `data` is canonical TOML in the shape
    `schema` names, upgraded when an older shape is loaded."""

    __tablename__ = "program_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    schema: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    # in force from: created_at, or later when it takes something away from members (the
    # program's notice period); the live version is the newest one in force
    effective_at: Mapped[dt.datetime] = mapped_column(index=True)
    # a waiting version a newer save replaced before it took effect: it never will
    superseded: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(200))  # "file", "console:owner@x", "cli"
    source: Mapped[str] = mapped_column(String(16))  # file, apply, console, rollback
    file_sha256: Mapped[str | None] = mapped_column(String(64))  # of the file it came from
    summary: Mapped[str] = mapped_column(Text)  # what changed from the version before


class MemberImport(Base):
    """A members file uploaded in the console, imported in the background by the clock's
    `imports` job, a batch per transaction. Its bytes are kept in the database (the one
    storage every process of a PaaS shares) until the import is done. `runner` is the
    claim of the process importing it: a batch is committed only while it still holds it,
    and a claim whose heartbeat stopped is taken over and carries on after `lines_done`."""

    __tablename__ = "member_imports"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')",
                        name="status_known"),
        Index("ix_member_imports_status_id", "status", "id"),
    )

    id: Id = pk()
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)  # bytes
    uploaded_by: Mapped[str] = mapped_column(String(300))  # the audit actor, console:EMAIL
    uploaded_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    runner: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    rows_total: Mapped[int | None] = mapped_column(Integer)  # known once the file is checked
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    lines_done: Mapped[int] = mapped_column(Integer, default=0)  # the file's last line done
    imported: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)  # opening points credited
    failure: Mapped[str] = mapped_column(Text, default="")  # why the file could not be read


class MemberImportPart(Base):
    """One piece (1 MB) of an uploaded file, in order: neither side holds the file whole."""

    __tablename__ = "member_import_parts"

    import_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("member_imports.id"),
        primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class MemberImportRefusal(Base):
    """A row of an uploaded file that was not imported: its line and the reason."""

    __tablename__ = "member_import_refusals"

    import_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("member_imports.id"),
        primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
