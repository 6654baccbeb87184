"""This month's push budget as the owner reads it: the program's allowance, what was billed
so far, the reserve kept for receipts and expiry warnings, and LINE's own count of what is
left. One place for these figures: `campaign send --dry-run`, the console's campaigns page
and the owner's alerts all read them here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.outbox.sender import month_sent
from bot.program import Program

NEARLY_USED = 90  # % of the month's allowance billed: the owner is told


@dataclass(frozen=True)
class MonthBudget:
    allowance: int | None  # billed messages a month (plan or budget); None: none set
    sent: int  # billed so far this month, in the shop's timezone
    reserve: int  # the last messages of the allowance, kept for receipts and expiry warnings
    line_asked: bool  # a LINE channel is configured, so LINE was asked
    line_left: int | None  # what LINE says is left; None when unlimited or unknown

    @property
    def left(self) -> int | None:
        """Messages the allowance has left this month (None without an allowance)."""
        return None if self.allowance is None else self.allowance - self.sent

    @property
    def used_percent(self) -> int | None:
        """Whole % of the allowance billed so far (None without an allowance)."""
        if not self.allowance:
            return None
        return self.sent * 100 // self.allowance

    @property
    def nearly_used(self) -> bool:
        return (self.used_percent or 0) >= NEARLY_USED

    def parts(self, pushes: int) -> list[tuple[str, dict[str, int]]]:
        """What `pushes` mean against these figures, as (what, figures) for each reader's
        words: no_pushes, allowance_left (left, reserve), line_left (left), line_unknown,
        no_budget."""
        if not pushes:
            return [("no_pushes", {})]
        parts: list[tuple[str, dict[str, int]]] = []
        if self.left is not None:
            parts.append(("allowance_left", {"left": self.left, "reserve": self.reserve}))
        if self.line_asked:
            parts.append(("line_unknown", {}) if self.line_left is None
                         else ("line_left", {"left": self.line_left}))
        return parts or [("no_budget", {})]

    def describe(self, pushes: int) -> str:
        """The parts in the CLI's words."""
        return "; ".join(CLI_WORDS[what].format(**{k: f"{v:,}" for k, v in values.items()})
                         for what, values in self.parts(pushes))


CLI_WORDS = {
    "no_pushes": "no pushes",
    "allowance_left": "{left} left in this month's allowance, the last {reserve} kept for "
                      "receipts and expiry warnings",
    "line_left": "{left} left in LINE's free quota",
    "line_unknown": "LINE quota unlimited or unknown",
    "no_budget": "no budget set",
}


def month_budget(session: Session, program: Program, now: dt.datetime,
                 line_left: Callable[[], int | None] | None = None) -> MonthBudget:
    """This month's figures as of `now`; `line_left` asks LINE (given only with a channel)."""
    return MonthBudget(allowance=program.allowance,
                       sent=month_sent(session, program, now),
                       reserve=program.reserve, line_asked=line_left is not None,
                       line_left=line_left() if line_left is not None else None)
