"""The POS's API tokens in the console (owners): make one for a till or a web shop with the
scopes it needs (the secret is shown once, only its hash is kept), see each one's last use,
and revoke one (it stops working at once), as `flask --app bot api-token` does."""

from __future__ import annotations

from typing import Any

from flask import g, request

from bot.console.views import Refused, bp, page, runtime, signed_in, who
from bot.db import transaction
from bot.loyalty import api_tokens
from bot.loyalty.errors import LoyaltyError


@bp.route("/tokens", methods=["GET", "POST"])
@signed_in("owner", refusal="tokens_owner_only")
def tokens_page() -> Any:
    rt = runtime()
    notice, error, made = None, None, None
    if request.method == "POST":
        action = request.form.get("action")
        try:
            with transaction(rt.sessions) as db:
                if action == "create":
                    row, secret = api_tokens.create_token(
                        db, request.form.get("name", ""), request.form.getlist("scope"), g.now,
                        actor=who())
                    made = {"name": row.name, "secret": secret, "scopes": row.scopes.split()}
                elif action == "revoke":
                    row = api_tokens.revoke_token(db, request.form.get("token", ""), g.now,
                                                  actor=who())
                    notice = g.t["token_revoked"].format(name=row.name)
                else:
                    raise Refused("bad_action")
        except Refused as exc:
            error = g.t[exc.key]
        except LoyaltyError as exc:
            error = exc.message(g.lang)
    with rt.sessions() as db:
        listed = api_tokens.list_tokens(db)
    return page("tokens.html", 400 if error else 200, listed=listed, made=made, notice=notice,
                error=error, scopes=list(api_tokens.SCOPES), tz=rt.program.timezone,
                chosen=request.form.getlist("scope") if error else [],
                name=request.form.get("name", "") if error else "")
