"""The QR images: a PNG for each token the cards link to."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app

from bot.line import qr

bp = Blueprint("qr", __name__)


@bp.get("/qr/<token>.png")
def qr_image(token: str) -> Response:
    """The QR PNG for a token; anything forged or altered is a plain 404."""
    payload = qr.payload(current_app.extensions["loyalty"].config.secret_key, token)
    if payload is None:
        abort(404)
    response = Response(qr.png(payload), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
