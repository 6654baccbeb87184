"""REST API bearer tokens: created with scopes, stored hashed, revoked by the owner.

What a valid token is lives here once: a secret whose SHA-256 matches a stored token that
is not revoked, allowed what its scopes name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.errors import (
    TokenNameInvalid,
    TokenScopeMissing,
    TokenScopeUnknown,
    UnknownToken,
)
from bot.models import ApiToken

SCOPES = {
    "purchases:write": "record purchases and refunds",
    "coupons:redeem": "validate and redeem coupons",
    "coupons:issue": "give a member a coupon",
    "points:redeem": "exchange a member's points for a reward",
    "members:read": "look up members and their summaries",
    "members:write": "tag and untag members",
    "reports:read": "read the analytics report",
}
PREFIX = "lbt_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: list[str], now: dt.datetime, *,
                 actor: str) -> tuple[ApiToken, str]:
    """A new token; the secret is returned once and only its hash is kept."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenNameInvalid()
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise TokenScopeUnknown(unknown=", ".join(unknown), choices=", ".join(SCOPES))
    if not scopes:
        raise TokenScopeMissing()
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=digest(secret), prefix=secret[:12],
                   scopes=" ".join(sorted(set(scopes))), created_at=now)
    session.add(row)
    session.flush()
    audit.record(session, "api_token.create", member_id=None, actor=actor, at=now,
                 token=row.id, name=name, scopes=row.scopes)
    return row, secret


def revoke_token(session: Session, which: str, now: dt.datetime, *, actor: str) -> ApiToken:
    """Revoke by id or by the prefix shown in `api-token list`; works at once."""
    which = which.strip()
    query = select(ApiToken).where(ApiToken.id == int(which)) \
        if which.isdigit() and len(which) < 19 else select(ApiToken).where(ApiToken.prefix == which)
    row = session.scalar(query)
    if row is None:
        raise UnknownToken(which=repr(which[:40]))
    if row.revoked_at is None:
        row.revoked_at = now
        audit.record(session, "api_token.revoke", member_id=None, actor=actor, at=now,
                     token=row.id, name=row.name)
    session.flush()
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def authenticate(session: Session, presented: str, now: dt.datetime) -> ApiToken | None:
    """The live token matching `presented`, marked as used at `now`; or None. The lookup is
    by SHA-256 (a database index never sees the secret) and the final comparison is
    constant-time. The mark is kept only if the caller's transaction commits."""
    wanted = digest(presented)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == wanted))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash,
                                                                            wanted):
        return None
    row.last_used_at = now
    return row


def allows(token: ApiToken, scope: str) -> bool:
    """Whether the token was given this scope."""
    return scope in token.scopes.split()
