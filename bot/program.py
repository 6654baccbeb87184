"""Load and validate the shop's TOML program into frozen dataclasses.

Every mistake becomes one ProgramError naming the file, the key and (where it can be
found) the line, so an owner never sees a traceback.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

COUPON_KINDS = ("amount_off", "percent_off", "free_shipping", "free_gift")
ROUNDING = ("floor", "round", "ceil")
EXPIRY_MODES = ("lot", "rolling")
DOWNGRADE_RULES = ("never", "rolling", "grace")
# LINE Official Account plans in Taiwan (since 2023-09): messages a month within the fee
LINE_PLANS = {"free": 200, "light": 3000, "standard": 6000}
# what the shop tells members; receipts (a purchase, a coupon used, a POS record linked) go
# out at once, the others may wait a while for the member's next message or tap, which
# LINE lets the bot answer for free
NOTICE_KINDS = ("receipt", "coupon_used", "expiry_warning", "birthday", "tier", "nudge",
                "winback", "campaign")
RECEIPT_KINDS = ("receipt", "coupon_used")
# a nudge is never pushed on its own by default: it rides a reply or another push within
# three days, or it is dropped (the receipt already shows how far a reward is)
DEFAULT_WAIT_HOURS = {"expiry_warning": 12, "birthday": 10, "tier": 48, "nudge": 72}
DEFAULT_DROP_AFTER_DAYS = {"nudge": 3}
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")  # Chinese, and full-width forms
BENEFIT_LENGTH, MAX_BENEFITS = 40, 5  # a tier's benefits: short lines on the cards
CATEGORY_NAME_LENGTH = 20  # a category's name, read inside a line of the rules and notices
UNKNOWN_TEXT = ("silent", "pointer")  # silent: the owner answers by hand in LINE's chat
KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")  # a reward's key: it travels in postback data
MAX_NUMBER = 1_000_000_000  # any whole number in the program: far above a real one
MAX_DAYS = 3650  # a count of days (a coupon's validity, a card's life ...): ten years
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2199, 12, 31)
RESERVE_SHARE = 10  # % of the allowance kept for receipts and expiry warnings by default


class ProgramError(Exception):
    """The program file is unusable; str() is the one message shown to the owner."""

    def __init__(self, path: str, key: str, message: str, line: int | None = None):
        self.path, self.key, self.line = path, key, line
        where = f"{path}, line {line}" if line else path
        label = f"[{key}] " if key else ""
        super().__init__(f"Program file error in {where}: {label}{message}")


@dataclass(frozen=True)
class PointsCampaign:
    name: str
    name_en: str
    starts: dt.date
    ends: dt.date
    multiplier: Fraction


@dataclass(frozen=True)
class CouponTemplate:
    key: str
    title: str
    title_en: str
    kind: str
    amount: int = 0
    percent: int = 0
    max_discount: int | None = None
    min_spend: int = 0
    gift: str = ""
    gift_en: str = ""  # the gift in English (falls back to title_en)
    valid_days: int | None = None
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    total_cap: int | None = None
    per_member_cap: int | None = None
    retired: bool = False  # no longer given (coupons already given stay usable)


@dataclass(frozen=True)
class Milestone:
    at: int
    reward: str


@dataclass(frozen=True)
class StampRules:
    per: str
    amount_per_stamp: int
    min_amount: int
    goal: int
    starter_stamps: int
    one_per_day: bool
    card_valid_days: int
    completion_reward: str | None
    milestones: tuple[Milestone, ...]


@dataclass(frozen=True)
class Reward:
    key: str  # stable across edits: a confirmation names it, never a place in the list
    points: int
    coupon: str
    retired: bool = False  # no longer offered (its key stays taken)
    starts: dt.date | None = None  # offered from this local day ...
    ends: dt.date | None = None  # ... through this one (inclusive)


@dataclass(frozen=True)
class Tier:
    key: str
    name: str
    name_en: str
    threshold: int
    multiplier: Fraction
    birthday_coupon: str | None
    benefits: tuple[str, ...] = ()  # what else the tier gives, one short line each
    benefits_en: tuple[str, ...] = ()


@dataclass(frozen=True)
class Faq:
    keywords: tuple[str, ...]  # folded (NFKC, lower case), as a customer's text is
    answer: str
    answer_en: str


@dataclass(frozen=True)
class Change:
    """Something a newer version takes away from members (bot.loyalty.programs.takeaways),
    announced until it takes effect: `kind` names it, `subject` what it is about (a reward's
    coupon template, a tier's key), `old` and `new` the values."""

    kind: str  # reward_price, reward_gone, expiry_shorter, earn_slower, category_lower,
    #            tier_multiplier_lower, tier_threshold_higher, tier_benefit_gone
    subject: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ClaimRules:
    """Claim codes (bot.loyalty.claims): staff or the POS record an order without its
    customer, who takes it by scanning the code's QR; the receipt is then a free reply."""

    enabled: bool = False
    minutes: int = 3  # how long a code lives: a code on a screen is scanned at once
    minutes_by_source: dict[str, int] = field(default_factory=dict)  # "pos" = 4320 (printed)
    staff_daily_total: int | None = None  # NT$ of claim codes one staff member makes a day

    def lifetime(self, source: str) -> dt.timedelta:
        return dt.timedelta(minutes=self.minutes_by_source.get(source, self.minutes))


CLAIM_MOST_MINUTES = 72 * 60


@dataclass(frozen=True)
class Program:
    path: str  # where it came from: the file, or "version N" of the live program
    shop_name: str
    shop_name_en: str
    timezone: ZoneInfo
    currency: str
    amount_per_point: int
    rounding: str
    category_multipliers: dict[str, Fraction]
    campaigns: tuple[PointsCampaign, ...]
    expiry_mode: str
    expiry_months: int
    expiry_end_of_month: bool
    stamps: StampRules
    coupons: dict[str, CouponTemplate]
    rewards: tuple[Reward, ...]
    tier_window_months: int
    downgrade: str
    grace_months: int
    tiers: tuple[Tier, ...]
    welcome_coupon: str | None
    birthday_when: str
    winback_after_days: int | None
    winback_coupon: str | None
    confirm_above: int | None
    staff_self_service: bool = False  # staff may earn on, and redeem for, their own membership
    claims: ClaimRules = field(default_factory=ClaimRules)
    receipts: bool = True
    quiet_hours: tuple[dt.time, dt.time] | None = None  # scheduled pushes wait outside these
    monthly_push_budget: int | None = None
    line_plan: str | None = None  # a key of LINE_PLANS
    reserve: int = 0  # billed messages a month kept for receipts and expiry warnings
    wait_hours: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_WAIT_HOURS))
    drop_after_days: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_DROP_AFTER_DAYS))
    marketing_per_day: int = 1  # pushes of nudges, win-back and campaigns to one member
    marketing_per_week: int = 3
    aggregation_units: bool = False  # name each push's unit for LINE's per-unit statistics
    expiry_warning_days: tuple[int, ...] = (30, 7, 1)
    coupon_warning_days: int = 3
    nudge_stamps: int = 2
    nudge_points: int = 50
    privacy_notice: str = ""  # the shop's full notice ([privacy] notice); "" = a short default
    privacy_notice_en: str = ""
    faq: tuple[Faq, ...] = ()  # keywords the bot answers with the shop's own text
    unknown_text: str = "silent"  # a message it does not know: "silent" or "pointer"
    version: int = 0  # the live program's version (bot.loyalty.programs); 0 for a file
    notice_days: int = 30  # [changes]: a change that takes something away waits this long
    coming: tuple[Change, ...] = ()  # what a saved version takes away, on `coming_at`
    coming_at: dt.datetime | None = None
    # what customers read for a category of category_multipliers (its key where none)
    category_names: dict[str, str] = field(default_factory=dict)
    category_names_en: dict[str, str] = field(default_factory=dict)

    @property
    def allowance(self) -> int | None:
        """Billed messages a month: the plan's, or the shop's own lower budget."""
        limits = [x for x in (LINE_PLANS.get(self.line_plan or ""), self.monthly_push_budget)
                  if x is not None]
        return min(limits) if limits else None

    def tier(self, key: str) -> Tier:
        """The tier with this key, or the lowest tier for an unknown key."""
        return next((t for t in self.tiers if t.key == key), self.tiers[0])

    def answer(self, text: str) -> Faq | None:
        """The FAQ entry one of whose keywords is this (folded) text."""
        return next((f for f in self.faq if text in f.keywords), None)

    def reward(self, key: str) -> Reward | None:
        return next((r for r in self.rewards if r.key == key), None)


