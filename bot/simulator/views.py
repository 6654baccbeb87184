"""The simulator page and the browser's API: personas, chats, the clock panel, the gallery."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request, send_file
from sqlalchemy.orm import Session

from bot.bootstrap import Runtime
from bot.config import ROOT
from bot.db import transaction
from bot.jobs import JOBS, run_job
from bot.line.flex import strings_table, template
from bot.line.qr import payload_of, qr_url, typed_text
from bot.loyalty.errors import UnknownMember
from bot.loyalty.members import find_by_line_user
from bot.loyalty.staff import seed_staff
from bot.loyalty.timeutil import utcnow
from bot.simulator import events, local_base_url
from bot.simulator.flex_html import render_message
from bot.simulator.samples import context, sample_makers
from bot.simulator.store import Entry, Persona, Store

bp = Blueprint("simulator", __name__, url_prefix="/simulator", template_folder="templates",
               static_folder="static")
MENUS = ("customer", "staff")
MAX_TEXT = 5000  # LINE's limit on a text message a user can send


class SimulatorError(Exception):
    """A request the simulator cannot act on; the message says why."""


def _state() -> Runtime:
    return current_app.extensions["loyalty"]


def _store() -> Store:
    return current_app.extensions["simulator"]


@bp.errorhandler(SimulatorError)
def refused(exc: SimulatorError):
    return jsonify(error=str(exc)), 400


@bp.get("")
def page():
    """The phone: personas, their chats, the rich menu, the clock panel."""
    state = _state()
    menus = {name: json.loads((ROOT / "richmenu" / f"{name}.json").read_text("utf-8"))
             for name in MENUS}
    now = utcnow().astimezone(state.program.timezone)
    return render_template("simulator/index.html", personas=list(_store().personas.values()),
                           menus=menus, jobs=JOBS, shop=state.program.shop_name,
                           now=now.strftime("%Y-%m-%dT%H:%M"), tz=state.program.timezone.key)


@bp.get("/richmenu/<name>.png")
def richmenu_image(name: str):
    if name not in MENUS:
        abort(404)
    return send_file(ROOT / "richmenu" / f"{name}.png", mimetype="image/png", max_age=60)


def _persona(key: str) -> Persona:
    persona = _store().personas.get(key)
    if persona is None:
        abort(404)
    return persona


def _friendships() -> dict[str, str]:
    """Each persona's standing with the shop: friend, blocked or none (never followed)."""
    personas = list(_store().personas.values())
    with _state().sessions() as session:
        statuses = {p.user_id: _member_status(session, p.user_id) for p in personas}
    first_seen = {"active": "friend", "blocked": "blocked"}
    return {p.key: _store().friendship(p.user_id, first_seen.get(statuses[p.user_id], "none"))
            for p in personas}


def _member_status(session: Session, line_user_id: str) -> str | None:
    try:
        return find_by_line_user(session, line_user_id).status
    except UnknownMember:
        return None


def _entry_json(entry: Entry) -> dict[str, Any]:
    config = _state().config

    def scan(url: str) -> str | None:
        payload = payload_of(config.secret_key, config.public_base_url, url)
        return typed_text(payload) if payload is not None else None

    persona = _store().persona_of(entry.user_id)
    return {"seq": entry.seq, "persona": persona.key if persona else None,
            "sender": entry.sender, "via": entry.via, "message": entry.message,
            "html": render_message(entry.message, qr_payload=scan)}


@bp.get("/api/chats")
def chats():
    """Every conversation entry after `after`, and each persona's standing with the shop."""
    after = request.args.get("after", "0")
    entries = _store().since(int(after) if after.isdigit() else 0)
    return jsonify(entries=[_entry_json(e) for e in entries if _store().persona_of(e.user_id)],
                   friendship=_friendships())


@bp.post("/api/chats/<key>")
def act(key: str):
    """The persona does something in LINE: types, taps a button, follows or blocks."""
    persona = _persona(key)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SimulatorError("send a JSON object")
    config = _state().config
    standing = _friendships()[persona.key]
    event = _event(persona, body, standing)
    _ensure_staff()
    if event["type"] in ("follow", "unfollow"):  # as on LINE: (un)blocked, then the event
        _store().set_friendship(persona.user_id,
                                "friend" if event["type"] == "follow" else "blocked")
    try:
        status = events.deliver(f"{local_base_url(config)}/callback",
                                config.line_channel_secret, [event])
    except events.CallbackUnreachable as exc:
        status, problem = 0, str(exc)
    else:
        problem = f"/callback answered {status}"
    if status != 200:
        _store().set_friendship(persona.user_id, standing)
        raise SimulatorError(problem)
    return jsonify(status=status)


