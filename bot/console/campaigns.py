"""The console's campaigns page (owners and managers): create one from a coupon template for
members picked by tags, with whom it reaches and what it costs (the figures of `campaign
send --dry-run`), send it now or at a local time (the clock sends it), open and close claim
campaigns, and each campaign's results."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, NamedTuple

from flask import g, jsonify, request
from sqlalchemy.orm import Session

from bot.console.views import Refused, bp, money, page, runtime, signed_in, title, who
from bot.db import transaction
from bot.loyalty import campaigns, segments
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.timeutil import utcnow
from bot.outbox.budget import month_budget

NAME_MAX = 200  # characters: the column's size, the form's maxlength
CAP_MAX = 1_000_000


def form_segment(known: set[str]) -> str:
    """The tag expression the form asks for: any of the ticked tags, none of the excluded."""
    include = request.values.getlist("include")
    exclude = request.values.getlist("exclude")
    if any(tag not in known for tag in include + exclude):
        raise Refused("tag_unknown")
    parts = [f"({' or '.join(include)})" if len(include) > 1 else include[0]] if include else []
    return " and ".join(parts + [f"not {tag}" for tag in exclude])


def form_claim() -> tuple[str | None, int | None]:
    """A claim campaign's keyword and cap (None, None for an issue campaign)."""
    if request.values.get("mode") != "claim":
        return None, None
    keyword = request.values.get("keyword", "").strip()
    cap_text = request.values.get("cap", "").strip()
    if not keyword:
        raise Refused("keyword_needed")
    if not cap_text:
        return keyword, None
    if not (cap_text.isascii() and cap_text.isdigit()) or not 0 < int(cap_text) <= CAP_MAX:
        raise Refused("cap_bad", most=f"{CAP_MAX:,}")
    return keyword, int(cap_text)


class Draft(NamedTuple):
    """The campaign the form describes, before it is made."""

    key: str
    template: str
    name: str
    segment: str
    mode: str
    keyword: str | None
    cap: int | None
    push: bool


def draft(db: Session) -> Draft:
    """The campaign the form describes: what the count and the creation read."""
    template = request.values.get("template", "")
    if template not in runtime().program.coupons:
        raise Refused("template_unknown")
    if len(request.values.get("name", "")) > NAME_MAX:
        raise Refused("campaign_name_long", most=str(NAME_MAX))
    keyword, cap = form_claim()
    segment = form_segment({name for name, _, _ in segments.tag_counts(db)})
    return Draft(key=request.values.get("key", "").strip(), template=template,
                 name=request.values.get("name", "").strip(), segment=segment,
                 mode="claim" if request.values.get("mode") == "claim" else "issue",
                 keyword=keyword, cap=cap, push=request.values.get("push") == "1")


def reach_words(db: Session, wanted: Draft) -> dict[str, Any]:
    """Whom the campaign reaches and what its pushes cost, in the reader's words."""
    rt = runtime()
    reach = campaigns.would_reach(db, segment=wanted.segment, mode=wanted.mode,
                                  push=wanted.push)
    budget = month_budget(db, rt.program, g.now, rt.line.pushes_left
                          if rt.config.line_configured else None)
    said = [g.t[f"budget_{what}"].format(**{k: f"{v:,}" for k, v in values.items()})
            for what, values in budget.parts(reach.pushes)]
    text = g.t["reach"].format(members=f"{reach.members:,}", pushes=f"{reach.pushes:,}")
    return {"members": reach.members, "pushes": reach.pushes,
            "text": f"{text} {g.t['list_sep'].join(said)}"}


@bp.get("/campaigns/reach")
@signed_in()
def campaign_reach() -> Any:
    """The form's count as JSON, for the page's script (the count button does it without).
    A form that cannot be counted yet (a claim campaign without its keyword) is an answer
    while the owner types, not a failed request: {"error": why}, with a 200."""
    try:
        with runtime().sessions() as db:
            return jsonify(reach_words(db, draft(db)))
    except Refused as exc:
        return jsonify(error=g.t[exc.key].format(**exc.values))
    except LoyaltyError as exc:
        return jsonify(error=exc.message(g.lang))


