"""What may be written to a log about a person: a reference, never the LINE id itself."""

from __future__ import annotations

import hashlib


def ref(line_user_id: str | None) -> str:
    """A short stable stand-in for a LINE user id in log lines: the same user gives the same
    reference, so one customer's failures can be followed, but the id cannot be read back."""
    if not line_user_id:
        return "user:-"
    return "user:" + hashlib.sha256(line_user_id.encode()).hexdigest()[:12]
