"""Races between OS processes: every rule holds when many requests arrive at the same moment.

Each test forks worker processes (the "fork" start method, so they inherit the program and
the work function without pickling). Every worker opens its own engine, connects, waits at a
barrier so all of them start together, runs one unit of work in `transaction()` like a real
entrypoint, and sends back ("ok", value) or the LoyaltyError's code. An unexpected exception
comes back as ("crash", traceback) and fails the test; a worker that hangs fails it after
RUN_TIMEOUT seconds instead of blocking the run.

On SQLite, BEGIN IMMEDIATE serializes writers, so these tests mostly guard that the serialized
path answers correctly; on PostgreSQL the transactions truly overlap and the row locks,
conditional UPDATEs and unique constraints are what keep the numbers right.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import queue
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from itertools import accumulate
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, make_sessionmaker, transaction
from bot.loyalty.claims import make_claim, take_claim
from bot.loyalty.coupons import issue_coupon, redeem_coupon
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.members import adjust_points, register_member
from bot.loyalty.purchases import record_purchase
from bot.loyalty.rewards import redeem_reward
from bot.models import (
    AuditLog,
    Claim,
    Coupon,
    CouponTemplateRow,
    Member,
    PointEntry,
    Purchase,
    Redemption,
    Stamp,
    StampCard,
)
from bot.program import Milestone, Program, Reward
from tests.helpers import balance, join, ledger_totals

pytestmark = pytest.mark.slow

FORK = multiprocessing.get_context("fork")
START_TIMEOUT = 20  # seconds for every worker to connect and reach the barrier
RUN_TIMEOUT = 45  # seconds for the whole race, start to last result

Outcome = tuple[str, Any]  # ("ok", value) | (error code, None) | ("crash", traceback)
Race = Callable[..., list[Outcome]]


# -- the harness -----------------------------------------------------------------------------

def _worker(url: str, barrier, results, index: int, work: Callable, args: tuple) -> None:
    """One racer: its own engine and connection, then the barrier, then one piece of work."""
    try:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with engine.connect():  # connect (and set the SQLite pragmas) before the start line
            pass
    except BaseException:
        barrier.abort()  # the others fail at once instead of waiting for a racer that is gone
        results.put((index, "crash", traceback.format_exc()))
        return
    try:
        barrier.wait(START_TIMEOUT)
        outcome = ("ok", work(sessions, index, *args))
    except LoyaltyError as exc:  # an expected refusal: its code only, no traceback
        outcome = (exc.code, None)
    except BaseException:
        outcome = ("crash", traceback.format_exc())
    finally:
        engine.dispose()
    results.put((index, *outcome))


@pytest.fixture
def race(db_url: str, engine) -> Race:
    """race(work, count, *args): run work(sessions, index, *args) in `count` processes at once.

    Returns the outcomes in worker order. The parent's engine is disposed first, so no
    connection of the parent is shared with a child (it reconnects lazily afterwards).
    """

    def run(work: Callable, count: int, *args: Any) -> list[Outcome]:
        engine.dispose()
        barrier, results = FORK.Barrier(count), FORK.Queue()
        workers = [FORK.Process(target=_worker, args=(db_url, barrier, results, i, work, args),
                                daemon=True) for i in range(count)]
        for worker in workers:
            worker.start()
        outcomes: dict[int, Outcome] = {}
        deadline = time.monotonic() + RUN_TIMEOUT
        try:
            while len(outcomes) < count:
                try:
                    index, code, value = results.get(timeout=0.2)
                    outcomes[index] = (code, value)
                    continue
                except queue.Empty:
                    pass
                missing = sorted(set(range(count)) - set(outcomes))
                if time.monotonic() > deadline:
                    pytest.fail(f"workers {missing} gave no result within {RUN_TIMEOUT}s "
                                "(a deadlock or a hang)")
                if not any(workers[i].is_alive() for i in missing):
                    with suppress(queue.Empty):  # a last result may still be in the pipe
                        index, code, value = results.get(timeout=1)
                        outcomes[index] = (code, value)
                        continue
                    codes = {i: workers[i].exitcode for i in missing}
                    pytest.fail(f"workers died without a result, exit codes {codes}")
        finally:
            for worker in workers:
                worker.join(timeout=max(0.1, deadline - time.monotonic()))
            for worker in workers:
                if worker.is_alive():
                    worker.kill()
                    worker.join(5)
            results.close()
        crashes = [value for code, value in outcomes.values() if code == "crash"]
        if crashes:
            pytest.fail(f"{len(crashes)} of {count} workers crashed; the first:\n{crashes[0]}")
        return [outcomes[i] for i in range(count)]

    return run


def codes(outcomes: list[Outcome]) -> Counter[str]:
    return Counter(code for code, _ in outcomes)


def values(outcomes: list[Outcome]) -> list[Any]:
    return [value for code, value in outcomes if code == "ok"]


def count(sessions: sessionmaker[Session], model, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def running_balances(sessions: sessionmaker[Session], member_id: int) -> list[int]:
    """The member's balance after each ledger entry, in the order they were written."""
    with sessions() as session:
        points = session.scalars(select(PointEntry.points).where(PointEntry.member_id == member_id)
                                 .order_by(PointEntry.id)).all()
    return list(accumulate(points))


