"""The owner's alerts in the console: a banner on every page for whoever is signed in, and
the alerts page (owners) where an owner links their own LINE chat for the clock's daily
alert message, with a one-time `店主 CODE` as text and QR, as staff invites are made."""

from __future__ import annotations

from typing import Any

from flask import g, request, url_for

from bot.console.views import Refused, bp, page, runtime, signed_in, who
from bot.db import transaction
from bot.line import qr
from bot.loyalty import alerts
from bot.loyalty.codes import format_code


def said(found: list[alerts.Alert]) -> list[str]:
    """Each alert in the reader's words."""
    return [g.t[f"alert_{a.kind}"].format(**{k: f"{v:,}" if isinstance(v, int) else v
                                             for k, v in a.values.items()}) for a in found]


@bp.before_request
def read_alerts() -> None:
    """What is wrong now, for a signed-in page's banner (a few small queries), read before
    the view opens its transaction: on SQLite a second session inside a write waits for it."""
    if g.get("who") is not None and request.endpoint != "console.static":
        with runtime().sessions() as db:
            g.alerts = said(alerts.current(db, runtime().program, g.now))


@bp.context_processor
def banner() -> dict[str, Any]:
    """`alerts()` for the base template."""
    return {"alerts": lambda: g.get("alerts", [])}


@bp.route("/alerts", methods=["GET", "POST"])
@signed_in("owner", refusal="alerts_owner_only")
def alerts_page() -> Any:
    """What is wrong now, and the owner's LINE chat for the daily alert message: link it
    with a one-time code sent from that chat, or unlink it."""
    rt = runtime()
    notice, error, link = None, None, None
    if request.method == "POST":
        try:
            with transaction(rt.sessions) as db:
                if request.form.get("action") == "link":
                    link = link_words(alerts.link_code(db, g.who.id, g.now, actor=who()))
                elif request.form.get("action") == "unlink":
                    alerts.unlink_chat(db, g.who.id, g.now, actor=who())
                    notice = g.t["alerts_unlinked"]
                else:
                    raise Refused("bad_action")
        except Refused as exc:
            error = g.t[exc.key]
    with rt.sessions() as db:
        member = alerts.linked_member(db, g.who.id)
        found = said(alerts.current(db, rt.program, g.now))
    linked = g.t["alerts_linked"].format(name=member.display_name or "—",
                                         code=format_code(member.member_code)) \
        if member else None
    return page("alerts.html", 400 if error else 200, found=found, linked=linked,
                link=link, notice=notice, error=error)


def link_words(code: str) -> dict[str, str]:
    """What the owner sends from their LINE, the QR that types it (and its link)."""
    config = runtime().config
    text = f"店主 {format_code(code)}"
    payload = qr.chat_payload(config.line_oa_basic_id, text)
    return {"text": text, "link": payload if payload != text else "",
            "qr": url_for("qr.qr_image", token=qr.seal(config.secret_key, payload))}
