"""The REST API under /api/v1 for a shop's POS or web shop: JSON in, JSON out.

Every request carries a bearer token with scopes; bodies are checked against the OpenAPI
document's schemas; rule failures are problem details with a stable code; a POST with an
Idempotency-Key is done once and its first response is kept for retries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from jsonschema import Draft202012Validator
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from bot.api import openapi, views
from bot.bootstrap import Runtime
from bot.db import transaction
from bot.loyalty import idempotency
from bot.loyalty.api_tokens import allows, authenticate
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.timeutil import utcnow
from bot.models import ApiToken
from bot.outbox import queued_in

log = logging.getLogger("bot.api")
bp = Blueprint("api", __name__, url_prefix="/api/v1")
STATUS = {  # loyalty rule codes -> HTTP status; anything else broken by a rule is 422
    "not_found": 404, "unknown_code": 404, "unknown_reward": 404, "unknown_template": 404,
    "already_redeemed": 409, "order_conflict": 409, "refund_conflict": 409,
    "idempotency_key_reused": 409, "unknown_claim": 404, "claim_taken": 409,
    "claim_cancelled": 409,
    "invalid_amount": 400, "invalid_birthday": 400,
}
KEY_HEADER = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass
class Call:
    """What a handler gets: the session, the program, the time, the caller and the body."""

    session: Session
    state: Runtime
    now: dt.datetime
    token: ApiToken
    body: dict[str, Any]

    @property
    def program(self):
        return self.state.program

    @property
    def actor(self) -> str:
        return f"api:{self.token.id}"


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, errors: list[str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors


def problem(status: int, code: str, detail: str, errors: list[str] | None = None) -> Response:
    body = {"type": f"https://loyalty-bot.example/problems/{code}",
            "title": code.replace("_", " ").capitalize(), "status": status, "detail": detail,
            "code": code}
    if errors:
        body["errors"] = errors
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    mimetype="application/problem+json")


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status,
                    mimetype="application/json")


_validators: dict[str, Draft202012Validator] = {}


def _validator(schema: str) -> Draft202012Validator:
    if schema not in _validators:
        doc = {"$defs": openapi.SCHEMAS, **openapi.SCHEMAS[schema]}
        text = json.dumps(doc).replace("#/components/schemas/", "#/$defs/")
        _validators[schema] = Draft202012Validator(json.loads(text))
    return _validators[schema]


def _body(schema: str | None) -> dict[str, Any]:
    if schema is None:
        return {}
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_request", "the body is not JSON") from None
    except RecursionError:  # a body far below the size limit can nest deeper than Python
        raise ApiError(400, "invalid_request", "the body is nested too deeply") from None
    broken = _lone_surrogates(data)
    if broken:
        raise ApiError(400, "invalid_request", "the body has text that is not valid Unicode",
                       broken)
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        described = [f"{'/'.join(map(str, e.path)) or '(body)'}: {e.message}"[:300]
                     for e in errors[:10]]
        raise ApiError(400, "invalid_request", "the body does not match the schema",
                       described)
    return _whole(data)


def _lone_surrogates(data: Any) -> list[str]:
    """The places in a body whose text holds half a UTF-16 pair (such as \\ud800): JSON
    allows the escape, but the text cannot be stored, so it is refused here, not as a 500.

    A loop, not recursion, so no nesting that json.loads accepted can overflow the stack here."""
    found, pending = [], [("(body)", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            found += [f"{where}/{_shown(k)}" for k in value if _SURROGATE.search(k)]
            pending += [(f"{where}/{_shown(k)}", v) for k, v in value.items()]
        elif isinstance(value, list):
            pending += [(f"{where}/{i}", v) for i, v in enumerate(value)]
        elif isinstance(value, str) and _SURROGATE.search(value):
            found.append(where)
    return [f"{where.removeprefix('(body)/')}: text with a lone surrogate (half a UTF-16 "
            "pair)" for where in sorted(found)[:10]]


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _shown(key: str) -> str:
    """A key that can be sent back in an error (a lone surrogate shown as its escape)."""
    return key.encode("utf-8", "backslashreplace").decode()


def _whole(value: Any) -> Any:
    """JSON has one number type: 320.0 is the integer 320 (the schema already said so)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def _token(session: Session, scope: str, now: dt.datetime) -> ApiToken:
    header = request.headers.get("Authorization", "")
    kind, _, presented = header.partition(" ")
    token = authenticate(session, presented.strip(), now) if kind.lower() == "bearer" else None
    if token is None:
        raise ApiError(401, "unauthorized", "a valid bearer token is required")
    if not allows(token, scope):
        raise ApiError(403, "forbidden", f"this token lacks the {scope} scope")
    return token


def endpoint(scope: str, body: str | None = None, idempotent: bool = False) -> Callable:
    """Authenticate, check the body, run the handler in one transaction, answer in JSON."""
    def wrap(handler: Callable[..., tuple[int, Any]]) -> Callable:
        @wraps(handler)
        def view(**path: str) -> Response:
            state, now = current_app.extensions["loyalty"], utcnow()
            try:
                if any("\x00" in value for value in [*path.values(), *request.args.values()]):
                    raise ApiError(400, "invalid_request", "NUL characters are not allowed")
                with transaction(state.sessions) as session:
                    token = _token(session, scope, now)
                    call = Call(session, state, now, token, _body(body))
                    stored = _idempotency(call) if idempotent else None
                    if stored is not None:
                        return _json(*stored)
                    status, payload = handler(call, **path)
                    if idempotent and request.headers.get("Idempotency-Key"):
                        idempotency.keep(session, token.id, request.headers["Idempotency-Key"],
                                         status, payload)
                    queued = queued_in(session)
            except ApiError as exc:
                return problem(exc.status, exc.code, exc.detail, exc.errors)
            except LoyaltyError as exc:
                return problem(STATUS.get(exc.code, 422), exc.code, exc.message("en"))
            views.deliver_after_commit(state, queued, now)
            return _json(status, payload)
        return view
    return wrap


def _idempotency(call: Call) -> tuple[int, Any] | None:
    """Claim the key (waiting for a concurrent holder); a repeat returns the stored answer."""
    header = request.headers.get("Idempotency-Key")
    if header is None:
        return None
    if not KEY_HEADER.fullmatch(header):
        raise ApiError(400, "invalid_request", "Idempotency-Key must be 1 to 255 visible "
                                               "ASCII characters")
    fingerprint = hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b" "
                                 + json.dumps(call.body, sort_keys=True).encode()).hexdigest()
    return idempotency.claim(call.session, call.token.id, header, fingerprint, call.now)


def http_problem(exc: HTTPException) -> Response:
    """An HTTP error (unknown path, wrong method, too large) as problem details."""
    status = exc.code or 400
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        status, "invalid_request")
    return problem(status, code, exc.description or exc.name)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return http_problem(exc)
    log.exception("unhandled API error")
    return problem(500, "internal_error", "something went wrong on our side")


def init_app(app: Flask) -> None:
    from bot.api import routes  # noqa: F401  (registers the handlers on bp)

    app.register_blueprint(bp)
