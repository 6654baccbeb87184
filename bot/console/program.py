"""The program pages: the live version and its history, editors for the earning rate and the
coupon templates, the whole program as TOML, and rollback. Owners edit; managers read.

Every editor makes a proposal (the whole program, with the edit) and shows what changes
and any mistake before anything is saved; saving makes the next version (bot.loyalty.
programs.save), refused if someone saved since the editor was opened.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from functools import partial
from pathlib import Path
from typing import Any

from flask import g, redirect, request, send_from_directory, url_for

from bot.config import ConfigError
from bot.console.views import CSP, bp, page, runtime, signed_in, who
from bot.db import transaction
from bot.line import formatting as fmt
from bot.line import messages
from bot.line.qr import qr_url
from bot.loyalty import audit, programs
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.timeutil import local_date
from bot.program import COUPON_KINDS, ROUNDING, Program, ProgramError, parse_program, parse_toml
from bot.simulator import flex_html, samples
from bot.simulator.flex_html import render_message

COUPON_NUMBERS = ("amount", "percent", "max_discount", "min_spend", "valid_days", "total_cap",
                  "per_member_cap")
COUPON_TEXTS = ("title", "title_en", "gift", "gift_en")
COUPON_DATES = ("valid_from", "valid_until")
TEMPLATE_KEY = re.compile(r"[a-z0-9_]{1,40}")  # a new template's key (a file may hold others)
NEW = object()  # program_coupon's key for a template not yet made
SETTINGS = ("expiry", "tier_rules", "welcome", "birthday", "winback", "reminders", "messaging",
            "staff", "claims", "changes")  # the sections bot.console.program_settings edits
MAX_PROGRAM = 200_000  # characters of TOML: far above any real program
FLEX_CSS = Path(flex_html.__file__).parent / "static" / "flex.css"  # the simulator's card look


def _current() -> tuple[int, dict[str, Any]]:
    with runtime().sessions() as db:
        number = programs.current_number(db) or 0
        return number, programs.data_of(db, number) if number else {}


@bp.get("/program")
@signed_in()
def program_page() -> Any:
    """The live version, what each version changed, and the editors (owners). The editors
    start from the newest version: while a saved one waits for its date, the coupons listed
    for editing and the earning figure are that version's, and the page says so."""
    program = runtime().program
    with runtime().sessions() as db:
        history = programs.history(db, 30)
        newest = programs.current_number(db)
        editing = programs.load(db, newest) if newest and newest != program.version else None
    waiting = next((v for v in history if editing and v.number == editing.version), None)
    saved = next((v for v in history if str(v.number) == request.args.get("saved")), None)
    notice = None
    if saved is not None:
        notice = g.t["program_saved"].format(version=saved.number) if (
            saved.effective_at <= g.now) else g.t["program_saved_later"].format(
            version=saved.number,
            date=saved.effective_at.astimezone(program.timezone).strftime("%Y/%m/%d %H:%M"))
    return page("program.html", history=history, program=program, notice=notice,
                settings=SETTINGS, editing=editing or program,
                editing_from=g.t["program_editing_from"].format(
                    version=waiting.number, date=waiting.effective_at.astimezone(
                        program.timezone).strftime("%Y/%m/%d %H:%M")) if waiting else None)


@bp.get("/program/flex.css")
@signed_in()
def flex_css() -> Any:
    """The card styles the simulator uses, for the coupon preview."""
    return send_from_directory(FLEX_CSS.parent, FLEX_CSS.name)


# -- editors --------------------------------------------------------------------------------
@bp.route("/program/earning", methods=["GET", "POST"])
@signed_in("owner", refusal="program_owner_only")
def program_earning() -> Any:
    """How points are earned: NT$ per point, rounding, category multipliers and dated
    campaigns (a multiplier for some days)."""
    base, data = _current()
    earning = data.get("earning", {})
    base = _base(base)
    if request.method == "GET":
        names, names_en = (earning.get(k, {}) for k in ("category_names", "category_names_en"))
        lines = "\n".join(
            f"{k} = {v}" + (f" {names[k]}" if k in names else "")
            + (f" / {names_en[k]}" if k in names_en else "")
            for k, v in earning.get("category_multipliers", {}).items())
        return page("program_earning.html", base=base, earning=earning, multipliers=lines,
                    roundings=ROUNDING, campaigns=[*earning.get("campaigns", []), {}])
    earning = dict(earning)
    earning["amount_per_point"] = _number(request.form.get("amount_per_point", ""))
    earning["rounding"] = request.form.get("rounding", "")
    categories = _multipliers(request.form.get("multipliers", ""))
    if isinstance(categories, str):
        return _review(base, None, error=categories)
    for key, table in zip(("category_multipliers", "category_names", "category_names_en"),
                          categories, strict=True):
        if table:
            earning[key] = table
        else:
            earning.pop(key, None)
    campaigns = _campaigns(request.form, len(earning.get("campaigns", [])) + 1)
    if campaigns:
        earning["campaigns"] = campaigns
    else:
        earning.pop("campaigns", None)
    return _review(base, {**data, "earning": earning})


