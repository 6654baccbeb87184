"""What a database holds, in a few figures: the check after a restore (`flask --app bot db
check`), which a backup taken before it should match."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.models import Coupon, Member, PointEntry, Purchase, Refund, StampCard


@dataclass(frozen=True)
class ShopTotals:
    members: int
    active_members: int
    points_balances: int  # the members' cached balances, summed
    ledger_entries: int
    ledger_points: int  # every ledger entry, summed
    open_lots: int  # what is left of every lot, summed
    members_off_ledger: int  # members whose balance is not their entries' or lots' sum
    purchases: int
    refunds: int
    coupons: int
    coupons_redeemed: int
    stamp_cards: int
    stamps_on_active_cards: int

    @property
    def ledger_agrees(self) -> bool:
        """Every member's balance is the sum of their ledger entries and of their lots."""
        return (self.members_off_ledger == 0
                and self.points_balances == self.ledger_points == self.open_lots)

    def to_dict(self) -> dict[str, int | bool]:
        return {**asdict(self), "ledger_agrees": self.ledger_agrees}


def shop_totals(session: Session) -> ShopTotals:
    """The figures, in one statement (each a scan of its table: for a check by hand, not for
    a request)."""
    per_member = (select(PointEntry.member_id,
                         func.sum(PointEntry.points).label("points"),
                         func.coalesce(func.sum(PointEntry.remaining), 0).label("lots"))
                  .group_by(PointEntry.member_id).subquery())
    entries, lots = (func.coalesce(per_member.c.points, 0), func.coalesce(per_member.c.lots, 0))
    off = (select(func.count()).select_from(Member)
           .outerjoin(per_member, per_member.c.member_id == Member.id)
           .where(or_(Member.points_balance != entries, Member.points_balance != lots)))

    def count(model, *where) -> object:
        return select(func.count()).select_from(model).where(*where).scalar_subquery()

    def total(column) -> object:
        return select(func.coalesce(func.sum(column), 0)).scalar_subquery()

    row = session.execute(select(
        count(Member), count(Member, Member.status == "active"),
        total(Member.points_balance), count(PointEntry), total(PointEntry.points),
        total(PointEntry.remaining), off.scalar_subquery(), count(Purchase), count(Refund),
        count(Coupon), count(Coupon, Coupon.status == "redeemed"), count(StampCard),
        select(func.coalesce(func.sum(StampCard.stamps), 0))
        .where(StampCard.status == "active").scalar_subquery(),
    )).one()
    return ShopTotals(*(int(value) for value in row))
