"""The console's move of a membership to a customer's new LINE account (owners and
managers, as staff link a POS record with 綁定): bot.loyalty.moving does the move."""

from __future__ import annotations

from typing import Any

from flask import g, request
from sqlalchemy.orm import Session

from bot.console.views import bp, correct, runtime, signed_in, who
from bot.loyalty.codes import format_code
from bot.loyalty.moving import move_to_new_account
from bot.models import Member


@bp.post("/members/<code>/move")
@signed_in()
def member_move(code: str) -> Any:
    """Move this membership to the LINE account whose member card shows the code typed."""
    def move(db: Session, member: Member) -> str:
        result = move_to_new_account(db, runtime().program, member.id,
                                     request.form.get("new_code", ""), g.now,
                                     reason=request.form.get("reason", ""), actor=who())
        return g.t["moved"].format(code=format_code(result.closed.member_code),
                                   points=f"{result.merged.points:,}") + (
            g.t["move_welcome_voided"] if result.welcome_voided else "")
    return correct(code, move)