def _campaigns(form: Any, rows: int) -> list[dict[str, Any]]:
    """The dated campaigns as the form left them; a row left empty is none."""
    found = []
    for i in range(rows):
        row = {name: form.get(f"c{i}-{name}", "").strip()
               for name in ("name", "name_en", "starts", "ends", "multiplier")}
        if not any(row.values()):
            continue
        campaign: dict[str, Any] = {"name": row["name"], "multiplier": _rate(row["multiplier"])}
        if row["name_en"]:
            campaign["name_en"] = row["name_en"]
        for name in ("starts", "ends"):
            try:
                campaign[name] = dt.date.fromisoformat(row[name])
            except ValueError:
                campaign[name] = row[name]
        found.append(campaign)
    return found


def _rate(value: str) -> Any:
    """1.5 / 2 as a number; anything else as typed, for the validator to refuse."""
    try:
        number = float(value)
    except ValueError:
        return value
    if number != number or number in (float("inf"), float("-inf")):
        return value
    return int(number) if number.is_integer() else number


@bp.route("/program/new-coupon", methods=["GET", "POST"])
@signed_in("owner", refusal="program_owner_only")
def program_new_coupon() -> Any:
    """A new coupon template."""
    return program_coupon(NEW)


@bp.route("/program/coupons/<key>", methods=["GET", "POST"])
@signed_in("owner", refusal="program_owner_only")
def program_coupon(key: str) -> Any:
    """One coupon template (NEW for a new one), with its card as a customer sees it."""
    base, data = _current()
    coupons = data.get("coupons", {})
    base = _base(base)
    if key is not NEW and key not in coupons:
        return page("message.html", 404, message=g.t["program_no_template"])
    if request.method == "GET":
        return page("program_coupon.html", base=base, key=None if key is NEW else key,
                    fields=coupons.get(key, {"kind": "amount_off", "valid_days": 30}),
                    kinds=COUPON_KINDS, preview=_card(key) if key is not NEW else None)
    new_key = key if key is not NEW else request.form.get("key", "").strip()
    if key is NEW and not TEMPLATE_KEY.fullmatch(new_key):
        return _review(base, None, error=g.t["program_bad_key"])
    if key is NEW and new_key in coupons:
        return _review(base, None, error=g.t["program_key_taken"].format(key=new_key))
    template = _template(request.form)
    return _review(base, {**data, "coupons": {**coupons, new_key: template}}, coupon=new_key)


@bp.route("/program/toml", methods=["GET", "POST"])
@signed_in("owner", refusal="program_owner_only")
def program_toml() -> Any:
    """Everything the program holds, as TOML (what `program export` writes)."""
    base, data = _current()
    if request.method == "GET":
        return page("program_toml.html", base=base, text=programs.canonical(data))
    text = request.form.get("text", "")
    if len(text) > MAX_PROGRAM:
        return _review(base, None, error=g.t["program_too_long"])
    try:
        proposal = parse_toml(text, g.t["program_edit"])
    except ProgramError as exc:
        return _review(base, None, error=str(exc))
    return _review(_base(base), proposal)  # the version the editor was opened on


# -- review, save, rollback -----------------------------------------------------------------
@bp.post("/program/save")
@signed_in("owner", refusal="program_owner_only")
def program_save() -> Any:
    """Save the reviewed proposal as the next version (refused if one was saved since)."""
    base = _base(None)
    text = request.form.get("proposal", "")
    if len(text) > MAX_PROGRAM:
        return _review(base, None, error=g.t["program_too_long"])
    try:
        proposal = parse_toml(text, g.t["program_edit"])
        with transaction(runtime().sessions) as db:
            program = programs.save(db, proposal, base=base, actor=who(), source="console",
                                    now=g.now, check=runtime().config.check_program)
            audit.record(db, "program.save", member_id=None, actor=who(), at=g.now,
                         version=program.version)
    except (ProgramError, ConfigError) as exc:
        return _review(base, None, error=str(exc))
    except LoyaltyError as exc:
        return page("program_review.html", 409, base=base, changes=[], proposal="",
                    error=exc.message(g.lang), preview=None)
    runtime().live.refresh()
    return redirect(url_for("console.program_page", saved=program.version))