def _event(persona: Persona, body: dict[str, Any], standing: str) -> dict[str, Any]:
    kind, user, store = body.get("type"), persona.user_id, _store()
    if standing == "blocked" and kind in ("text", "postback"):
        raise SimulatorError(f"{persona.display_name} has blocked the shop: LINE sends nothing "
                             f"from a blocked chat; unblock (follow) first")
    if kind == "text":
        words = body.get("text")
        if not isinstance(words, str) or not words.strip() or len(words) > MAX_TEXT:
            raise SimulatorError(f"type a message of 1 to {MAX_TEXT} characters")
        store.add(user, "user", "text", {"type": "text", "text": words})
        return events.text_event(user, store.new_reply_token(user), words)
    if kind == "postback":
        data, shown, params = body.get("data"), body.get("displayText"), body.get("params")
        if not isinstance(data, str) or not data:
            raise SimulatorError("a postback needs its data")
        if isinstance(shown, str) and shown:
            store.add(user, "user", "postback", {"type": "text", "text": shown})
        params = ({k: str(v) for k, v in params.items() if k in ("date", "time", "datetime")}
                  if isinstance(params, dict) else None)
        return events.postback_event(user, store.new_reply_token(user), data, params)
    if kind == "follow":
        if standing == "friend":
            raise SimulatorError(f"{persona.display_name} is already a friend of the shop")
        return events.follow_event(user, store.new_reply_token(user),
                                   unblocked=standing == "blocked")
    if kind == "unfollow":
        if standing != "friend":
            raise SimulatorError(f"{persona.display_name} is not a friend of the shop")
        return events.unfollow_event(user)
    raise SimulatorError("type must be text, postback, follow or unfollow")


def _ensure_staff() -> None:
    """The staff persona is staff, as after `flask --app bot staff add` — once: a later
    `staff remove` holds, so a removed staff member can be tried too."""
    if _store().staff_ready:
        return
    staff = {p.user_id: p.display_name for p in _store().personas.values() if p.staff}
    with transaction(_state().sessions) as session:
        seed_staff(session, staff, utcnow(), actor="simulator")
    _store().staff_ready = True


@bp.post("/api/clock")
def clock():
    """Run a scheduled job as of a chosen local time, then the sender; show what it pushed."""

    body = request.get_json(silent=True) or {}
    job = JOBS.get(str(body.get("job")))
    if job is None:
        raise SimulatorError(f"job must be one of: {', '.join(JOBS)}")
    at = _local_time(body.get("at"))
    rt, before = _state().jobs(), _store().last_seq
    summaries = {job.name: run_job(rt, job, at)}
    if job.name != "send":
        summaries["send"] = run_job(rt, JOBS["send"], at)
    pushed = [e for e in _store().since(before) if e.via in ("push", "multicast")]
    return jsonify(summaries=summaries, pushes=[
        {"persona": getattr(_store().persona_of(e.user_id), "key", None), "user": e.user_id,
         "alt": e.message.get("altText") or e.message.get("text", "")} for e in pushed])


def _local_time(raw: Any) -> dt.datetime:
    """`2026-12-24T09:00` in the program's timezone, as UTC."""
    try:
        local = dt.datetime.strptime(str(raw), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise SimulatorError("at must be a local date and time: YYYY-MM-DDTHH:MM") from None
    return local.replace(tzinfo=_state().program.timezone).astimezone(dt.UTC)


@bp.get("/gallery")
def gallery():
    """Every Flex template with sample data, in zh-TW and English, read afresh from disk."""
    program, config = _state().program, _state().config
    template.cache_clear()  # a template edited since the last page shows as it is now
    strings_table.cache_clear()
    qr = partial(qr_url, config.secret_key, config.public_base_url)
    sections = [(lang, [(name, *_rendered(make))
                        for name, make in sample_makers(program, context(program, lang, qr))])
                for lang in ("zh-TW", "en")]
    return render_template("simulator/gallery.html", sections=sections,
                           shop=program.shop_name)


def _rendered(make: Callable[[], list[dict]]) -> tuple[list[str], str]:
    """(HTML of each message, "") or ([], what went wrong) for a broken template."""
    try:
        return [render_message(m) for m in make()], ""
    except Exception as exc:  # a template being edited: show the mistake, keep the rest
        return [], f"{type(exc).__name__}: {exc}"