# -- the work each racer does -----------------------------------------------------------------

def redeem(sessions, index: int, program: Program, code: str, now: dt.datetime) -> int:
    with transaction(sessions) as session:
        return redeem_coupon(session, program, code, now, actor=f"staff-{index}",
                             order_amount=300).coupon.id


def take(sessions, index: int, program: Program, code: str, members: list[int],
         now: dt.datetime) -> int:
    with transaction(sessions) as session:
        take_claim(session, program, code, members[index], now, actor=f"line:{index}")
        return members[index]


def spend_on_reward(sessions, index: int, program: Program, member_id: int,
                    now: dt.datetime) -> int:
    with transaction(sessions) as session:
        return redeem_reward(session, program, member_id, "nt50", now,
                             actor=f"till-{index}").id


def spend_by_adjustment(sessions, index: int, program: Program, member_id: int,
                        now: dt.datetime) -> None:
    with transaction(sessions) as session:
        adjust_points(session, program, member_id, -100, now, reason="race",
                      actor=f"owner-{index}")


def record_order(sessions, index: int, program: Program, member_ids: list[int], order_id: str,
                 now: dt.datetime) -> tuple[int, bool, int]:
    """Record `order_id` for member_ids[index] (or the only member, if one is given)."""
    member_id = member_ids[index % len(member_ids)]
    with transaction(sessions) as session:
        result = record_purchase(session, program, member_id, 450, now, source="shop",
                                 order_id=order_id, actor=f"webhook-{index}")
        return result.purchase.id, result.duplicate, result.points


def buy_five_on_five_days(sessions, index: int, program: Program, member_id: int,
                          now: dt.datetime) -> list[tuple[int, int, int]]:
    """Five NT$100 visits on five different days, each its own transaction."""
    bought = []
    for j in range(5):
        when = now - dt.timedelta(days=index * 5 + j)
        with transaction(sessions) as session:
            result = record_purchase(session, program, member_id, 100, when, source="pos",
                                     order_id=f"till-{index}-{j}", actor=f"till-{index}")
            bought.append((result.purchase.id, result.points, result.stamps))
    return bought


def issue_capped(sessions, index: int, program: Program, member_ids: list[int],
                 now: dt.datetime) -> int:
    with transaction(sessions) as session:
        return issue_coupon(session, program, member_ids[index], "cake_set", now,
                            reason="campaign", actor=f"broadcast-{index}").id


def follow(sessions, index: int, program: Program, line_user_id: str,
           now: dt.datetime) -> tuple[int, bool, int | None]:
    with transaction(sessions) as session:
        joined = register_member(session, program, line_user_id, now, display_name="Alice")
        return (joined.member.id, joined.created,
                joined.welcome_coupon.id if joined.welcome_coupon else None)


# -- the races --------------------------------------------------------------------------------

@pytest.fixture
def fixed_program(program: Program) -> Program:
    """The example program with the numbers these tests count on pinned down."""
    return dataclasses.replace(
        program, amount_per_point=30, rounding="floor", campaigns=(),
        rewards=(Reward(key="nt50", points=100, coupon="nt50"),),
        stamps=dataclasses.replace(program.stamps, per="visit", min_amount=80, goal=10,
                                   starter_stamps=1, one_per_day=True, card_valid_days=365,
                                   completion_reward="free_drink",
                                   milestones=(Milestone(at=5, reward="pct10"),)))


