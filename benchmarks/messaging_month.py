"""What a month of LINE messages costs the example café: billed messages by kind.

    .venv/bin/python benchmarks/messaging_month.py              # on SQLite, about 8 minutes
    .venv/bin/python benchmarks/messaging_month.py --flow claims --seed 3

A simulated March 2027 of program.example.toml, through the real webhook (staff `集點` and
`核銷 CODE AMOUNT`, customers tapping the rich menu) and the real clock jobs (every job at its
hour, the sender every 15 minutes), against the tests' fake LINE server:

- 300 members who joined over the past year, with a year of earlier purchases (so points
  and coupons expire this month), birthdays spread over the year;
- about 1,500 purchases: 30% of the members come every few days, half weekly, the rest
  rarely; a purchase uses a coupon from the wallet 35% of the time it holds one; half the
  customers open their member card before paying (a tap: a free reply), and anyone may open
  a card now and then;
- with the campaign: an NT$50 coupon to every member tagged `active`, on the 15th.

Two counters (`--flow`, both by default): "push", staff record each purchase with the
member's code (`集點 MEMBERCODE AMOUNT`, `[claims]` off) and the receipt is pushed; "claims",
staff make a claim code (`集點 AMOUNT`, or `核銷 CODE AMOUNT` for a coupon's owner) and the
customer scans it at once (`領取 CODE`): the receipt, and the "coupon used" news, are the
reply to that message.

Figures: messages queued per kind and what LINE bills. "Before" is what the code billed
before messages were combined: every queued message its own push or multicast recipient (the
same messages are queued either way). "Now" is the report's billed count: a push once however
many messages it carries, a reply nothing. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests/ lives next to bot/, outside the package
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from benchmarks.scratch import run_on_scratch  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.config import DEFAULT_PROGRAM, Config  # noqa: E402
from bot.db import transaction  # noqa: E402
from bot.jobs import JOBS, run_job  # noqa: E402
from bot.loyalty.campaigns import create_campaign  # noqa: E402
from bot.loyalty.coupons import wallet  # noqa: E402
from bot.loyalty.members import register_member, set_birthday  # noqa: E402
from bot.loyalty.purchases import record_purchase  # noqa: E402
from bot.loyalty.report import build_report  # noqa: E402
from bot.loyalty.staff import add_staff  # noqa: E402
from bot.models import Member, OutboxMessage  # noqa: E402
from tests.fake_line import FakeLine  # noqa: E402
from tests.line_helpers import CHANNEL_SECRET, postback, text, user_id  # noqa: E402
from tests.line_helpers import post as post_events  # noqa: E402

TAIPEI = ZoneInfo("Asia/Taipei")
START, DAYS, MEMBERS = dt.datetime(2027, 3, 1, tzinfo=TAIPEI), 31, 300
CLERK = user_id(100_000)
VISITS_PER_MONTH = [(0.3, 10.0), (0.5, 3.5), (0.2, 1.2)]  # share of members, visits a month
CARD_BEFORE_PAYING, TAP_PER_DAY, USE_COUPON = 0.5, 0.02, 0.35
CLOCK = [("expire", 0, 5), ("tags", 2, 30), ("tiers", 3, 0), ("birthday", 9, 0),
         ("expiry-warnings", 10, 0), ("nudges", 11, 0), ("winback", 15, 0)]
SEND_EVERY = dt.timedelta(minutes=15)


class Shop:
    """The app, its fake LINE, and a clock the webhook reads instead of the real one."""

    def __init__(self, url: str, line: FakeLine, claims: bool) -> None:
        self.now, self.line, self.claims = START, line, claims
        self.app = create_app(Config(
            database_url=url, program_path=str(DEFAULT_PROGRAM), secret_key="bench-key",
            line_channel_secret=CHANNEL_SECRET, line_channel_access_token=line.access_token,
            line_oa_basic_id="@mountainmist", public_base_url="https://cafe.example",
            line_api_base_url=line.base_url))
        self.client = self.app.test_client()
        self.rt = self.app.extensions["loyalty"]
        self.rt.program = dataclasses.replace(self.rt.program, claims=dataclasses.replace(
            self.rt.program.claims, enabled=claims))
        self.jobs = self.rt.jobs()

    def post(self, event: dict) -> None:
        with mock.patch("bot.line.webhook.utcnow", lambda: self.now):
            answer = post_events(self.client, [event])
        assert answer.status_code == 200, answer.get_data(as_text=True)

    def run(self, name: str) -> None:
        run_job(self.jobs, JOBS[name], self.now)


def seed(shop: Shop, rng: random.Random) -> dict[int, tuple[int, str]]:
    """Members who joined over the past year with a year of purchases (no messages: they
    are older than the month). Returns member number -> (id, member code)."""
    members = {}
    program = shop.rt.program
    with transaction(shop.rt.sessions) as session:
        add_staff(session, CLERK, START - dt.timedelta(days=400), name="阿明", actor="owner")
        for n in range(1, MEMBERS + 1):
            joined = START - dt.timedelta(days=rng.randint(20, 380), hours=rng.randint(0, 12))
            member = register_member(session, program, user_id(n), joined).member
            born = dt.date(1990, 1, 1) + dt.timedelta(days=rng.randrange(365))
            set_birthday(session, member.id, born, joined, actor="member")
            members[n] = (member.id, member.member_code)
            days = (START - joined).days
            for _ in range(rng.randint(0, max(1, days // 30))):
                when = joined + dt.timedelta(days=rng.uniform(0, days - 1))
                record_purchase(session, program, member.id, rng.randint(80, 400), when,
                                source="pos", order_id=f"past-{n}-{when.timestamp()}",
                                actor="pos")
    return members


def month(shop: Shop, members: dict[int, tuple[int, str]], rng: random.Random,
          campaign: bool) -> int:
    """Play the month; returns the purchases made."""
    rates = {}
    for n in members:
        pick, total = rng.random(), 0.0
        for share, visits in VISITS_PER_MONTH:
            total += share
            if pick < total:
                rates[n] = visits / DAYS
                break
        else:
            rates[n] = VISITS_PER_MONTH[-1][1] / DAYS
    purchases = 0
    for day in range(DAYS + 2):  # then two days of sending only: what still waits goes
        midnight = START + dt.timedelta(days=day)
        happenings = [(midnight.replace(hour=h, minute=m), "job", name) for name, h, m in CLOCK
                      if day < DAYS]
        tick = midnight
        while tick < midnight + dt.timedelta(days=1):
            happenings.append((tick, "send", ""))
            tick += SEND_EVERY
        if day < DAYS:
            for n, rate in rates.items():
                if rng.random() < rate:
                    happenings.append((midnight.replace(hour=rng.randint(9, 19),
                                                        minute=rng.randint(0, 59)), "buy", n))
                if rng.random() < TAP_PER_DAY:
                    happenings.append((midnight.replace(hour=rng.randint(8, 22),
                                                        minute=rng.randint(0, 59)), "tap", n))
            if campaign and day == 14:
                happenings.append((midnight.replace(hour=14), "campaign", ""))
        for when, kind, who in sorted(happenings, key=lambda h: (h[0], h[1])):
            shop.now = when
            if kind == "job":
                shop.run(who)
            elif kind == "send":
                shop.run("send")
            elif kind == "tap":
                shop.post(postback(user_id(who), rng.choice(
                    ["action=points", "action=stamps", "action=wallet", "action=card"])))
            elif kind == "campaign":
                send_campaign(shop)
            else:
                buy(shop, members[who], who, rng)
                purchases += 1
    return purchases


def buy(shop: Shop, member: tuple[int, str], n: int, rng: random.Random) -> None:
    member_id, code = member
    if rng.random() < CARD_BEFORE_PAYING:
        shop.post(postback(user_id(n), "action=card"))
    amount = rng.randint(80, 400)
    with shop.rt.sessions() as session:
        usable = [v for v in wallet(session, shop.rt.program, member_id, shop.now)
                  if v.template.min_spend <= amount and v.coupon.valid_from <= shop.now]
    if usable and rng.random() < USE_COUPON:
        shop.post(text(CLERK, f"核銷 {usable[0].coupon.code} {amount}"))
    elif shop.claims:
        shop.post(text(CLERK, f"集點 {amount}"))
    else:
        shop.post(text(CLERK, f"集點 {code} {amount}"))
    if shop.claims:  # the customer scans the code on the staff's screen and sends it
        staff_reply = json.dumps(shop.line.replies()[-1]["messages"], ensure_ascii=False)
        claim = re.search(r"[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", staff_reply.split(
            '"hero"')[-1]) if '"hero"' in staff_reply else None
        if claim:  # (a coupon that paid it all: no code, the receipt is pushed)
            shop.post(text(user_id(n), f"領取 {claim.group(0)}"))


def send_campaign(shop: Shop) -> None:
    from bot.jobs import send_campaign as send

    with transaction(shop.rt.sessions) as session:
        create_campaign(session, shop.rt.program, "spring", template="nt50", now=shop.now,
                        name="春季回饋", segment="active", push=True)
    send(shop.jobs, "spring", shop.now)


def figures(shop: Shop) -> tuple[Counter, Counter, Counter, Counter]:
    """Queued per kind; billed now per kind; delivered by reply; not delivered, by kind."""
    with shop.rt.sessions() as session:
        rows = session.execute(select(OutboxMessage.kind, OutboxMessage.status,
                                      OutboxMessage.via)).all()
        pushes = build_report(session, shop.rt.program, START,
                              START + dt.timedelta(days=DAYS + 2), shop.now).pushes
    queued = Counter(kind for kind, _, _ in rows)
    billed = Counter({k.kind: k.sent for k in pushes.billed_by_kind})
    replies = Counter(kind for kind, status, via in rows if via == "reply")
    missing = Counter(f"{kind} {status}" for kind, status, _ in rows if status != "sent")
    return queued, billed, replies, missing


def simulate(url: str, seed_value: int, campaign: bool, claims: bool) -> None:
    rng = random.Random(seed_value)
    with FakeLine() as line:
        line.set_quota(None)
        shop = Shop(url, line, claims)
        began = time.perf_counter()
        members = seed(shop, rng)
        with shop.rt.sessions() as session:
            assert session.scalar(select(Member).limit(1)) is not None
        purchases = month(shop, members, rng, campaign)
        queued, billed, replies, missing = figures(shop)
        shop.rt.close()
    print(f"\n{'claim codes' if claims else 'pushed receipts'}, "
          f"{'with' if campaign else 'without'} the campaign: {MEMBERS} members, "
          f"{purchases:,} purchases in {DAYS} days ({time.perf_counter() - began:.0f} s)")
    print(f"  {'kind':<16}{'queued':>8}{'billed before':>15}{'billed now':>12}"
          f"{'by reply':>10}")
    for kind in sorted(queued, key=lambda k: -queued[k]):
        print(f"  {kind:<16}{queued[kind]:>8,}{queued[kind]:>15,}{billed[kind]:>12,}"
              f"{replies[kind]:>10,}")
    before, now = sum(queued.values()), sum(billed.values())
    print(f"  {'total':<16}{before:>8,}{before:>15,}{now:>12,}{sum(replies.values()):>10,}")
    print(f"  billed now vs before: {now:,} / {before:,} = {now / before:.0%} "
          f"({1 - now / before:.0%} fewer); per purchase {now / purchases:.2f} "
          f"(before {before / purchases:.2f})")
    print("  not delivered: " + (", ".join(f"{n} {k}" for k, n in sorted(missing.items()))
                                 or "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flow", choices=("push", "claims", "both"), default="both")
    args, rest = parser.parse_known_args()
    logging.disable(logging.INFO)  # the jobs log a line a run; the figures are below
    sys.argv = [sys.argv[0], *rest]
    flows = {"push": (False,), "claims": (True,), "both": (False, True)}[args.flow]
    for claims in flows:
        for campaign in (False, True):
            run_on_scratch(lambda url, c=campaign, k=claims: simulate(url, args.seed, c, k))


if __name__ == "__main__":
    main()
