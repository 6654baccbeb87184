"""The owner's program file: the shipped example, and every mistake reported in one line.

Each broken file starts from program.example.toml and breaks one thing, the way an owner
editing it by hand would. The error must name the file, the key and (when the key is
written in the file) the line, and `flask --app bot program check` must show just that.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask.cli import cli as flask_command_line

from bot.config import DEFAULT_PROGRAM, ROOT
from bot.program import Milestone, PointsCampaign, ProgramError, Reward, load_program
from tests.cli_helpers import exited_cleanly

EXAMPLE = DEFAULT_PROGRAM.read_text(encoding="utf-8")
FLASK = str(Path(sys.executable).parent / "flask")

NO_LINE = "no line"  # the key is not written in the file: the message must not claim a line
ANY_LINE = "any line"  # not checked (for example a key that is missing, located at its table)


# -- building broken files -------------------------------------------------------------------
def edit(old: str, new: str, *, after: str = "", text: str = EXAMPLE) -> str:
    """The text with the first `old` after `after` replaced by `new` (both must exist)."""
    start = text.index(after) if after else 0
    at = text.index(old, start)
    return text[:at] + new + text[at + len(old):]


def cut(start: str, stop: str, *, text: str = EXAMPLE) -> str:
    """The text without the part from `start` up to (not including) `stop`."""
    first = text.index(start)
    return text[:first] + text[text.index(stop, first):]


def drop_line(start: str, *, text: str = EXAMPLE) -> str:
    """The text without the first line that starts with `start`."""
    first = text.index("\n" + start) + 1
    return text[:first] + text[text.index("\n", first) + 1:]


def line_of(text: str, marker: str, after: str = "") -> int:
    """1-based line number of the first `marker` after `after`."""
    at = text.index(marker, text.index(after) if after else 0)
    return text.count("\n", 0, at) + 1


def case(text: str | bytes, key: str, says: str, line: str | tuple[str, str] = ANY_LINE,
         *, id: str):
    """One broken file: `line` is a marker (or (after, marker)) on the expected line."""
    return pytest.param(text, key, says, line, id=id)


WITHOUT_REWARDS = cut("# Rewards catalog", "# Tiers by spend")
WITHOUT_MILESTONES = cut("[[stamps.milestones]]", "# Coupon templates")
WITHOUT_CAMPAIGNS = cut("[[earning.campaigns]]", "[expiry]")
WITHOUT_SHOP = cut("[shop]", "[earning]")

BROKEN = [
    # the file itself
    case(edit("goal = 10", "goal = = 10"), "", "not valid TOML", "goal = = 10",
         id="a TOML syntax error"),
    case(edit("goal = 10", "goal = 10\ngoal = 12"), "", "not valid TOML", "goal = 12",
         id="a key written twice"),
    case(edit("ends = 2026-12-26", "ends = 2026-02-30"), "", "Invalid date",
         "ends = 2026-02-30", id="an impossible date like February 30"),
    case(EXAMPLE.replace("é", "e").encode("big5"), "", "not UTF-8", NO_LINE,
         id="a file saved as Big5 instead of UTF-8"),
    case("", "shop", "missing table", NO_LINE, id="an empty file"),
    # [shop]
    case(WITHOUT_SHOP, "shop", "missing table", NO_LINE, id="a missing [shop] table"),
    case('shop = "山嵐咖啡"\n' + WITHOUT_SHOP, "shop", "must be a table", 'shop = "',
         id="shop given as a plain value"),
    case(edit('"Asia/Taipei"', '"Asia/Taipie"'), "shop.timezone", "unknown time zone 'Asia/Taipie'",
         "Asia/Taipie", id="an unknown timezone"),
    case(edit('"Asia/Taipei"', '"../Taipei"'), "shop.timezone", "unknown time zone", "../Taipei",
         id="a timezone that is a path"),
    case(edit('name = "山嵐咖啡"', 'name = ""'), "shop.name", "non-empty text", 'name = ""',
         id="an empty shop name"),
    # [earning]
    case(edit('rounding = "floor"', 'rounding = "half"'), "earning.rounding",
         "must be one of floor, round, ceil, not 'half'", 'rounding = "half"',
         id="rounding half"),
    case(edit("amount_per_point = 30", "amount_per_point = -30"), "earning.amount_per_point",
         "must be at least 1, not -30", "amount_per_point = -30",
         id="a negative amount_per_point"),
    case(edit("amount_per_point = 30", "amount_per_point = 0"), "earning.amount_per_point",
         "at least 1", "amount_per_point = 0", id="a zero amount_per_point"),
    case(edit("amount_per_point = 30", "amount_per_point = 30.5"), "earning.amount_per_point",
         "whole number", "amount_per_point = 30.5", id="a fractional amount_per_point"),
    case(edit("amount_per_point = 30", 'amount_per_point = "30"'), "earning.amount_per_point",
         "whole number", 'amount_per_point = "30"', id="amount_per_point in quotes"),
    case(drop_line("amount_per_point = 30"), "earning.amount_per_point", "is required",
         id="a missing amount_per_point"),
    case(edit("merch = 1.5", "merch = -1.5"), "earning.category_multipliers.merch",
         "number above 0", "merch = -1.5", id="a negative category multiplier"),
    case(edit('merch = "周邊商品"', 'pastry = "糕點"'), "earning.category_names.pastry",
         "category without a multiplier", 'pastry = "糕點"',
         id="a name for a category without a multiplier"),
    case(edit('merch = "Merchandise"', 'merch = "周邊 goods"'), "earning.category_names_en.merch",
         "without Chinese characters", 'merch = "周邊 goods"',
         id="Chinese in a category's English name"),
    case(edit('beans = "咖啡豆"', 'beans = "精選單一產區咖啡豆與掛耳包禮盒組合系列限定版"'),
         "earning.category_names.beans", "at most 20 characters", 'beans = "精選',
         id="a category name too long for a line"),
    case(edit('beans = "咖啡豆"', 'beans = ""'), "earning.category_names.beans",
         "non-empty text", 'beans = ""', id="an empty category name"),
    case(edit("ends = 2026-12-26", "ends = 2026-12-20"), "earning.campaigns[0].ends",
         "must not be before starts", "ends = 2026-12-20", id="a campaign ending before it starts"),
    case(edit("starts = 2026-12-24", 'starts = "2026-12-24"'), "earning.campaigns[0].starts",
         "must be a date like 2026-12-31 (no quotes)", 'starts = "2026-12-24"',
         id="a date given as a string"),
    case(edit("multiplier = 2", "multiplier = 0"), "earning.campaigns[0].multiplier",
         "number above 0", "multiplier = 0", id="a campaign multiplier of zero"),
    case(edit('rounding = "floor"', 'rounding = "floor"\ncampaigns = "christmas"',
              text=WITHOUT_CAMPAIGNS),
         "earning.campaigns", "list of [[earning.campaigns]] tables", 'campaigns = "christmas"',
         id="campaigns given as a plain value instead of [[earning.campaigns]]"),
    # [expiry]
    case(edit('mode = "lot"', 'mode = "fifo"'), "expiry.mode", "lot, rolling", 'mode = "fifo"',
         id="an unknown expiry mode"),
    case(edit("end_of_month = true", 'end_of_month = "yes"'), "expiry.end_of_month",
         "true or false", 'end_of_month = "yes"', id="end_of_month given as text"),
    # [stamps]
    case(edit("at = 5", "at = 10"), "stamps.milestones[0].at", "below the goal (10)", "at = 10",
         id="a milestone at the goal"),
    case(edit("at = 5", "at = 12"), "stamps.milestones[0].at", "below the goal", "at = 12",
         id="a milestone above the goal"),
    case(edit('reward = "pct10"', 'reward = "pct11"'), "stamps.milestones[0].reward",
         "'pct11'", 'reward = "pct11"', id="a milestone naming an undefined coupon"),
    case(edit("goal = 10", "goal = 10\nmilestones = 5", text=WITHOUT_MILESTONES),
         "stamps.milestones", "list of [[stamps.milestones]] tables", "milestones = 5",
         id="milestones given as a plain value instead of [[stamps.milestones]]"),
    case(edit("goal = 10", "goal = 60"), "stamps.goal", "at most 50", "goal = 60",
         id="a stamp goal above 50"),
    case(edit("goal = 10", "goal = true"), "stamps.goal", "whole number", "goal = true",
         id="a stamp goal given as true"),
    case(edit("goal = 10\n", ""), "stamps.goal", "is required", id="a missing stamp goal"),
    case(edit("starter_stamps = 1", "starter_stamps = 10"), "stamps.starter_stamps",
         "below the goal", "starter_stamps = 10", id="starter stamps filling the card"),
    case(edit('per = "visit"', 'per = "amount"'), "stamps.amount_per_stamp",
         "is required", id="stamps per amount without amount_per_stamp"),
    case(edit('completion_reward = "free_drink"', 'completion_reward = "free_drinks"'),
         "stamps.completion_reward", "'free_drinks'", 'completion_reward = "free_drinks"',
         id="a completion reward naming an undefined coupon"),
    # [coupons.*]
    case(edit("valid_days = 60", "valid_days = 60\nvalid_until = 2026-12-31",
              after="[coupons.nt50]"),
         "coupons.nt50.valid_days", "either valid_days or valid_until",
         ("[coupons.nt50]", "valid_days = 60"), id="a coupon with both valid_days and valid_until"),
    case(edit("valid_days = 30\n", "", after="[coupons.free_shipping]"),
         "coupons.free_shipping.valid_days", "either valid_days or valid_until",
         id="a coupon with neither valid_days nor valid_until"),
    case(edit("percent = 10", "percent = 150"), "coupons.pct10.percent", "between 1 and 99",
         "percent = 150", id="a percent_off of 150 percent"),
    case(edit('kind = "free_shipping"', 'kind = "free_delivery"'), "coupons.free_shipping.kind",
         "amount_off, percent_off, free_shipping, free_gift", 'kind = "free_delivery"',
         id="an unknown coupon kind"),
    case(edit("amount = 50\n", "", after="[coupons.nt50]"), "coupons.nt50.amount",
         "is required for kind amount_off", id="an amount_off coupon without an amount"),
    case(edit("valid_until = 2026-12-31", "valid_until = 2026-11-30"),
         "coupons.xmas_beans.valid_until", "must not be before valid_from",
         "valid_until = 2026-11-30", id="a coupon window ending before it opens"),
    case(edit("valid_from = 2026-12-01", "valid_from = 2026-12-01T09:00:00"),
         "coupons.xmas_beans.valid_from", "date like", "valid_from = 2026-12-01T09:00:00",
         id="a date and time where a date belongs"),
    case(edit("total_cap = 300", "total_cap = 0"), "coupons.xmas_beans.total_cap",
         "at least 1", "total_cap = 0", id="a coupon cap of zero"),
    case(cut("[coupons.welcome]", "# Rewards catalog"),
         "coupons", "missing table", NO_LINE, id="no coupons at all"),
    # [[rewards]]
    case(edit('coupon = "cake_set"', 'coupon = "cake_sets"'), "rewards[1].coupon",
         "names coupon 'cake_sets', which is not defined under [coupons]",
         'coupon = "cake_sets"', id="a reward naming an undefined coupon"),
    case(edit('coupon = "cake_set"', 'coupon = ["cake_set"]'), "rewards[1].coupon",
         "not defined under [coupons]", 'coupon = ["cake_set"]',
         id="a reward naming its coupon in a list"),
    case(edit("points = 1000", "points = -1000"), "rewards[2].points", "at least 1",
         "points = -1000", id="a reward costing negative points"),
    case("rewards = [100, 500, 1000]\n" + WITHOUT_REWARDS, "rewards",
         "list of [[rewards]] tables", "rewards = [100", id="rewards given as a plain value"),
    # [tier_rules] and [[tiers]]
    case(edit('downgrade = "grace"', 'downgrade = "sometimes"'), "tier_rules.downgrade",
         "never, rolling, grace", 'downgrade = "sometimes"', id="an unknown downgrade rule"),
    case(edit("threshold = 15000", "threshold = 4000"), "tiers[2].threshold",
         "thresholds must increase", "threshold = 4000", id="tiers not increasing"),
    case(edit("threshold = 15000", "threshold = 5000"), "tiers[2].threshold",
         "thresholds must increase", ("[[tiers]]\nkey = \"gold\"", "threshold = 5000"),
         id="two tiers with the same threshold"),
    case(edit("threshold = 0", "threshold = 100"), "tiers[0].threshold", "must start at 0",
         "threshold = 100", id="a first tier threshold that is not 0"),
    case(edit('key = "gold"', 'key = "silver"'), "tiers", "same key", NO_LINE,
         id="two tiers with the same key"),
    case(edit('birthday_coupon = "bday_gold"', 'birthday_coupon = "bday_platinum"'),
         "tiers[2].birthday_coupon", "'bday_platinum'", 'birthday_coupon = "bday_platinum"',
         id="a tier birthday coupon that is not defined"),
    case(edit("multiplier = 1.2", "multiplier = -1.2"), "tiers[1].multiplier", "above 0",
         "multiplier = -1.2", id="a negative tier multiplier"),
    case(cut("[[tiers]]", "[welcome]"), "tiers", "at least one [[tiers]]", NO_LINE,
         id="no tiers at all"),
    # [welcome], [winback], [staff]
    case(edit('coupon = "welcome"', 'coupon = "hello"'), "welcome.coupon", "'hello'",
         'coupon = "hello"', id="a welcome coupon that is not defined"),
    case(edit("after_days = 60", "after_days = 0"), "winback.after_days", "at least 1",
         "after_days = 0", id="a winback after zero days"),
    case(edit("confirm_above = 3000", "confirm_above = -1"), "staff.confirm_above",
         "at least 1", "confirm_above = -1", id="a negative confirm_above"),
    # [messaging]
    case(edit('line_plan = "light"', 'line_plan = "premium"'), "messaging.line_plan",
         "free, light, standard", 'line_plan = "premium"', id="an unknown LINE plan"),
    case(edit('receipts = "push"', 'receipts = "sometimes"'), "messaging.receipts",
         '"push" or "none"', 'receipts = "sometimes"', id="receipts neither push nor none"),
    case(edit("nudge = 72", "receipt = 72"), "messaging.wait_hours.receipt",
         "may wait", "receipt = 72", id="a receipt told to wait for a reply"),
    # English forms
    case(edit('gift_en = "Any drink"', 'gift_en = "Any drink 任選"'),
         "coupons.free_drink.gift_en", "without Chinese characters", 'gift_en = "Any drink 任選"',
         id="an English gift text holding Chinese"),
    case(edit('name_en = "Gold"', 'name_en = "金卡"'), "tiers[2].name_en",
         "English form", 'name_en = "金卡"', id="an English tier name in Chinese"),
    case(edit('benefits_en = ["Free upgrade to a large drink"]', 'benefits_en = []'),
         "tiers[1].benefits_en", "the same 1 benefits", "benefits_en = []",
         id="English benefits that do not match the Chinese ones"),
    case(edit('benefits = ["飲品免費升級大杯"]', 'benefits = "飲品免費升級大杯"'),
         "tiers[1].benefits", "list of short texts", 'benefits = "飲品免費升級大杯"',
         id="benefits that are not a list"),
    case(edit('title_en = "NT$50 off"', 'title_en = ""'), "coupons.nt50.title_en",
         "non-empty text", 'title_en = ""', id="an empty English title"),
    case(edit("nudge = 72", "nudge = -1"), "messaging.wait_hours.nudge", "0 to 336",
         "nudge = -1", id="a negative wait"),
    case(edit("# reserve = 300", "reserve = 5000"), "messaging.reserve",
         "at most the month's 3,000", "reserve = 5000", id="a reserve above the plan"),
]


def write(tmp_path: Path, content: str | bytes, name: str = "program.toml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def expected_line(content: str | bytes, line: str | tuple[str, str]) -> int | None | str:
    if line in (NO_LINE, ANY_LINE):
        return None if line == NO_LINE else ANY_LINE
    after, marker = line if isinstance(line, tuple) else ("", line)
    return line_of(content, marker, after)


def load_error(path: Path) -> ProgramError:
    with pytest.raises(ProgramError) as caught:
        load_program(path)
    return caught.value


# -- the shipped example ---------------------------------------------------------------------
def test_the_shipped_example_loads_with_what_a_cafe_owner_reads_in_it(example_program):
    p = example_program
    assert p.path == str(DEFAULT_PROGRAM)
    assert (p.shop_name, p.shop_name_en, p.currency) == ("山嵐咖啡", "Mountain Mist Café", "TWD")
    assert p.timezone.key == "Asia/Taipei"
    assert (p.amount_per_point, p.rounding) == (30, "floor")
    assert p.category_multipliers == {"beans": Fraction(2), "merch": Fraction(3, 2)}
    assert p.campaigns == (PointsCampaign("聖誕雙倍點數", "Christmas double points",
                                    dt.date(2026, 12, 24), dt.date(2026, 12, 26), Fraction(2)),)
    assert (p.expiry_mode, p.expiry_months, p.expiry_end_of_month) == ("lot", 12, True)

    stamps = p.stamps
    assert (stamps.per, stamps.min_amount, stamps.goal, stamps.starter_stamps) == (
        "visit", 80, 10, 1)
    assert stamps.one_per_day is True and stamps.card_valid_days == 365
    assert stamps.completion_reward == "free_drink"
    assert stamps.milestones == (Milestone(at=5, reward="pct10"),)

    assert list(p.coupons) == ["welcome", "pct10", "free_drink", "nt50", "nt120_over_500",
                               "cake_set", "free_shipping", "bday_member", "bday_gold",
                               "comeback", "xmas_beans"]
    welcome = p.coupons["welcome"]
    assert (welcome.kind, welcome.amount, welcome.min_spend, welcome.valid_days) == (
        "amount_off", 50, 150, 30)
    pct10 = p.coupons["pct10"]
    assert (pct10.kind, pct10.percent, pct10.max_discount, pct10.valid_days) == (
        "percent_off", 10, 200, 60)
    assert p.coupons["free_drink"].title_en == "Any drink, on us"
    assert (p.coupons["free_drink"].gift, p.coupons["free_drink"].gift_en) == (
        "任選飲品一杯", "Any drink")
    xmas = p.coupons["xmas_beans"]
    assert (xmas.valid_days, xmas.valid_from, xmas.valid_until) == (
        None, dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert (xmas.total_cap, xmas.per_member_cap) == (300, 1)

    assert p.rewards == (Reward("nt50", 100, "nt50"), Reward("cake_set", 500, "cake_set"),
                         Reward("free_shipping", 1000, "free_shipping"))
    assert p.reward("cake_set").points == 500 and p.reward("2") is None

    assert (p.tier_window_months, p.downgrade, p.grace_months) == (12, "grace", 12)
    assert [(t.key, t.name_en, t.threshold, t.multiplier, t.birthday_coupon) for t in p.tiers] == [
        ("member", "Member", 0, Fraction(1), "bday_member"),
        ("silver", "Silver", 5000, Fraction(6, 5), "bday_member"),
        ("gold", "Gold", 15000, Fraction(3, 2), "bday_gold"),
    ]
    assert p.tier("gold").name == "金卡會員" and p.tier("platinum").key == "member"

    assert (p.welcome_coupon, p.birthday_when) == ("welcome", "day")
    assert (p.winback_after_days, p.winback_coupon) == (60, "comeback")
    assert p.confirm_above == 3000


def test_a_loaded_program_cannot_be_changed_by_accident(example_program):
    with pytest.raises(FrozenInstanceError):
        example_program.amount_per_point = 1  # type: ignore[misc]


def test_a_copy_of_the_example_saved_with_windows_line_endings_loads(tmp_path):
    path = tmp_path / "program.toml"
    path.write_bytes(EXAMPLE.replace("\n", "\r\n").encode("utf-8"))
    assert load_program(path).rewards == load_program(DEFAULT_PROGRAM).rewards


def test_optional_sections_can_be_left_out(tmp_path):
    text = cut("[tier_rules]", "[[tiers]]")
    for section, stop in (("[welcome]", "[birthday]"), ("[birthday]", "[winback]"),
                          ("[winback]", "[staff]")):
        text = cut(section, stop, text=text)
    text = text[:text.index("[staff]")]
    program = load_program(write(tmp_path, text))
    assert (program.tier_window_months, program.downgrade, program.grace_months) == (
        12, "grace", 12)
    assert program.welcome_coupon is None and program.winback_coupon is None
    assert program.birthday_when == "day" and program.confirm_above is None


# -- broken files ----------------------------------------------------------------------------
@pytest.mark.parametrize(("content", "key", "says", "line"), BROKEN)
def test_a_broken_program_file_names_the_file_the_key_and_the_line(tmp_path, content, key,
                                                                     says, line):
    path = write(tmp_path, content)
    error = load_error(path)
    message = str(error)
    assert message.startswith(f"Program file error in {path}")
    assert error.path == str(path)
    assert error.key == key
    if key:
        assert f"[{key}]" in message
    assert says in message
    assert "\n" not in message
    expected = expected_line(content if isinstance(content, str) else "", line)
    if expected is None:
        assert error.line is None and ", line" not in message
    elif expected != ANY_LINE:
        assert error.line == expected
        assert f"{path}, line {expected}:" in message


def test_the_line_numbers_count_windows_line_endings_too(tmp_path):
    text = edit("threshold = 15000", "threshold = 4000")
    path = tmp_path / "program.toml"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    error = load_error(path)
    assert (error.key, error.line) == ("tiers[2].threshold", line_of(text, "threshold = 4000"))


def test_a_program_file_that_does_not_exist_is_named_in_the_error(tmp_path):
    path = tmp_path / "nowhere" / "program.toml"
    error = load_error(path)
    assert str(error) == (f"Program file error in {path}: cannot read the file "
                          "(No such file or directory)")
    assert error.line is None


def test_a_folder_given_as_the_program_file_is_a_clear_error(tmp_path):
    error = load_error(tmp_path)
    assert str(error).startswith(f"Program file error in {tmp_path}: cannot read the file")


def test_the_example_lines_pointed_at_are_the_ones_an_owner_would_edit(tmp_path):
    """Spot checks against the example's own line numbers, counted by hand."""
    lines = EXAMPLE.splitlines()
    cases = [
        (edit('"Asia/Taipei"', '"Asia/Taipie"'), 'timezone = "Asia/Taipei"'),
        (edit("at = 5", "at = 10"), "at = 5"),
        (edit("threshold = 15000", "threshold = 4000"), "threshold = 15000"),
        (edit('coupon = "cake_set"', 'coupon = "cake"'), 'coupon = "cake_set"'),
    ]
    for content, original in cases:
        error = load_error(write(tmp_path, content))
        assert lines[error.line - 1].startswith(original), (error, original)