def test_a_coupon_redeemed_by_twenty_tills_at_once_is_used_exactly_once(
        race, sessions, fixed_program, now):
    member = join(sessions, fixed_program, now)
    with transaction(sessions) as session:
        coupon = issue_coupon(session, fixed_program, member, "nt50", now, reason="test")
        coupon_id, code = coupon.id, coupon.code

    outcomes = race(redeem, 20, fixed_program, code, now)

    assert codes(outcomes) == {"ok": 1, "already_redeemed": 19}
    assert values(outcomes) == [coupon_id]
    assert count(sessions, Redemption) == 1
    assert count(sessions, AuditLog, AuditLog.action == "coupon.redeem") == 1
    with sessions() as session:
        assert session.get(Coupon, coupon_id).status == "redeemed"


def test_a_claim_code_scanned_by_eight_customers_at_once_goes_to_exactly_one(
        race, sessions, fixed_program, now):
    program = dataclasses.replace(fixed_program, claims=dataclasses.replace(
        fixed_program.claims, enabled=True))
    members = [join(sessions, program, now, user=f"U-{n}") for n in range(8)]
    with transaction(sessions) as session:
        code = make_claim(session, program, 600, now, source="line", order_id="claim:1",
                          actor="test").claim.code

    outcomes = race(take, 8, program, code, members, now)

    assert codes(outcomes) == {"ok": 1, "claim_taken": 7}
    winner = values(outcomes)[0]
    with sessions() as session:
        order = session.scalars(select(Purchase)).one()
        assert (order.member_id, order.points_earned) == (winner, 20)
        assert session.scalars(select(Claim.claimed_by)).one() == winner
    assert {m: balance(sessions, m) for m in members} == {
        m: 20 if m == winner else 0 for m in members}
    assert count(sessions, AuditLog, AuditLog.action == "claim.taken") == 1


@pytest.mark.parametrize("spend", [spend_on_reward, spend_by_adjustment],
                         ids=["reward", "adjustment"])
def test_twenty_spends_of_100_points_from_a_balance_of_150_let_exactly_one_through(
        race, sessions, fixed_program, now, spend):
    member = join(sessions, fixed_program, now)
    with transaction(sessions) as session:
        adjust_points(session, fixed_program, member, 150, now, reason="seed", actor="test")

    outcomes = race(spend, 20, fixed_program, member, now)

    assert codes(outcomes) == {"ok": 1, "insufficient_points": 19}
    assert balance(sessions, member) == 50
    assert ledger_totals(sessions, member) == (50, 50, 50)
    assert min(running_balances(sessions, member)) >= 0
    assert count(sessions, PointEntry, PointEntry.member_id == member,
                 PointEntry.points < 0) == 1
    if spend is spend_on_reward:  # the coupon comes with the spend, and only with it
        assert count(sessions, Coupon, Coupon.reason == "reward") == 1
        with sessions() as session:
            spent = session.scalar(select(PointEntry).where(PointEntry.points < 0))
        assert spent.coupon_id == values(outcomes)[0]


def test_one_order_reported_by_ten_webhooks_at_once_is_recorded_and_credited_once(
        race, sessions, fixed_program, now):
    member = join(sessions, fixed_program, now)

    outcomes = race(record_order, 10, fixed_program, [member], "A-1001", now)

    assert codes(outcomes) == {"ok": 10}
    results = values(outcomes)
    assert len({purchase_id for purchase_id, _, _ in results}) == 1
    assert sorted(duplicate for _, duplicate, _ in results) == [False] + [True] * 9
    assert {points for _, _, points in results} == {15}  # NT$450 / 30
    assert count(sessions, Purchase) == 1
    assert count(sessions, PointEntry, PointEntry.kind == "earn") == 1
    assert ledger_totals(sessions, member) == (15, 15, 15)
    with sessions() as session:
        assert session.scalar(select(func.sum(Stamp.count))) == 2  # the visit and the starter