@bp.post("/program/rollback/<int:number>")
@signed_in("owner", refusal="program_owner_only")
def program_rollback(number: int) -> Any:
    """Make an old version live again, as a new version (refused, as any save, if someone
    saved since the page was opened)."""
    if number >= 2 ** 31:
        return page("message.html", 404, message=g.t["program_no_version"])
    try:
        with transaction(runtime().sessions) as db:
            program = programs.rollback(db, number, actor=who(), now=g.now, base=_base(None),
                                        check=runtime().config.check_program)
            audit.record(db, "program.rollback", member_id=None, actor=who(), at=g.now,
                         version=program.version, to=number)
    except (ProgramError, ConfigError) as exc:
        return page("message.html", 400, message=str(exc))
    except LoyaltyError as exc:
        return page("message.html", 409, message=exc.message(g.lang))
    runtime().live.refresh()
    return redirect(url_for("console.program_page", saved=program.version))


def _review(base: int, proposal: dict[str, Any] | None, *, error: str | None = None,
            coupon: str | None = None) -> Any:
    """What the proposal changes and whether it is valid, before anything is saved."""
    changes, preview, text, taken = [], None, "", []
    with runtime().sessions() as db:
        if error is None and programs.current_number(db) != base:
            error = programs.changed(db, programs.current_number(db)).message(g.lang)
    if proposal is not None:
        text = programs.canonical(proposal)
        try:
            program = parse_program(programs.canonical(programs.upgraded(proposal)),
                                    g.t["program_edit"])
            runtime().config.check_program(program)
        except (ProgramError, ConfigError) as exc:
            error = str(exc)
        else:
            preview = _card(coupon, program) if coupon else None
            taken = _takeaways(program)
        with runtime().sessions() as db:
            before = programs.data_of(db, base) if base else None
        changes = programs.describe(before, programs.upgraded(proposal)).splitlines()
    return page("program_review.html", 400 if error else 200, base=base, changes=changes,
                proposal="" if error else text, error=error, preview=preview, taken=taken,
                notice_days=runtime().program.notice_days)


def _takeaways(program: Program) -> list[str]:
    """What saving `program` would take away from members, as they would be told of it."""
    live = runtime().program
    found = programs.takeaways(live, program, local_date(g.now, live.timezone))
    if not found:
        return []
    coming = dataclasses.replace(live, coming=tuple(found),
                                 coming_at=g.now + dt.timedelta(days=live.notice_days))
    ctx = samples.context(coming, "en" if g.lang == "en" else "zh-TW")
    return fmt.coming(ctx, (*fmt.CUSTOMER_CHANGES, "notice_shorter"))


def _card(key: str, program: Program | None = None) -> str:
    """The coupon's card as the customer reads it, in the console's language. The card's
    layout is in style attributes, so this page's policy allows inline styles (never
    inline scripts)."""
    g.csp = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    program = program or runtime().program
    ctx = samples.context(program, "en" if g.lang == "en" else "zh-TW",
                                 qr=partial(qr_url, runtime().config.secret_key, ""))
    return "".join(render_message(m) for m in
                   messages.coupon_detail(ctx, samples.view(program, key)))


def _base(default: int | None) -> int | None:
    value = request.form.get("base", "")
    return int(value) if value.isdigit() and len(value) < 10 else default


def _number(value: str) -> Any:
    """A whole number as typed (1,200 too); anything else as typed, for the validator to
    refuse with the field's name."""
    cleaned = value.strip()
    if re.fullmatch(r"\d{1,3}(,\d{3})+", cleaned):
        cleaned = cleaned.replace(",", "")
    return int(cleaned) if cleaned.isdigit() and len(cleaned) < 10 else value.strip()


def _multipliers(text: str) -> tuple[dict[str, Any], dict[str, str], dict[str, str]] | str:
    """`beans = 2 咖啡豆 / Coffee beans` lines (the names optional) -> the multipliers, the
    names and the English names by category; a line that is not one gives the message to
    show. The program's own checks judge the names (length, no Chinese in English)."""
    found: dict[str, Any] = {}
    names: dict[str, str] = {}
    names_en: dict[str, str] = {}
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        key, sep, rest = line.partition("=")
        value, _, named = rest.strip().partition(" ")
        try:
            number = float(value) if sep else None
        except ValueError:
            number = None
        if number is None or not key.strip():
            return g.t["program_bad_multiplier"].format(line=line)
        key = key.strip()
        found[key] = int(number) if number.is_integer() else number
        name, slash, name_en = named.partition("/")
        if name.strip():
            names[key] = name.strip()
        if slash and name_en.strip():
            names_en[key] = name_en.strip()
    return found, names, names_en


def _template(form: Any) -> dict[str, Any]:
    template: dict[str, Any] = {"kind": form.get("kind", "")}
    for name in COUPON_TEXTS:
        if form.get(name, "").strip():
            template[name] = form[name].strip()
    for name in COUPON_NUMBERS:
        if form.get(name, "").strip():
            template[name] = _number(form[name])
    if form.get("retired"):
        template["retired"] = True
    for name in COUPON_DATES:
        if form.get(name, "").strip():
            try:
                template[name] = dt.date.fromisoformat(form[name].strip())
            except ValueError:
                template[name] = form[name].strip()
    return template
