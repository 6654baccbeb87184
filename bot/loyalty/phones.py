"""Taiwan mobile numbers as people write them, and the member who has one."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.loyalty.errors import UnknownMember
from bot.models import Member

_PHONE_NOISE = re.compile(r"[\s\-‐‑‒–—―ー.()]")


def normalize_phone(text: str | None) -> str | None:
    """A Taiwan mobile number as stored (0912345678), or None if it is not one.

    Accepts spaces, dashes, dots and brackets anywhere, full-width digits, +886 / 00886 / 886
    prefixes (with or without the trunk 0), and the 9 digits a spreadsheet leaves when it
    drops the leading zero (912345678).
    """
    digits = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", text or ""))
    for prefix in ("+886", "00886", "886"):
        if digits.startswith(prefix) and len(digits) - len(prefix) in (9, 10):
            digits = "0" + digits[len(prefix):].removeprefix("0")
            break
    if len(digits) == 9 and digits.startswith("9"):
        digits = "0" + digits
    return digits if len(digits) == 10 and digits.startswith("09") and digits.isascii() \
        and digits.isdigit() else None


def find_by_phone(session: Session, text: str) -> Member:
    """The member with this phone, written any common way (the POS import's rules)."""
    phone = normalize_phone(text)
    found = phone and session.scalar(select(Member).where(Member.phone == phone))
    if not found:
        raise UnknownMember()
    return found