# -- the CLI ---------------------------------------------------------------------------------
def program_check(tmp_path: Path, program: Path) -> Result:
    """`flask --app bot program check`, in-process: flask's own command line builds the app
    from the environment (a broken program file stops it there), as the `flask` executable
    does."""
    env = {"LOYALTY_PROGRAM": str(program), "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "FLASK_APP": None, "FLASK_RUN_FROM_CLI": None}  # flask sets the last one: undone
    return CliRunner().invoke(flask_command_line, ["--app", "bot", "program", "check"],
                              env=env)


@pytest.mark.parametrize("content", [
    pytest.param(edit('"Asia/Taipei"', '"Asia/Taipie"'), id="an unknown timezone"),
    pytest.param(edit("goal = 10", "goal = = 10"), id="a TOML syntax error"),
    pytest.param(edit("threshold = 15000", "threshold = 4000"), id="tiers not increasing"),
    pytest.param(None, id="a missing file"),
])
def test_program_check_on_a_broken_file_prints_only_the_one_clear_message(tmp_path, content):
    path = tmp_path / "program.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    message = str(load_error(path))
    result = program_check(tmp_path, path)
    assert result.exit_code != 0
    assert result.stderr.strip() == message
    assert exited_cleanly(result), result.exc_info
    assert "Traceback" not in result.stderr + result.stdout


def test_the_flask_executable_on_a_broken_file_exits_with_only_the_one_message(tmp_path):
    """One real process, as an owner's shell or a PaaS release step sees it."""
    path = tmp_path / "program.toml"
    path.write_text(edit('"Asia/Taipei"', '"Asia/Taipie"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(LOYALTY_PROGRAM=str(path), DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")
    result = subprocess.run([FLASK, "--app", "bot", "program", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip() == str(load_error(path))
    assert "Traceback" not in result.stderr + result.stdout


def test_program_check_on_the_example_says_ok(tmp_path):
    result = program_check(tmp_path, DEFAULT_PROGRAM)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (f"{DEFAULT_PROGRAM}: OK — 山嵐咖啡, 11 coupons, "
                                     "3 rewards, 3 tiers")


def test_a_left_out_english_gift_falls_back_to_the_english_title(tmp_path):
    program = load_program(write(tmp_path, drop_line('gift_en = "Any drink"')))
    assert program.coupons["free_drink"].gift_en == "Any drink, on us"
