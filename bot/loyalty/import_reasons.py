"""Why a row of a members file was not imported, in the reader's language.

The reasons are stored as import_rows and member_import write them (English, as the
`members import` command prints them); `in_language` says each part of one in zh-TW. A
part it does not know is shown as it is."""

from __future__ import annotations

import re

_VALUE = r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""  # a repr()'d value, quotes and all
_ZH = [(re.compile(pattern), words) for pattern, words in (
    (r"(\d+) fields, but the header has (\d+)", r"這一列有 \1 欄，標題列卻有 \2 欄"),
    (r"contains a NUL character", "含有 NUL 字元"),
    (r"missing external_id", "缺少 external_id"),
    (r"external_id is longer than 128 characters", "external_id 超過 128 個字元"),
    (rf"duplicate external_id {_VALUE} \(first on line (\d+)\)",
     r"external_id \1 重複（第一次出現在第 \2 行）"),
    (rf"bad phone {_VALUE}: not a Taiwan mobile number \(09xxxxxxxx\)",
     r"手機 \1 不是台灣的手機號碼（09xxxxxxxx）"),
    (r"phone (\d+) is also on line (\d+)", r"手機 \1 也在第 \2 行"),
    (r"phone (\d+) already belongs to member (\w+)", r"手機 \1 已經是會員 \2 的"),
    (r"name is longer than 200 characters", "姓名超過 200 個字"),
    (rf"bad birthday {_VALUE}: not a date as YYYY-MM-DD or YYYY/MM/DD",
     r"生日 \1 不是 YYYY-MM-DD 或 YYYY/MM/DD 的日期"),
    (rf"bad birthday {_VALUE}: not between 1900-01-01 and today",
     r"生日 \1 不在 1900-01-01 到今天之間"),
    (rf"bad points {_VALUE}: opening points must not be negative",
     r"點數 \1 不能是負數"),
    (rf"bad points {_VALUE}: not a whole number", r"點數 \1 不是整數"),
    (rf"bad points {_VALUE}: more than ([\d,]+)", r"點數 \1 超過 \2"),
)]


def in_language(reason: str, lang: str) -> str:
    """The reason in `lang` (zh-TW or English)."""
    if lang.lower().startswith("en"):
        return reason
    for pattern, words in _ZH:
        reason = pattern.sub(words, reason)
    return reason.replace("; ", "；")
