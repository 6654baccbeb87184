"""The program's settings in the console, a form each: the simple sections (expiry, tiers'
rules, welcome, birthday, win-back, reminders, messaging, staff, claim codes, notice period),
the rewards catalog and the stamp card. Each ends on the same review as the other editors
(bot.console.program): what changes and any mistake, in the validator's words, then a save.

The fields listed here are how the forms look, not rules: the validator (bot.program) is the
one place that decides what a program may hold. Keys a form does not show are kept as they
are (`[messaging.wait_hours]`, `[claims.minutes_by_source]` ...: the TOML editor has them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g, request
from werkzeug.datastructures import MultiDict

from bot.console.program import _base, _current, _number, _rate, _review
from bot.console.views import bp, page, signed_in
from bot.program import DOWNGRADE_RULES, EXPIRY_MODES, LINE_PLANS

COUPON = "coupon"  # a choice among the program's coupon templates
SECTIONS: dict[str, tuple[tuple[str, Any], ...]] = {
    "expiry": (("mode", EXPIRY_MODES), ("months", "int"), ("end_of_month", "bool")),
    "tier_rules": (("window_months", "int"), ("downgrade", DOWNGRADE_RULES),
                   ("grace_months", "int")),
    "welcome": (("coupon", COUPON),),
    "birthday": (("when", ("day", "month")),),
    "winback": (("after_days", "int"), ("coupon", COUPON)),
    "reminders": (("points_expiry_days", "ints"), ("coupon_expiry_days", "int"),
                  ("nudge_stamps", "int"), ("nudge_points", "int")),
    "messaging": (("line_plan", tuple(LINE_PLANS)), ("receipts", ("push", "none")),
                  ("quiet_hours", "text"), ("monthly_push_budget", "int"), ("reserve", "int"),
                  ("marketing_per_day", "int"), ("marketing_per_week", "int"),
                  ("aggregation_units", "bool")),
    "staff": (("confirm_above", "int"), ("self_service", "bool")),
    "claims": (("enabled", "bool"), ("minutes", "int"), ("staff_daily_total", "int")),
    "changes": (("notice_days", "int"),),
}
STAMP_FIELDS = (("per", ("visit", "amount")), ("amount_per_stamp", "int"), ("min_amount", "int"),
                ("goal", "int"), ("starter_stamps", "int"), ("one_per_day", "bool"),
                ("card_valid_days", "int"), ("completion_reward", COUPON))
NEW_ROWS = 1  # empty rows offered for adding a reward or a milestone


@bp.route("/program/settings/<section>", methods=["GET", "POST"])
@signed_in("owner", refusal="program_owner_only")
def program_settings(section: str) -> Any:
    """One simple section of the program as a form."""
    if section not in SECTIONS:
        return page("message.html", 404, message=g.t["program_no_section"])
    base, data = _current()
    base = _base(base)
    values = data.get(section, {})
    if request.method == "GET":
        return page("program_settings.html", base=base, section=section,
                    fields=_fields(SECTIONS[section], values, data))
    edited = _read(SECTIONS[section], request.form, values)
    return _review(base, {**data, section: edited} if edited else
                   {k: v for k, v in data.items() if k != section})


@bp.route("/program/rewards", methods=["GET", "POST"])
@signed_in("owner", refusal="program_owner_only")
def program_rewards() -> Any:
    """The rewards catalog: points for a coupon, each with its key, dates, or retired."""
    base, data = _current()
    base = _base(base)
    if request.method == "GET":
        rows = [*data.get("rewards", []), *({} for _ in range(NEW_ROWS))]
        return page("program_rewards.html", base=base, rows=rows,
                    coupons=_coupon_names(data))
    rewards, rows = [], request.form.get("rows", "0")
    for i in range(int(rows) if rows.isdigit() and len(rows) < 4 else 0):
        row = _row(request.form, f"r{i}-")
        if not row.get("points") and not row.get("key") and not row.get("coupon"):
            continue  # an empty row: nothing added
        reward = {"key": row.get("key", "").strip() or row.get("coupon", ""),
                  "points": _number(row.get("points", "")), "coupon": row.get("coupon", "")}
        for name in ("starts", "ends"):
            if row.get(name, "").strip():
                reward[name] = _date(row[name])
        if row.get("retired"):
            reward["retired"] = True
        rewards.append(reward)
    return _review(base, {**data, "rewards": rewards})


@bp.route("/program/stamps", methods=["GET", "POST"])
@signed_in("owner", refusal="program_owner_only")
def program_stamps() -> Any:
    """The stamp card: how stamps are earned, its goal and its rewards. Cards already begun
    keep the goal and rewards they started with."""
    base, data = _current()
    base = _base(base)
    stamps = data.get("stamps", {})
    if request.method == "GET":
        rows = [*stamps.get("milestones", []), *({} for _ in range(NEW_ROWS))]
        return page("program_stamps.html", base=base, rows=rows,
                    fields=_fields(STAMP_FIELDS, stamps, data),
                    coupons=_coupon_names(data))
    edited = _read(STAMP_FIELDS, request.form, stamps)
    milestones = []
    for i in range(len(stamps.get("milestones", [])) + NEW_ROWS):
        row = _row(request.form, f"m{i}-")
        if row.get("at", "").strip() or row.get("reward", "").strip():
            milestones.append({"at": _number(row.get("at", "")), "reward": row.get("reward", "")})
    if milestones:
        edited["milestones"] = milestones
    else:
        edited.pop("milestones", None)
    return _review(base, {**data, "stamps": edited})


def _fields(spec: tuple[tuple[str, Any], ...], values: dict[str, Any], data: dict[str, Any]
            ) -> list[dict[str, Any]]:
    """What a form shows: each field's name, kind, current value and choices."""
    shown = []
    for name, kind in spec:
        value = values.get(name, "")
        choices = (list(_coupon_names(data).items()) if kind == COUPON  # (value, label)
                   else [(c, None) for c in kind] if isinstance(kind, tuple) else None)
        if kind == "ints" and isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        shown.append({"name": name, "kind": "choice" if choices is not None else kind,
                      "value": value, "choices": choices})
    return shown


