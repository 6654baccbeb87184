"""The members CSV format, shared by the import and the export: its columns, and the
escaping that keeps a spreadsheet from running a value as a formula."""

from __future__ import annotations

IMPORT_COLUMNS = ("phone", "name", "birthday", "points", "external_id")
EXPORT_COLUMNS = ("member_code", "external_id", "line_linked", "phone", "name", "birthday",
                  "tier", "points_balance", "status", "joined_at")

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula


def spreadsheet_safe(value: str) -> str:
    """The value with a leading apostrophe if a spreadsheet would run it as a formula.

    Values starting with = + - @, a tab or a carriage return are escaped, and so are those
    that only apostrophes separate from one ("'=1"), so that from_spreadsheet_safe gives
    back exactly the value this was given, whatever it was."""
    return "'" + value if value.lstrip("'").startswith(_FORMULA_STARTS) else value


def from_spreadsheet_safe(value: str) -> str:
    """Undo spreadsheet_safe (a value it did not escape comes back unchanged)."""
    return value[1:] if value.startswith("'") and value.lstrip("'").startswith(
        _FORMULA_STARTS) else value