def test_one_order_id_claimed_for_ten_members_at_once_goes_to_exactly_one_of_them(
        race, sessions, fixed_program, now):
    members = [join(sessions, fixed_program, now, user=f"U-{i}") for i in range(10)]

    outcomes = race(record_order, 10, fixed_program, members, "A-2002", now)

    assert codes(outcomes) == {"ok": 1, "order_conflict": 9}
    with sessions() as session:
        purchase = session.scalar(select(Purchase))
        owner = session.get(Member, purchase.member_id)
        assert owner.points_balance == purchase.points_earned == 15
        assert session.scalar(select(func.sum(Member.points_balance))) == 15
    assert count(sessions, Purchase) == 1
    assert count(sessions, PointEntry) == 1
    assert values(outcomes)[0][0] == purchase.id


def test_forty_purchases_from_eight_tills_at_once_lose_no_points_and_no_stamps(
        race, sessions, fixed_program, now):
    member = join(sessions, fixed_program, now)

    outcomes = race(buy_five_on_five_days, 8, fixed_program, member, now)

    assert codes(outcomes) == {"ok": 8}
    bought = [purchase for till in values(outcomes) for purchase in till]
    assert len({purchase_id for purchase_id, _, _ in bought}) == 40
    assert count(sessions, Purchase) == 40
    with sessions() as session:
        earned = session.scalar(select(func.sum(Purchase.points_earned)))
        stamped = session.scalar(select(func.sum(Purchase.stamps_earned)))
        stamps = session.scalar(select(func.sum(Stamp.count)))
        starters = session.scalar(select(func.sum(Stamp.count)).where(Stamp.reason == "starter"))
        per_purchase = session.execute(
            select(Purchase.stamps_earned, func.sum(Stamp.count)).join(Stamp)
            .group_by(Purchase.id, Purchase.stamps_earned)).all()
        cards = session.scalars(select(StampCard).order_by(StampCard.id)).all()
        card_coupons = session.scalars(select(Coupon.reason).where(
            Coupon.reason == "stamp_card")).all()
    assert earned == sum(points for _, points, _ in bought) == 40 * 3  # NT$100 / 30
    assert ledger_totals(sessions, member) == (120, 120, 120)
    # one visit stamp a day for 40 different days, plus one starter stamp on the first visit
    assert stamped == stamps == sum(card.stamps for card in cards) == 41
    assert starters == 1
    assert len(per_purchase) == 40
    assert all(earned_here == on_cards for earned_here, on_cards in per_purchase)
    assert [(card.status, card.stamps) for card in cards] == [("completed", 10)] * 4 + [
        ("active", 1)]
    assert len(card_coupons) == 4 * 2  # each full card: its milestone and its completion coupon


def test_a_coupon_capped_at_five_given_to_twenty_members_at_once_is_issued_five_times(
        race, sessions, fixed_program, now):
    template = dataclasses.replace(fixed_program.coupons["cake_set"], total_cap=5,
                                   per_member_cap=None)
    capped = dataclasses.replace(fixed_program,
                                 coupons={**fixed_program.coupons, "cake_set": template})
    members = [join(sessions, capped, now, user=f"U-{i}") for i in range(20)]

    outcomes = race(issue_capped, 20, capped, members, now)  # the template's first issue, too

    assert codes(outcomes) == {"ok": 5, "quantity_exceeded": 15}
    with sessions() as session:
        row = session.scalar(select(CouponTemplateRow).where(CouponTemplateRow.key == "cake_set"))
        issued = session.scalars(select(Coupon.id).where(Coupon.template_id == row.id)).all()
    assert row.issued_count == 5
    assert sorted(issued) == sorted(values(outcomes))
    assert count(sessions, CouponTemplateRow, CouponTemplateRow.key == "cake_set") == 1


def test_a_user_whose_follow_event_arrives_eight_times_at_once_joins_once_with_one_gift(
        race, sessions, fixed_program, now):
    outcomes = race(follow, 8, fixed_program, "U-twice", now)

    assert codes(outcomes) == {"ok": 8}
    results = values(outcomes)
    assert len({member_id for member_id, _, _ in results}) == 1
    assert sorted(created for _, created, _ in results) == [False] * 7 + [True]
    gifts = [coupon_id for _, _, coupon_id in results if coupon_id is not None]
    assert len(gifts) == 1
    assert count(sessions, Member) == 1
    assert count(sessions, Coupon, Coupon.reason == "welcome") == 1
    assert count(sessions, AuditLog, AuditLog.action == "member.join") == 1
    with sessions() as session:
        member = session.scalar(select(Member))
        assert member.line_user_id == "U-twice" and member.welcome_given_at is not None