@bp.route("/campaigns", methods=["GET", "POST"])
@signed_in()
def campaigns_page() -> Any:
    """Every campaign with its results, its next step, and a form for a new one."""
    notice, error, counted = None, None, None
    action = request.form.get("action")
    if request.method == "POST":
        try:
            if action == "count":
                with runtime().sessions() as db:
                    counted = reach_words(db, draft(db))["text"]
            else:
                notice = act(action or "")
        except Refused as exc:
            error = g.t[exc.key].format(**exc.values)
        except LoyaltyError as exc:
            error = exc.message(g.lang)
    return show(notice, error, counted, keep=request.method == "POST" and action in (
        "count", "create") and (error is not None or action == "count"))


def act(action: str) -> str:
    """Do what the form asked, in one transaction; the notice to show."""
    rt, key = runtime(), request.form.get("campaign", "")
    with transaction(rt.sessions) as db:
        if action == "create":
            made = draft(db)
            key = made.key or f"c{g.now.astimezone(rt.program.timezone):%Y%m%d}-" \
                              f"{secrets.token_hex(2)}"
            created = campaigns.create_campaign(
                db, rt.program, key, template=made.template, now=g.now, name=made.name,
                segment=made.segment, keyword=made.keyword, cap=made.cap, push=made.push,
                actor=who())
            return g.t["campaign_created"].format(name=created.name)
        if action in ("open", "close"):
            found = campaigns.find_campaign(db, key, lock=True)
            campaigns.set_status(db, found, "open" if action == "open" else "closed", g.now,
                                 actor=who())
            return g.t[f"campaign_now_{found.status}"].format(name=found.name)
        if action == "send_now":
            now = utcnow()
            found = campaigns.schedule(db, key, now, now, actor=who())
            return g.t["campaign_send_now"].format(name=found.name)
        if action == "schedule":
            found = campaigns.schedule(db, key, local_time(), utcnow(), actor=who())
            return g.t["campaign_scheduled"].format(name=found.name, when=shown_time(
                found.scheduled_at))
        if action == "cancel":
            found = campaigns.cancel_schedule(db, key, utcnow(), actor=who())
            return g.t["campaign_cancelled"].format(name=found.name)
    raise Refused("bad_action")


def local_time() -> dt.datetime:
    """The form's date and time, read in the program's timezone, as a UTC instant."""
    try:
        local = dt.datetime.fromisoformat(request.form.get("at", ""))
    except ValueError:
        raise Refused("time_bad") from None
    if local.tzinfo is not None or not 2000 < local.year < 3000:
        raise Refused("time_bad")
    return local.replace(tzinfo=runtime().program.timezone).astimezone(dt.UTC)


def shown_time(at: dt.datetime | None) -> str:
    return at.astimezone(runtime().program.timezone).strftime("%Y/%m/%d %H:%M") if at else ""


def show(notice: str | None, error: str | None, counted: str | None, *, keep: bool) -> Any:
    rt = runtime()
    with rt.sessions() as db:
        listed = campaigns.all_campaigns(db)
        figures = campaigns.results(db, listed)
        tags = segments.tag_counts(db)
        rows = [{"c": c, "state": state(c), "results": figures[c.key],
                 "template": title(rt.program.coupons[c.template])
                 if c.template in rt.program.coupons else c.template,
                 "when": shown_time(c.scheduled_at), "sent": shown_time(c.sent_at)}
                for c in reversed(listed)]
    form = request.form if keep else {}
    soon = (g.now + dt.timedelta(hours=1)).astimezone(rt.program.timezone)
    return page("campaigns.html", 400 if error else 200, rows=rows, tags=tags, notice=notice,
                error=error, counted=counted, money=money, form=form,
                include=form.getlist("include") if keep else [],
                exclude=form.getlist("exclude") if keep else [],
                templates=[(key, title(t)) for key, t in rt.program.coupons.items()
                           if not t.retired],
                soon=soon.strftime("%Y-%m-%dT%H:00"), name_max=NAME_MAX)


def state(campaign: Any) -> str:
    """The words key of where a campaign stands: scheduled and due are drafts with a time."""
    if campaign.status == "draft" and campaign.scheduled_at is not None:
        return "state_due" if campaign.scheduled_at <= g.now else "state_scheduled"
    return f"state_{campaign.status}"