def _coupon_names(data: dict[str, Any]) -> dict[str, str]:
    """The program's coupon templates as an owner knows them: key -> title (key), in the
    console's language."""
    english = g.lang == "en"
    return {key: f"{template.get('title_en' if english else 'title', template.get('title', key))}"
                 f" ({key})" for key, template in data.get("coupons", {}).items()
            if isinstance(template, dict)}


def _read(spec: tuple[tuple[str, Any], ...], form: MultiDict, values: dict[str, Any]
          ) -> dict[str, Any]:
    """The section as the form left it: an empty field is left out (its default applies);
    keys the form does not show are kept."""
    edited = dict(values)
    for name, kind in spec:
        raw = form.get(name, "").strip()
        edited.pop(name, None)
        if kind == "bool":
            if form.get(name) or name in values:  # an unticked box the file left out: default
                edited[name] = bool(form.get(name))
        elif not raw:
            continue
        elif kind == "int":
            edited[name] = _number(raw)
        elif kind == "ints":
            parts = [_number(p) for p in raw.replace("，", ",").split(",") if p.strip()]
            edited[name] = parts
        else:
            edited[name] = raw
    return edited


def _row(form: MultiDict, prefix: str) -> dict[str, str]:
    return {key[len(prefix):]: value for key, value in form.items() if key.startswith(prefix)}


def _date(value: str) -> Any:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        return value.strip()


@bp.route("/program/tiers", methods=["GET", "POST"])
@signed_in("owner", refusal="program_owner_only")
def program_tiers() -> Any:
    """The tiers, lowest first: name, spend threshold, points multiplier, birthday coupon and
    benefits (a line each)."""
    base, data = _current()
    base = _base(base)
    if request.method == "GET":
        rows = [*data.get("tiers", []), *({} for _ in range(NEW_ROWS))]
        return page("program_tiers.html", base=base, rows=rows,
                    coupons=_coupon_names(data))
    tiers, rows = [], request.form.get("rows", "0")
    for i in range(int(rows) if rows.isdigit() and len(rows) < 4 else 0):
        row = _row(request.form, f"t{i}-")
        if not any(row.get(k, "").strip() for k in ("key", "name", "threshold")):
            continue
        tier: dict[str, Any] = {"key": row.get("key", "").strip(),
                                "name": row.get("name", "").strip(),
                                "threshold": _number(row.get("threshold", ""))}
        if row.get("name_en", "").strip():
            tier["name_en"] = row["name_en"].strip()
        if row.get("multiplier", "").strip():
            tier["multiplier"] = _rate(row["multiplier"])
        if row.get("birthday_coupon", "").strip():
            tier["birthday_coupon"] = row["birthday_coupon"]
        for name in ("benefits", "benefits_en"):
            lines = [line.strip() for line in row.get(name, "").splitlines() if line.strip()]
            if lines:
                tier[name] = lines
        tiers.append(tier)
    return _review(base, {**data, "tiers": tiers})
