"""Owner console accounts: who may sign in, their passwords, sessions and one-time links.

Passwords are hashed with Argon2id (argon2-cffi: memory-hard, salted, self-describing, so
its parameters can be raised later and old hashes still verify). Session and link tokens
are random; only their SHA-256 is stored, so a copy of the database signs nobody in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.errors import (
    AccountExists,
    InvalidEmail,
    LastOwner,
    LinkInvalid,
    LoginRefused,
    LoginThrottled,
    SetupClosed,
    SetupNotConfigured,
    UnknownAccount,
    WeakPassword,
    WrongSetupToken,
)
from bot.models import ConsoleAccount, ConsoleLink, ConsoleLoginFailure, ConsoleSession

ROLES = ("owner", "manager")
PASSWORD_MIN = 10
IDLE = dt.timedelta(minutes=30)  # a session unused this long is over
ABSOLUTE = dt.timedelta(hours=12)  # and any session this old
LINK_LIFETIME = dt.timedelta(hours=24)
THROTTLE_WINDOW = dt.timedelta(minutes=15)
FAILURES_PER_ACCOUNT, FAILURES_PER_ADDRESS = 5, 20  # within THROTTLE_WINDOW
TOUCH_EVERY = dt.timedelta(minutes=1)  # last_seen_at is written at most this often
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password anyone has")  # unknown accounts cost the same time


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_email(text: str) -> str:
    email = (text or "").strip().lower()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise InvalidEmail(email=(text or "").strip()[:80])
    return email


def check_password(password: str) -> str:
    if len(password or "") < PASSWORD_MIN or len(set(password)) < 2 or len(password) > 1000:
        raise WeakPassword(minimum=PASSWORD_MIN)
    return password


def actor(account: ConsoleAccount) -> str:
    return f"console:{account.email}"


# -- accounts ----------------------------------------------------------------------------------
def accounts(session: Session) -> list[ConsoleAccount]:
    """Accounts that may sign in, owners first."""
    return list(session.scalars(select(ConsoleAccount).where(ConsoleAccount.removed_at.is_(None))
                                .order_by(ConsoleAccount.role.desc(), ConsoleAccount.email)))


def find_account(session: Session, email: str) -> ConsoleAccount:
    account = session.scalar(select(ConsoleAccount).where(
        ConsoleAccount.email == normal_email(email), ConsoleAccount.removed_at.is_(None)))
    if account is None:
        raise UnknownAccount(email=email)
    return account


def has_owner(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(ConsoleAccount).where(
        ConsoleAccount.role == "owner", ConsoleAccount.removed_at.is_(None))))


def add_account(session: Session, email: str, role: str, now: dt.datetime, *, actor: str
                ) -> tuple[ConsoleAccount, str]:
    """A new account with no password yet, and the one-time link token to set it."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    email = normal_email(email)
    existing = session.scalar(select(ConsoleAccount).where(ConsoleAccount.email == email))
    if existing is not None and existing.removed_at is None:
        raise AccountExists(email=email)
    if existing is not None:  # invited again after removal: the same row, a fresh start
        existing.role, existing.removed_at, existing.password_hash = role, None, None
        existing.password_changed_at = now
        account = existing
    else:
        account = ConsoleAccount(email=email, role=role, created_at=now)
        session.add(account)
    session.flush()
    audit.record(session, "console.account_add", member_id=None, actor=actor, at=now,
                 email=email, role=role)
    return account, new_link(session, account, now)


def setup_first_owner(session: Session, configured: str, given: str, email: str,
                      password: str, now: dt.datetime) -> ConsoleAccount:
    """The first owner, made from the browser with the setup token from the hosting
    settings; once an owner exists the token opens nothing."""
    if not configured:
        raise SetupNotConfigured()
    if has_owner(session):
        raise SetupClosed()
    if not hmac.compare_digest(configured.encode(), (given or "").encode()):
        raise WrongSetupToken()
    check_password(password)
    account, _ = add_account(session, email, "owner", now, actor="console:setup")
    _set_password(session, account, password, now)
    return account


def demo_owner(session: Session, email: str, password: str, now: dt.datetime
               ) -> ConsoleAccount | None:
    """A ready-made owner for trying the console beside the simulator (never with a real
    LINE channel: the caller checks); None if an owner exists already."""
    if has_owner(session):
        return None
    account, _ = add_account(session, email, "owner", now, actor="console:demo")
    _set_password(session, account, check_password(password), now)
    return account


def remove_account(session: Session, email: str, now: dt.datetime, *, actor: str) -> None:
    """The account can no longer sign in; its sessions end at once."""
    account = find_account(session, email)
    if account.role == "owner" and session.scalar(
            select(func.count()).select_from(ConsoleAccount).where(
                ConsoleAccount.role == "owner", ConsoleAccount.removed_at.is_(None))) <= 1:
        raise LastOwner()
    account.removed_at = now
    end_sessions(session, account)
    audit.record(session, "console.account_remove", member_id=None, actor=actor, at=now,
                 email=account.email)


# -- passwords and links -------------------------------------------------------------------------
def new_link(session: Session, account: ConsoleAccount, now: dt.datetime) -> str:
    """A one-time token to set the account's password, valid LINK_LIFETIME."""
    token = secrets.token_urlsafe(32)
    session.add(ConsoleLink(token_hash=digest(token), account_id=account.id, created_at=now,
                            expires_at=now + LINK_LIFETIME))
    session.flush()
    return token


