"""One row of a members file: its values, and every reason it cannot be imported."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Protocol

from bot.loyalty.codes import normalize_code
from bot.loyalty.member_csv import IMPORT_COLUMNS, from_spreadsheet_safe
from bot.loyalty.phones import normalize_phone

MAX_OPENING_POINTS = 10_000_000

_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
_INTEGER = re.compile(r"\d+|\d{1,3}(,\d{3})+")


@dataclass(frozen=True)
class Row:
    line: int
    external_id: str
    phone: str | None
    name: str
    birthday: dt.date | None
    points: int
    member_code: str | None  # rows of an exported file carry one


class Seen(Protocol):
    def first(self, kind: str, key: str, line: int) -> int:
        """The line the external id ("id") or phone ("phone") `key` was first on."""


class FirstLines:
    """The line each external id and phone was first on, for the duplicate report.

    With `watch` (CsvRows.repeats) only the keys in it are remembered: any other is on one
    line only. Without it every key is, about 210 bytes per row for the two."""

    def __init__(self, watch: Mapping[str, AbstractSet[str]] | None) -> None:
        self._watch = watch
        self._lines: dict[str, dict[str, int]] = {"id": {}, "phone": {}}

    def first(self, kind: str, key: str, line: int) -> int:
        if self._watch is not None and key not in self._watch[kind]:
            return line
        return self._lines[kind].setdefault(key, line)


def parse_row(line: int, raw: Mapping[str | None, object], today: dt.date,
              seen: Seen) -> tuple[Row | None, list[str]]:
    """The row's values, or None with every reason it cannot be imported."""
    values, problem = row_values(raw)
    if values is None:
        return None, [problem]
    phone, reasons = identify(line, values, seen)
    name = values["name"]
    if len(name) > 200:
        reasons.append("name is longer than 200 characters")
    birthday, problem = _parse_birthday(values["birthday"], today)
    points, problem_points = _parse_points(values["points"])
    reasons += [p for p in (problem, problem_points) if p]
    if reasons:
        return None, reasons
    return Row(line, values["external_id"], phone, name, birthday, points,
               normalize_code(values["member_code"])), []


def row_values(raw: Mapping[str | None, object]) -> tuple[dict[str, str] | None, str]:
    """The row's values (trimmed, spreadsheet escapes undone, the external id in NFKC), or
    None and why the row cannot be read at all."""
    extra = raw.get(None)
    if extra or any(value is None for key, value in raw.items() if key is not None):
        found = sum(1 for k, v in raw.items() if k is not None and v is not None)
        found += len(extra) if isinstance(extra, list | tuple) else 0
        return None, f"{found} fields, but the header has {len(raw) - (None in raw)}"
    values = {key: from_spreadsheet_safe(str(raw.get(key) or "").strip())
              for key in (*IMPORT_COLUMNS, "member_code")}
    if any("\x00" in value for value in values.values()):
        return None, "contains a NUL character"
    values["external_id"] = unicodedata.normalize("NFKC", values["external_id"])
    return values, ""


def identify(line: int, values: dict[str, str], seen: Seen) -> tuple[str | None, list[str]]:
    """The row's phone (None without one), and what is wrong with its external id and phone.

    An external id or phone seen on an earlier line (even one with other problems) makes
    this row a duplicate: the file does not say which of the two is right."""
    reasons = []
    external_id = values["external_id"]
    if not external_id:
        if not normalize_code(values["member_code"]):  # else known by it (checked when stored)
            reasons.append("missing external_id")
    elif len(external_id) > 128:
        reasons.append("external_id is longer than 128 characters")
    elif (first := seen.first("id", external_id, line)) != line:
        reasons.append(f"duplicate external_id {external_id!r} (first on line {first})")
    phone = normalize_phone(values["phone"]) if values["phone"] else None
    if values["phone"] and phone is None:
        reasons.append(f"bad phone {values['phone']!r}: not a Taiwan mobile number (09xxxxxxxx)")
    elif phone and (first := seen.first("phone", phone, line)) != line:
        reasons.append(f"phone {phone} is also on line {first}")
    return phone, reasons


def _parse_birthday(text: str, today: dt.date) -> tuple[dt.date | None, str | None]:
    folded = unicodedata.normalize("NFKC", text).strip()
    if not folded:
        return None, None
    match = _DATE.fullmatch(folded)
    try:
        day = dt.date(*map(int, match.groups())) if match else None
    except ValueError:
        day = None
    if day is None:
        return None, f"bad birthday {text!r}: not a date as YYYY-MM-DD or YYYY/MM/DD"
    if not dt.date(1900, 1, 1) <= day <= today:
        return None, f"bad birthday {text!r}: not between 1900-01-01 and today"
    return day, None


def _parse_points(text: str) -> tuple[int, str | None]:
    folded = unicodedata.normalize("NFKC", text).strip()
    if not folded:
        return 0, None
    if folded.startswith("-") and _INTEGER.fullmatch(folded[1:]) and int(
            folded[1:].replace(",", "")):
        return 0, f"bad points {text!r}: opening points must not be negative"
    if not _INTEGER.fullmatch(folded.removeprefix("+")):
        return 0, f"bad points {text!r}: not a whole number"
    points = int(folded.removeprefix("+").replace(",", ""))
    if points > MAX_OPENING_POINTS:
        return 0, f"bad points {text!r}: more than {MAX_OPENING_POINTS:,}"
    return points, None
