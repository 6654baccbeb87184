"""Flex templates and the strings table: JSON designed in LINE's Flex Message Simulator,
filled by walking the parsed structure, never by pasting text into raw JSON.

A template may mark an object (the markers are removed from the output):

  "$each": "name"   repeat the object once per item of the list `name` (only inside an array);
                    each copy sees the item's fields on top of the outer fields
  "$if": "name"     keep the object only when the field `name` is truthy
  "$unless": "name" keep the object only when the field `name` is falsy

In string values `{{name}}` becomes a field's value and `{{@key}}` the strings-table entry
`key` formatted (str.format) with the fields. A replacement is never scanned again, so a
display name holding quotes, emoji or `{{x}}` stays literal text and cannot break a message.
"""

from __future__ import annotations

import json
import re
import string
from collections import ChainMap
from collections.abc import Callable, Mapping
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "flex_templates"
LANGUAGES = ("zh-TW", "en")
MARKERS = ("$each", "$if", "$unless")
ELLIPSIS = "…"
_PLACEHOLDER = re.compile(r"\{\{\s*(@?[A-Za-z_][\w.]*)\s*\}\}")

Fields = Mapping[str, Any]


class TemplateError(Exception):
    """A template or strings-table mistake: a missing field, key or list."""


def language(lang: str) -> str:
    """English for any `en*` language tag, otherwise zh-TW."""
    return "en" if (lang or "").lower().startswith("en") else "zh-TW"


@cache
def template(name: str) -> Any:
    """The parsed template `flex_templates/<name>.json` (shared: never mutate it)."""
    with (TEMPLATE_DIR / f"{name}.json").open(encoding="utf-8") as handle:
        return json.load(handle)


@cache
def strings_table(lang: str) -> dict[str, str]:
    with (TEMPLATE_DIR / f"strings.{language(lang)}.json").open(encoding="utf-8") as handle:
        return json.load(handle)


def render(name: str, fields: Fields, strings: Mapping[str, str]) -> Any:
    """A filled copy of template `name`."""
    return fill(template(name), fields, strings)


def fill(node: Any, fields: Fields, strings: Mapping[str, str]) -> Any:
    """A filled copy of a parsed template `node`; the node itself is left untouched."""
    return _Filler(strings).value(node, ChainMap(dict(fields)))


class _Filler:
    def __init__(self, strings: Mapping[str, str]):
        self.strings = strings

    def value(self, node: Any, scope: ChainMap) -> Any:
        if isinstance(node, str):
            if "{{" not in node:  # most strings are plain: no pattern to run
                return node
            return _PLACEHOLDER.sub(lambda match: self.field(match.group(1), scope), node)
        if isinstance(node, list):
            return self.array(node, scope)
        if isinstance(node, dict):
            if "$each" in node:
                raise TemplateError(f"$each {node['$each']!r} outside an array")
            return self.object(node, scope)
        return node

    def array(self, items: list, scope: ChainMap) -> list:
        result = []
        for item in items:
            if isinstance(item, dict) and "$each" in item:
                for entry in self.lookup(item["$each"], scope, list):
                    if not isinstance(entry, Mapping):
                        raise TemplateError(f"items of {item['$each']!r} must be objects")
                    inner = scope.new_child(dict(entry))
                    if self.kept(item, inner):
                        result.append(self.object(item, inner))
            elif not isinstance(item, dict) or self.kept(item, scope):
                result.append(self.value(item, scope))
        return result

    def object(self, node: dict, scope: ChainMap) -> dict:
        return {key: self.value(child, scope) for key, child in node.items()
                if key not in MARKERS and (not isinstance(child, dict) or self.kept(child, scope))}

    def kept(self, node: dict, scope: ChainMap) -> bool:
        if "$if" in node and not self.lookup(node["$if"], scope, object):
            return False
        return not ("$unless" in node and self.lookup(node["$unless"], scope, object))

    def lookup(self, name: str, scope: ChainMap, kind: type) -> Any:
        if name not in scope:
            raise TemplateError(f"no field {name!r}")
        found = scope[name]
        if not isinstance(found, kind):
            raise TemplateError(f"field {name!r} must be a {kind.__name__}")
        return found

    def field(self, name: str, scope: ChainMap) -> str:
        if name.startswith("@"):
            return format_string(self.strings, name[1:], scope)
        found = self.lookup(name, scope, object)
        if isinstance(found, bool) or not isinstance(found, str | int):
            raise TemplateError(f"field {name!r} is not text: {found!r}")
        return str(found)


class _Plurals(string.Formatter):
    """`{n:n:coupon/coupons}` is "1 coupon", "2 coupons" (English counts; zh-TW needs none)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec.startswith("n:"):
            one, _, many = format_spec[2:].partition("/")
            return f"{value} {one if str(value) == '1' else many or one}"
        return super().format_field(value, format_spec)


_PLURALS = _Plurals()


def format_string(strings: Mapping[str, str], key: str, fields: Fields) -> str:
    """The strings-table entry `key`, its `{name}` fields filled from `fields`."""
    if key not in strings:
        raise TemplateError(f"no string {key!r}")
    text = strings[key]
    try:
        if type(text) is str:
            return _formatter(text)(fields)
        return _PLURALS.vformat(text, (), fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(f"string {key!r} cannot be filled: {exc!r}") from None


@lru_cache(maxsize=2048)
def _formatter(text: str) -> Callable[[Fields], str]:
    """A function doing what `_PLURALS.vformat(text, (), fields)` does, parsed once.

    string.Formatter parses the entry and formats it field by field in Python at every call.
    An entry whose fields are all plain names (no conversion, index, attribute or nested
    spec) is formatted by str.format_map when no field counts (the same lookups and format()
    calls, in C), else by an expression calling `_PLURALS.format_field` field by field;
    anything else keeps vformat itself."""
    slow = partial(_PLURALS.vformat, text, ())
    try:
        parsed = list(_PLURALS.parse(text))
    except ValueError:  # vformat raises it, after the fields before the mistake
        return slow
    parts, counts = [], False
    for literal, name, spec, conversion in parsed:
        if literal:
            parts.append(repr(literal))
        if name is None:
            continue
        if not name.isidentifier() or conversion is not None or "{" in spec or "}" in spec:
            return slow
        counts = counts or spec.startswith("n:")
        parts.append(f"_field(fields[{name!r}], {spec!r})")
    if not counts:
        return text.format_map
    source = f"lambda fields: ''.join(({', '.join(parts)},))"
    # every piece of the entry is in the source as a repr(): nothing of it is ever code
    return eval(compile(source, "<strings entry>", "eval"),
                {"__builtins__": {}, "_field": _PLURALS.format_field})


class Strings:
    """One language's strings (numbers, money and dates are bot.line.formatting's)."""

    def __init__(self, lang: str):
        self.lang = language(lang)
        self.table = strings_table(self.lang)

    @property
    def english(self) -> bool:
        return self.lang == "en"

    def __call__(self, key: str, **fields: Any) -> str:
        return format_string(self.table, key, fields)

    def count(self, key: str, n: int, **fields: Any) -> str:
        """Entry `key`, or `key.one` when n is 1 (English singulars)."""
        return self(f"{key}.one" if n == 1 else key, n=self.number(n), **fields)

    def number(self, n: int) -> str:
        return f"{n:,}"


def units(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units (most emoji count 2)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 units, marked with an ellipsis when cut."""
    if units(text) <= limit:
        return text
    kept, used = [], units(ELLIPSIS)
    for char in text:
        used += units(char)
        if used > limit:
            break
        kept.append(char)
    return "".join(kept).rstrip() + ELLIPSIS