def read_text(path: str | Path) -> str:
    """A program file's text (ProgramError when it cannot be read)."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")  # tolerate Notepad's BOM
    except OSError as exc:
        raise ProgramError(str(path), "", f"cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ProgramError(str(path), "", "the file is not UTF-8 text") from None


def load_program(path: str | Path) -> Program:
    """Read and validate a program file; raise ProgramError on the first mistake."""
    return parse_program(read_text(path), str(path))


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """The program's TOML as data (ProgramError, with its line, when it is not TOML)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ProgramError(path, "", f"not valid TOML: {exc}", line) from None


def parse_program(text: str, path: str, version: int = 0) -> Program:
    """Validate a program's TOML text; `path` names it in errors (a file, or "version 3")."""
    return _Reader(path, text).program(parse_toml(text, path), version)


class _Reader:
    """Walks the parsed TOML, remembering where each value came from."""

    def __init__(self, path: str, text: str):
        self.path, self.lines = path, text.splitlines()

    def fail(self, key: str, message: str) -> ProgramError:
        return ProgramError(self.path, key, message, self._locate(key))

    def _locate(self, key: str) -> int | None:
        """Best-effort line of a dotted key such as `tiers[2].threshold`."""
        parts = key.split(".")
        start = 0
        if len(parts) > 1:
            found = re.fullmatch(r"([^\[]+)(?:\[(\d+)\])?", ".".join(parts[:-1]))
            if found is None:
                return None
            table, index = found.groups()
            header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?")
            hits = [n for n, line in enumerate(self.lines) if header.match(line)]
            if not hits:
                return None
            start = hits[min(int(index or 0), len(hits) - 1)]
        name = re.compile(rf"^\s*\"?{re.escape(parts[-1].split('[')[0])}\"?\s*=")
        for n in range(start, len(self.lines)):
            if n > start and len(parts) > 1 and self.lines[n].lstrip().startswith("["):
                break
            if name.match(self.lines[n]):
                return n + 1
        return start + 1 if len(parts) > 1 else None

    # -- typed getters -------------------------------------------------------------
    def table(self, data: dict, key: str, path: str, required: bool = True) -> dict:
        value = data.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, "missing table" if value is None else "must be a table")
        return value

    def integer(self, data: dict, key: str, path: str, *, default: Any = ..., minimum: int = 0,
                maximum: int = MAX_NUMBER) -> Any:
        if key not in data:
            if default is ...:
                raise self.fail(path, "is required")
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be a whole number, not {value!r}")
        if value < minimum:
            raise self.fail(path, f"must be at least {minimum}, not {value}")
        if value > maximum:
            raise self.fail(path, f"must be at most {maximum:,}, not {value:,}")
        return value

    def text(self, data: dict, key: str, path: str, *, default: Any = ..., choices=None) -> Any:
        if key not in data:
            if default is ...:
                raise self.fail(path, "is required")
            return default
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "must be non-empty text")
        if choices and value not in choices:
            raise self.fail(path, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def category_names(self, earning: dict, key: str, multipliers: dict[str, Fraction]
                       ) -> dict[str, str]:
        """`[earning.category_names]` (or `_en`): what customers read for a category with a
        multiplier, such as beans = "咖啡豆" (the key is the POS's, often not a word for them)."""
        names = self.table(earning, key, f"earning.{key}", required=False)
        found = {}
        for category in names:
            path = f"earning.{key}.{category}"
            if category not in multipliers:
                raise self.fail(path, f"names a category without a multiplier: add {category} "
                                      f"to [earning.category_multipliers] first")
            value = (self.english(names, category, path, "") if key.endswith("_en")
                     else self.text(names, category, path))
            if len(value.strip()) > CATEGORY_NAME_LENGTH:
                raise self.fail(path, f"is at most {CATEGORY_NAME_LENGTH} characters, "
                                      f"not {len(value.strip())}")
            found[str(category)] = value.strip()
        return found

    def english(self, data: dict, key: str, path: str, fallback: str) -> str:
        """An optional English form (`name_en`, `title_en`, `gift_en` ...): English cards show
        it, so it holds no Chinese; left out, English cards show `fallback`."""
        if key not in data:
            return fallback
        value = self.text(data, key, path)
        if _CJK.search(value):
            raise self.fail(path, f"is the English form shown on English cards: write it "
                                  f"without Chinese characters, not {value!r}")
        return value

    def text_list(self, data: dict, key: str, path: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(
                isinstance(v, str) and v.strip() and len(v) <= BENEFIT_LENGTH for v in value):
            raise self.fail(path, f"must be a list of short texts (up to {BENEFIT_LENGTH} "
                                  f"characters each) such as [\"免費升級大杯\"]")
        if len(value) > MAX_BENEFITS:
            raise self.fail(path, f"lists at most {MAX_BENEFITS} benefits, not {len(value)}")
        return tuple(v.strip() for v in value)

    def benefits(self, item: dict, at: str) -> dict[str, tuple[str, ...]]:
        """A tier's `benefits` and their English `benefits_en` (line for line)."""
        zh = self.text_list(item, "benefits", f"{at}.benefits")
        if "benefits_en" not in item:
            return {"benefits": zh, "benefits_en": zh}
        en = self.text_list(item, "benefits_en", f"{at}.benefits_en")
        if len(en) != len(zh):
            raise self.fail(f"{at}.benefits_en", f"must list the same {len(zh)} benefits as "
                                                 f"benefits, in English, not {len(en)}")
        if any(_CJK.search(line) for line in en):
            raise self.fail(f"{at}.benefits_en", "is the English form shown on English cards: "
                                                 "write it without Chinese characters")
        return {"benefits": zh, "benefits_en": en}

    def flag(self, data: dict, key: str, path: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value

    def multiplier(self, value: Any, path: str) -> Fraction:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
            raise self.fail(path, f"must be a number above 0 (like 1.5), not {value!r}")
        return Fraction(str(value))

    def date(self, data: dict, key: str, path: str, required: bool = False) -> dt.date | None:
        value = data.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise self.fail(path, "must be a date like 2026-12-31 (no quotes)")
        if not FIRST_DAY <= value <= LAST_DAY:
            raise self.fail(path, f"must be between {FIRST_DAY} and {LAST_DAY} (for no end, "
                                  f"leave it out), not {value}")
        return value

    def tables(self, items: Any, path: str) -> list[dict]:
        """An array of tables such as [[tiers]]; each entry must itself be a table."""
        if items is None:
            return []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise self.fail(path, f"must be a list of [[{path}]] tables")
        return items

    def coupon_ref(self, value: Any, path: str, coupons: dict, retired: bool = False) -> Any:
        """A coupon template's key; one that is given (not `retired` itself) may not name a
        retired template."""
        if value is not None and (not isinstance(value, str) or value not in coupons):
            raise self.fail(path, f"names coupon {value!r}, which is not defined under [coupons]")
        if value is not None and coupons[value].retired and not retired:
            raise self.fail(path, f"names coupon {value!r}, which is retired (no longer given)")
        return value

    # -- sections ----------------------------------------------------------------
    def program(self, data: dict, version: int = 0) -> Program:
        shop = self.table(data, "shop", "shop")
        tz_name = self.text(shop, "timezone", "shop.timezone", default="Asia/Taipei")
        try:
            timezone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail("shop.timezone", f"unknown time zone {tz_name!r}") from None
        coupons = self.coupons(self.table(data, "coupons", "coupons"))
        earning = self.table(data, "earning", "earning")
        expiry = self.table(data, "expiry", "expiry")
        rules = self.table(data, "tier_rules", "tier_rules", required=False)
        welcome = self.table(data, "welcome", "welcome", required=False)
        birthday = self.table(data, "birthday", "birthday", required=False)
        winback = self.table(data, "winback", "winback", required=False)
        staff = self.table(data, "staff", "staff", required=False)
        messaging = self.table(data, "messaging", "messaging", required=False)
        claims = self.table(data, "claims", "claims", required=False)
        reminders = self.table(data, "reminders", "reminders", required=False)
        changes = self.table(data, "changes", "changes", required=False)
        multipliers = {
            str(name): self.multiplier(value, f"earning.category_multipliers.{name}")
            for name, value in self.table(earning, "category_multipliers",
                                          "earning.category_multipliers",
                                          required=False).items()}
        return Program(
            path=self.path, version=version,
            notice_days=self.integer(changes, "notice_days", "changes.notice_days", default=30,
                                     maximum=365),
            shop_name=self.text(shop, "name", "shop.name"),
            shop_name_en=self.english(shop, "name_en", "shop.name_en", shop["name"]),
            timezone=timezone,
            currency=self.text(shop, "currency", "shop.currency", default="TWD"),
            amount_per_point=self.integer(earning, "amount_per_point", "earning.amount_per_point",
                                          minimum=1),
            rounding=self.text(earning, "rounding", "earning.rounding", default="floor",
                               choices=ROUNDING),
            category_multipliers=multipliers,
            category_names=self.category_names(earning, "category_names", multipliers),
            category_names_en=self.category_names(earning, "category_names_en", multipliers),
            campaigns=self.campaigns(earning.get("campaigns", [])),
            expiry_mode=self.text(expiry, "mode", "expiry.mode", choices=EXPIRY_MODES),
            expiry_months=self.integer(expiry, "months", "expiry.months", minimum=1, maximum=120),
            expiry_end_of_month=self.flag(expiry, "end_of_month", "expiry.end_of_month", False),
            stamps=self.stamps(self.table(data, "stamps", "stamps"), coupons),
            coupons=coupons,
            rewards=self.rewards(data.get("rewards", []), coupons),
            tier_window_months=self.integer(rules, "window_months", "tier_rules.window_months",
                                            default=12, minimum=1, maximum=120),
            downgrade=self.text(rules, "downgrade", "tier_rules.downgrade", default="grace",
                                choices=DOWNGRADE_RULES),
            grace_months=self.integer(rules, "grace_months", "tier_rules.grace_months",
                                      default=12, minimum=0, maximum=120),
            tiers=self.tiers(data.get("tiers"), coupons),
            welcome_coupon=self.coupon_ref(welcome.get("coupon"), "welcome.coupon", coupons),
            birthday_when=self.text(birthday, "when", "birthday.when", default="day",
                                    choices=("day", "month")),
            winback_after_days=self.integer(winback, "after_days", "winback.after_days",
                                            default=None, minimum=1, maximum=MAX_DAYS),
            winback_coupon=self.coupon_ref(winback.get("coupon"), "winback.coupon", coupons),
            confirm_above=self.integer(staff, "confirm_above", "staff.confirm_above",
                                       default=None, minimum=1),
            staff_self_service=self.flag(staff, "self_service", "staff.self_service", False),
            claims=self.claims(claims),
            **self.messaging(messaging),
            expiry_warning_days=self.days(reminders.get("points_expiry_days", [30, 7, 1])),
            coupon_warning_days=self.integer(reminders, "coupon_expiry_days",
                                             "reminders.coupon_expiry_days", default=3),
            nudge_stamps=self.integer(reminders, "nudge_stamps", "reminders.nudge_stamps",
                                      default=2),
            nudge_points=self.integer(reminders, "nudge_points", "reminders.nudge_points",
                                      default=50),
            faq=self.faq(data.get("faq")),
            **self.privacy(self.table(data, "privacy", "privacy", required=False)),
            unknown_text=self.text(self.table(data, "chat", "chat", required=False),
                                   "unknown_text", "chat.unknown_text", default="silent",
                                   choices=UNKNOWN_TEXT),
        )

    def privacy(self, table: dict) -> dict[str, str]:
        notice = self.text(table, "notice", "privacy.notice", default="")
        notice_en = self.english(table, "notice_en", "privacy.notice_en", notice)
        for key, value in (("notice", notice), ("notice_en", notice_en)):
            if len(value) > 4000:
                raise self.fail(f"privacy.{key}", "must be at most 4,000 characters (link to a "
                                                  "longer notice instead)")
        return {"privacy_notice": notice, "privacy_notice_en": notice_en}

    def faq(self, items: Any) -> tuple[Faq, ...]:
        result, seen = [], set()
        for i, item in enumerate(self.tables(items, "faq")):
            at = f"faq[{i}]"
            words = item.get("keywords")
            if not isinstance(words, list) or not words or not all(
                    isinstance(w, str) and w.strip() and len(w) <= 30 for w in words):
                raise self.fail(f"{at}.keywords", "must be a list of words a customer types, "
                                                  "such as [\"營業時間\", \"hours\"]")
            folded = tuple(" ".join(unicodedata.normalize("NFKC", w).lower().split())
                           for w in words)
            if seen & set(folded):
                raise self.fail(f"{at}.keywords", f"{sorted(seen & set(folded))[0]!r} is "
                                                  "already the keyword of another answer")
            seen |= set(folded)
            answer = self.text(item, "answer", f"{at}.answer")
            if len(answer) > 2000:
                raise self.fail(f"{at}.answer", "must be at most 2,000 characters")
            answer_en = self.english(item, "answer_en", f"{at}.answer_en", answer)
            if len(answer_en) > 2000:
                raise self.fail(f"{at}.answer_en", "must be at most 2,000 characters")
            result.append(Faq(folded, answer, answer_en))
        return tuple(result)

    def messaging(self, messaging: dict) -> dict[str, Any]:
        plan = self.text(messaging, "line_plan", "messaging.line_plan", default=None,
                         choices=tuple(LINE_PLANS))
        budget = self.integer(messaging, "monthly_push_budget", "messaging.monthly_push_budget",
                              default=None)
        allowance = min(x for x in (LINE_PLANS.get(plan or ""), budget, 10**9) if x is not None)
        reserve = self.integer(messaging, "reserve", "messaging.reserve", default=(
            allowance * RESERVE_SHARE // 100 if allowance < 10**9 else 0))
        if reserve > allowance:
            raise self.fail("messaging.reserve", f"must be at most the month's {allowance:,} "
                                                 f"messages, not {reserve:,}")
        return {"receipts": self.receipts(messaging.get("receipts", True)),
                "quiet_hours": self.quiet_hours(messaging.get("quiet_hours")),
                "monthly_push_budget": budget, "line_plan": plan, "reserve": reserve,
                "wait_hours": {**DEFAULT_WAIT_HOURS, **self.per_kind(
                    messaging, "wait_hours", 24 * 14)},
                "drop_after_days": {**DEFAULT_DROP_AFTER_DAYS, **self.per_kind(
                    messaging, "drop_after_days", 90)},
                "marketing_per_day": self.integer(messaging, "marketing_per_day",
                                                  "messaging.marketing_per_day", default=1,
                                                  minimum=1),
                "marketing_per_week": self.integer(messaging, "marketing_per_week",
                                                   "messaging.marketing_per_week", default=3,
                                                   minimum=1),
                "aggregation_units": self.flag(messaging, "aggregation_units",
                                               "messaging.aggregation_units", False)}

    def claims(self, claims: dict) -> ClaimRules:
        by_source = self.table(claims, "minutes_by_source", "claims.minutes_by_source",
                               required=False)
        for source, value in by_source.items():
            self.integer(by_source, source, f"claims.minutes_by_source.{source}", minimum=1)
            if value > CLAIM_MOST_MINUTES:
                raise self.fail(f"claims.minutes_by_source.{source}",
                                f"must be at most {CLAIM_MOST_MINUTES} (72 hours), not {value}")
        minutes = self.integer(claims, "minutes", "claims.minutes", default=3, minimum=1)
        if minutes > CLAIM_MOST_MINUTES:
            raise self.fail("claims.minutes",
                            f"must be at most {CLAIM_MOST_MINUTES} (72 hours), not {minutes}")
        return ClaimRules(
            enabled=self.flag(claims, "enabled", "claims.enabled", False), minutes=minutes,
            minutes_by_source=dict(by_source),
            staff_daily_total=self.integer(claims, "staff_daily_total",
                                           "claims.staff_daily_total", default=None,
                                           minimum=1))

    def receipts(self, value: Any) -> bool:
        """true / "push": receipts are pushed; false / "none": the staff's reply and the
        points card show them, and no message is billed for them."""
        if value in (True, "push"):
            return True
        if value in (False, "none"):
            return False
        raise self.fail("messaging.receipts", f'must be "push" or "none", not {value!r}')

    def per_kind(self, messaging: dict, key: str, most: int) -> dict[str, int]:
        table = self.table(messaging, key, f"messaging.{key}", required=False)
        for kind, value in table.items():
            path = f"messaging.{key}.{kind}"
            if kind not in NOTICE_KINDS or kind in RECEIPT_KINDS:
                raise self.fail(path, "names no message kind that may wait; kinds: "
                                + ", ".join(k for k in NOTICE_KINDS if k not in RECEIPT_KINDS))
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
                raise self.fail(path, f"must be a whole number from 0 to {most}, not {value!r}")
        return dict(table)

    def quiet_hours(self, value: Any) -> tuple[dt.time, dt.time] | None:
        if value is None:
            return None
        match = isinstance(value, str) and re.fullmatch(
            r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise self.fail("messaging.quiet_hours",
                            f"must look like \"21:00-09:00\", not {value!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return dt.time(h1, m1), dt.time(h2, m2)

    def days(self, value: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 365 for v in value):
            raise self.fail("reminders.points_expiry_days",
                            "must be a list of days such as [30, 7, 1]")
        return tuple(sorted(set(value), reverse=True))

    def campaigns(self, items: Any) -> tuple[PointsCampaign, ...]:
        result = []
        for i, item in enumerate(self.tables(items, "earning.campaigns")):
            at = f"earning.campaigns[{i}]"
            starts = self.date(item, "starts", f"{at}.starts", required=True)
            ends = self.date(item, "ends", f"{at}.ends", required=True)
            if ends < starts:
                raise self.fail(f"{at}.ends", "must not be before starts")
            name = self.text(item, "name", f"{at}.name")
            name_en = self.english(item, "name_en", f"{at}.name_en", name)
            result.append(PointsCampaign(name, name_en, starts, ends,
                                   self.multiplier(item.get("multiplier"), f"{at}.multiplier")))
        return tuple(result)

    def coupons(self, table: dict) -> dict[str, CouponTemplate]:
        if not table:
            raise self.fail("coupons", "define at least one coupon template")
        return {key: self.coupon(key, value) for key, value in table.items()}

    def coupon(self, key: str, data: Any) -> CouponTemplate:
        at = f"coupons.{key}"
        if not isinstance(data, dict):
            raise self.fail(at, "must be a table")
        kind = self.text(data, "kind", f"{at}.kind", choices=COUPON_KINDS)
        title = self.text(data, "title", f"{at}.title")
        amount = self.integer(data, "amount", f"{at}.amount", default=0, minimum=1)
        percent = self.integer(data, "percent", f"{at}.percent", default=0, minimum=1)
        if kind == "amount_off" and not amount:
            raise self.fail(f"{at}.amount", "is required for kind amount_off")
        if kind == "percent_off" and not 0 < percent < 100:
            raise self.fail(f"{at}.percent", "must be between 1 and 99 for kind percent_off")
        valid_days = self.integer(data, "valid_days", f"{at}.valid_days", default=None, minimum=1,
                                  maximum=MAX_DAYS)
        valid_from = self.date(data, "valid_from", f"{at}.valid_from")
        valid_until = self.date(data, "valid_until", f"{at}.valid_until")
        if (valid_days is None) == (valid_until is None):
            raise self.fail(f"{at}.valid_days", "set either valid_days or valid_until (not both)")
        if valid_from and valid_until and valid_until < valid_from:
            raise self.fail(f"{at}.valid_until", "must not be before valid_from")
        title_en = self.english(data, "title_en", f"{at}.title_en", title)
        return CouponTemplate(
            key=key, title=title, title_en=title_en, kind=kind,
            amount=amount, percent=percent,
            max_discount=self.integer(data, "max_discount", f"{at}.max_discount", default=None,
                                      minimum=1),
            min_spend=self.integer(data, "min_spend", f"{at}.min_spend", default=0),
            gift=self.text(data, "gift", f"{at}.gift", default=""),
            gift_en=self.english(data, "gift_en", f"{at}.gift_en", title_en),
            valid_days=valid_days, valid_from=valid_from, valid_until=valid_until,
            total_cap=self.integer(data, "total_cap", f"{at}.total_cap", default=None, minimum=1),
            per_member_cap=self.integer(data, "per_member_cap", f"{at}.per_member_cap",
                                        default=None, minimum=1),
            retired=self.flag(data, "retired", f"{at}.retired", False),
        )

    def stamps(self, data: dict, coupons: dict) -> StampRules:
        per = self.text(data, "per", "stamps.per", choices=("visit", "amount"))
        amount_per_stamp = self.integer(data, "amount_per_stamp", "stamps.amount_per_stamp",
                                        default=0, minimum=1)
        if per == "amount" and not amount_per_stamp:
            raise self.fail("stamps.amount_per_stamp", "is required when per = \"amount\"")
        goal = self.integer(data, "goal", "stamps.goal", minimum=1)
        if goal > 50:
            raise self.fail("stamps.goal", f"must be at most 50 stamps, not {goal}")
        milestones = []
        for i, item in enumerate(self.tables(data.get("milestones"), "stamps.milestones")):
            at = self.integer(item, "at", f"stamps.milestones[{i}].at", minimum=1)
            if at >= goal:
                raise self.fail(f"stamps.milestones[{i}].at",
                                f"must be below the goal ({goal}); use completion_reward for it")
            reward = self.coupon_ref(item.get("reward"), f"stamps.milestones[{i}].reward", coupons)
            if reward is None:
                raise self.fail(f"stamps.milestones[{i}].reward", "is required")
            milestones.append(Milestone(at, reward))
        if len({m.at for m in milestones}) != len(milestones):
            raise self.fail("stamps.milestones", "two milestones share the same `at`")
        starter = self.integer(data, "starter_stamps", "stamps.starter_stamps", default=0)
        if starter >= goal:
            raise self.fail("stamps.starter_stamps", "must be below the goal")
        return StampRules(
            per=per, amount_per_stamp=amount_per_stamp,
            min_amount=self.integer(data, "min_amount", "stamps.min_amount", default=0),
            goal=goal, starter_stamps=starter,
            one_per_day=self.flag(data, "one_per_day", "stamps.one_per_day", False),
            card_valid_days=self.integer(data, "card_valid_days", "stamps.card_valid_days",
                                         maximum=MAX_DAYS,
                                         default=0),
            completion_reward=self.coupon_ref(data.get("completion_reward"),
                                              "stamps.completion_reward", coupons),
            milestones=tuple(sorted(milestones, key=lambda m: m.at)),
        )

    def rewards(self, items: Any, coupons: dict) -> tuple[Reward, ...]:
        result: list[Reward] = []
        for i, item in enumerate(self.tables(items, "rewards")):
            points = self.integer(item, "points", f"rewards[{i}].points", minimum=1)
            retired = self.flag(item, "retired", f"rewards[{i}].retired", False)
            coupon = self.coupon_ref(item.get("coupon"), f"rewards[{i}].coupon", coupons,
                                     retired)
            if coupon is None:
                raise self.fail(f"rewards[{i}].coupon", "is required")
            key = self.text(item, "key", f"rewards[{i}].key", default=coupon)
            if not KEY.fullmatch(key):
                given = "" if "key" in item else " (it is the coupon's key unless set)"
                raise self.fail(f"rewards[{i}].key", f"must be letters, digits, - or _ (at most "
                                                     f"40){given}, not {key!r}")
            if any(r.key == key for r in result):
                raise self.fail(f"rewards[{i}].key", f"{key!r} is already another reward's key "
                                                     "(a reward's key is its coupon unless set): "
                                                     "give this one its own key")
            starts = self.date(item, "starts", f"rewards[{i}].starts")
            ends = self.date(item, "ends", f"rewards[{i}].ends")
            if starts and ends and ends < starts:
                raise self.fail(f"rewards[{i}].ends", "must not be before starts")
            result.append(Reward(key, points, coupon, retired, starts, ends))
        return tuple(result)

    def tiers(self, items: Any, coupons: dict) -> tuple[Tier, ...]:
        if not self.tables(items, "tiers"):
            raise self.fail("tiers", "define at least one [[tiers]] table")
        result = []
        for i, item in enumerate(items):
            at = f"tiers[{i}]"
            name = self.text(item, "name", f"{at}.name")
            result.append(Tier(
                key=self.text(item, "key", f"{at}.key"), name=name,
                name_en=self.english(item, "name_en", f"{at}.name_en", name),
                threshold=self.integer(item, "threshold", f"{at}.threshold"),
                multiplier=self.multiplier(item.get("multiplier", 1), f"{at}.multiplier"),
                birthday_coupon=self.coupon_ref(item.get("birthday_coupon"),
                                                f"{at}.birthday_coupon", coupons),
                **self.benefits(item, at),
            ))
        if result[0].threshold != 0:
            raise self.fail("tiers[0].threshold", "the first tier must start at 0")
        for i in range(1, len(result)):
            if result[i].threshold <= result[i - 1].threshold:
                raise self.fail(f"tiers[{i}].threshold", "thresholds must increase tier by tier")
        if len({t.key for t in result}) != len(result):
            raise self.fail("tiers", "two tiers share the same key")
        return tuple(result)