def reset_link(session: Session, email: str, now: dt.datetime, *, actor: str
               ) -> tuple[ConsoleAccount, str]:
    """A new one-time link for an account to set a new password."""
    account = find_account(session, email)
    audit.record(session, "console.password_reset", member_id=None, actor=actor, at=now,
                 email=account.email)
    return account, new_link(session, account, now)


def link_account(session: Session, token: str, now: dt.datetime) -> ConsoleAccount:
    """The account a set-password link is for, if the link is still good."""
    link = session.get(ConsoleLink, digest(token or ""))
    account = session.get(ConsoleAccount, link.account_id) if link else None
    if link is None or link.used_at or link.expires_at <= now or account is None \
            or account.removed_at is not None:
        raise LinkInvalid()
    return account


def set_password_by_link(session: Session, token: str, password: str, now: dt.datetime
                         ) -> ConsoleAccount:
    account = link_account(session, token, now)
    check_password(password)
    session.get(ConsoleLink, digest(token)).used_at = now
    _set_password(session, account, password, now)
    return account


def change_password(session: Session, account_id: int, old: str, new: str,
                    now: dt.datetime) -> None:
    account = session.get(ConsoleAccount, account_id)
    if account is None or not _matches(account.password_hash, old):
        raise LoginRefused()
    check_password(new)
    _set_password(session, account, new, now)


def _set_password(session: Session, account: ConsoleAccount, password: str,
                  now: dt.datetime) -> None:
    """A new password ends every session of the account (the caller signs in afresh)."""
    account.password_hash = _hasher.hash(password)
    account.password_changed_at = now
    end_sessions(session, account)
    audit.record(session, "console.password_set", member_id=None, actor=actor(account), at=now)


def _matches(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password or "") and stored is not None
    except (VerificationError, InvalidHashError):
        return False


# -- signing in ----------------------------------------------------------------------------------
def sign_in(session: Session, email: str, password: str, address: str, now: dt.datetime
            ) -> tuple[ConsoleAccount, str] | None:
    """Check the password (throttled per account and per address) and start a session:
    (the account, the new session's token for the cookie). A wrong password (or an unknown
    e-mail) returns None and is recorded: commit it, it is what the throttle counts."""
    email = (email or "").strip().lower()[:254]
    _throttle(session, email, address, now)
    account = session.scalar(select(ConsoleAccount).where(
        ConsoleAccount.email == email, ConsoleAccount.removed_at.is_(None)))
    if not _matches(account.password_hash if account else None, password):
        _failed(session, email, address, now)
        return None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    return account, start_session(session, account, address, now)


def _throttle(session: Session, email: str, address: str, now: dt.datetime) -> None:
    since = now - THROTTLE_WINDOW
    by_account = session.scalar(select(func.count()).select_from(ConsoleLoginFailure).where(
        ConsoleLoginFailure.email == email, ConsoleLoginFailure.at > since))
    by_address = session.scalar(select(func.count()).select_from(ConsoleLoginFailure).where(
        ConsoleLoginFailure.address == address, ConsoleLoginFailure.at > since))
    if by_account >= FAILURES_PER_ACCOUNT or by_address >= FAILURES_PER_ADDRESS:
        raise LoginThrottled(minutes=int(THROTTLE_WINDOW.total_seconds() // 60))


def _failed(session: Session, email: str, address: str, now: dt.datetime) -> None:
    session.add(ConsoleLoginFailure(email=email, address=address[:64], at=now))
    session.flush()


def password_again(session: Session, account_id: int, password: str, address: str,
                   now: dt.datetime) -> bool:
    """The signed-in account's password typed again before a sensitive step (an export).
    Throttled as sign-ins are (LoginThrottled), and a wrong password counts as a failed
    sign-in: False, recorded, so commit it."""
    account = session.get(ConsoleAccount, account_id)
    if account is None or account.removed_at is not None:
        return False
    _throttle(session, account.email, address, now)
    if _matches(account.password_hash, password):
        return True
    _failed(session, account.email, address, now)
    return False


def start_session(session: Session, account: ConsoleAccount, address: str,
                  now: dt.datetime) -> str:
    """A new session (a new token at every sign-in): returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_hash=digest(token), account_id=account.id,
                               created_at=now, last_seen_at=now, address=address[:64]))
    session.execute(delete(ConsoleSession).where(  # old ones of anybody, tidied as we go
        ConsoleSession.last_seen_at < now - ABSOLUTE))
    audit.record(session, "console.sign_in", member_id=None, actor=actor(account), at=now,
                 address=address[:64])
    session.flush()
    return token


@dataclass(frozen=True)
class SignedIn:
    account: ConsoleAccount
    started: dt.datetime


def signed_in(session: Session, token: str | None, now: dt.datetime) -> SignedIn | None:
    """Whose session this token is, if it is still good (not idle 30 minutes, under 12 hours
    old, the account not removed and its password not changed since)."""
    if not token:
        return None
    found = session.get(ConsoleSession, digest(token))
    if found is None:
        return None
    account = session.get(ConsoleAccount, found.account_id)
    if (account is None or account.removed_at is not None
            or now - found.last_seen_at > IDLE or now - found.created_at > ABSOLUTE
            or (account.password_changed_at and account.password_changed_at > found.created_at)):
        session.delete(found)
        session.flush()
        return None
    if now - found.last_seen_at > TOUCH_EVERY:
        found.last_seen_at = now
    return SignedIn(account, found.created_at)


def sign_out(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == digest(token)))


def end_sessions(session: Session, account: ConsoleAccount) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.account_id == account.id))
