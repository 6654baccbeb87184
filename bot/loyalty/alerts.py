"""What the owner should know at once: the clock stopped, the month's LINE allowance is
nearly used, webhooks are failing, a clock job failed. The console shows them on every page;
an owner who linked their LINE chat gets at most one message a day listing them (sent by the
clock's `alerts` job, so "the clock stopped" can only ever be on the console's banner)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import new_code, normalize_code
from bot.loyalty.job_runs import seconds_since_clock_ran
from bot.models import ConsoleAccount, JobRun, Member, WebhookFailure
from bot.outbox.budget import month_budget
from bot.program import Program

CLOCK_LATE = 15 * 60  # seconds without any completed job: the clock has stopped
WEBHOOK_WINDOW = dt.timedelta(hours=1)  # failures this recent mean webhooks are failing
LINK_LIFETIME = dt.timedelta(hours=24)  # a link code for the owner's LINE chat
REASON_MAX = 200


@dataclass(frozen=True)
class Alert:
    kind: str  # clock_never, clock_stopped, allowance, webhooks, job_failed
    values: dict[str, str | int] = field(default_factory=dict)


def current(session: Session, program: Program, now: dt.datetime) -> list[Alert]:
    """Every alert that holds as of `now`, the clock's first."""
    return [*clock_alerts(session, now), *allowance_alerts(session, program, now),
            *webhook_alerts(session, now), *job_alerts(session)]


def clock_alerts(session: Session, now: dt.datetime) -> list[Alert]:
    """The clock never ran, or its last completed job is CLOCK_LATE or more ago (the
    figure /healthz reports as clock_last_ran_seconds_ago)."""
    ago = seconds_since_clock_ran(session, now)
    if ago is None:
        return [Alert("clock_never")]
    return [Alert("clock_stopped", {"minutes": ago // 60})] if ago >= CLOCK_LATE else []


def allowance_alerts(session: Session, program: Program, now: dt.datetime) -> list[Alert]:
    budget = month_budget(session, program, now)
    if not budget.nearly_used:
        return []
    return [Alert("allowance", {"percent": budget.used_percent or 0, "sent": budget.sent,
                                "allowance": budget.allowance or 0})]


def webhook_alerts(session: Session, now: dt.datetime) -> list[Alert]:
    count, last = session.execute(
        select(func.count(), func.max(WebhookFailure.at))
        .where(WebhookFailure.at > now - WEBHOOK_WINDOW)).one()
    if not count:
        return []
    reason = session.scalar(select(WebhookFailure.reason).where(WebhookFailure.at == last)
                            .limit(1)) or ""
    return [Alert("webhooks", {"count": count, "reason": reason})]


def job_alerts(session: Session) -> list[Alert]:
    """Jobs whose last run failed and that have not completed since."""
    failed = session.scalars(select(JobRun).where(
        JobRun.last_failed_at.is_not(None),
        or_(JobRun.last_completed_at.is_(None),
            JobRun.last_failed_at > JobRun.last_completed_at)).order_by(JobRun.name))
    return [Alert("job_failed", {"job": run.name, "error": (run.last_error or "")[:200]})
            for run in failed]


def record_webhook_failure(session: Session, now: dt.datetime, reason: str) -> None:
    session.add(WebhookFailure(at=now, reason=reason[:REASON_MAX]))
    session.flush()


# -- the owner's LINE chat -----------------------------------------------------------------------
def link_code(session: Session, account_id: int, now: dt.datetime, *, actor: str) -> str:
    """A new one-time code (24 hours) the account's owner sends from their own LINE to have
    the alerts there; an earlier code of the account stops working."""
    account = session.get(ConsoleAccount, account_id)
    code = new_code()
    account.line_link_code, account.line_link_expires_at = code, now + LINK_LIFETIME
    audit.record(session, "alerts.link_code", member_id=None, actor=actor, at=now)
    session.flush()
    return code


def link_chat(session: Session, text: str, member: Member, now: dt.datetime
              ) -> ConsoleAccount | None:
    """The sender (`member`) sent a link code: their chat gets the account's alerts; None if
    the code is unknown, used or expired."""
    code = normalize_code(text) or ""
    account = session.scalar(select(ConsoleAccount).where(
        ConsoleAccount.line_link_code == code, ConsoleAccount.line_link_expires_at > now,
        ConsoleAccount.removed_at.is_(None)).with_for_update())
    if account is None:
        return None
    account.line_member_id = member.id
    account.line_link_code = account.line_link_expires_at = None
    audit.record(session, "alerts.linked", member_id=member.id, actor=member.line_user_id or "",
                 at=now, account=account.email)
    return account


def unlink_chat(session: Session, account_id: int, now: dt.datetime, *, actor: str) -> None:
    session.execute(update(ConsoleAccount).where(ConsoleAccount.id == account_id)
                    .values(line_member_id=None, line_link_code=None,
                            line_link_expires_at=None))
    audit.record(session, "alerts.unlinked", member_id=None, actor=actor, at=now)


def linked_member(session: Session, account_id: int) -> Member | None:
    account = session.get(ConsoleAccount, account_id)
    return session.get(Member, account.line_member_id) if account.line_member_id else None


def linked_chats(session: Session) -> list[tuple[ConsoleAccount, Member]]:
    """Owners' accounts whose LINE chat is linked, with that chat's member."""
    return [(account, member) for account, member in session.execute(
        select(ConsoleAccount, Member).join(Member, Member.id == ConsoleAccount.line_member_id)
        .where(ConsoleAccount.role == "owner", ConsoleAccount.removed_at.is_(None),
               Member.status == "active", Member.line_user_id.is_not(None))
        .order_by(ConsoleAccount.id))]
