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

`fill` walks the template at every call; `compile_template` turns a template into a Python
function once, with the same output, the same laziness and the same first error, for
templates that are rendered again and again (every message the bot sends).
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
Renderer = Callable[[Fields, Mapping[str, str]], Any]


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


_RENDERERS: dict[str, tuple[Any, Renderer]] = {}  # name -> (the template read, its renderer)


def render(name: str, fields: Fields, strings: Mapping[str, str]) -> Any:
    """A filled copy of template `name`."""
    source = template(name)
    kept = _RENDERERS.get(name)
    if kept is None or kept[0] is not source:  # compiled once per template read
        kept = _RENDERERS[name] = (source, compile_template(source))
    return kept[1](fields, strings)


def fill(node: Any, fields: Fields, strings: Mapping[str, str]) -> Any:
    """A filled copy of a parsed template `node`; the node itself is left untouched.

    Walks the node at every call: for a one-off node, and the reference that
    compile_template's functions must match."""
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


def compile_template(node: Any) -> Renderer:
    """A function `(fields, strings)` returning what `fill(node, fields, strings)` returns,
    or raising what it raises, without walking `node` again.

    The function is Python source generated once: dict and list literals for the output (so
    every call builds fresh objects, shared with nothing), placeholders resolved in the same
    order as `_Filler` resolves them, and `$if`/`$unless`/`$each` as if/for statements, so an
    object dropped by `$if` looks nothing up. Template values enter the source only as
    repr()s of str, int, bool and None; any other value is passed in as a constant. `node`
    must not change afterwards. A template too deep for Python's compiler is walked."""
    try:
        source, constants = _Compiler().function(node)
        namespace = {"_K": constants, "_M": _MISSING, "_E": TemplateError, "_Mapping": Mapping,
                     "_text": _text, "_string": format_string}
        exec(compile(source, "<flex template>", "exec"), namespace)
    except (SyntaxError, RecursionError, MemoryError):  # nested deeper than Python compiles
        return partial(fill, node)
    return namespace["render"]


_MISSING = object()


def _text(scope: dict, name: str) -> str:
    """`_Filler.field` for a `{{name}}`, on a plain dict scope."""
    found = scope.get(name, _MISSING)
    if type(found) is str:
        return found
    if found is _MISSING:
        raise TemplateError(f"no field {name!r}")
    if isinstance(found, bool) or not isinstance(found, str | int):
        raise TemplateError(f"field {name!r} is not text: {found!r}")
    return str(found)


class _Compiler:
    """The source of one template's function, following `_Filler` step by step.

    `value` returns an expression and may first emit statements; whatever must happen
    before those statements (earlier siblings) is emitted before `value` is called, so
    lookups happen in `_Filler`'s order. A scope is a plain dict: the fields, or the fields
    with one `$each` item's fields on top (what the walker's ChainMap finds)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 1
        self.constants: list[Any] = []
        self.names = 0

    def function(self, node: Any) -> tuple[str, tuple]:
        self.emit("f = fields if type(fields) is dict else dict(fields)")
        result = self.value(node, "f")
        self.emit(f"return {result}")
        return "\n".join(["def render(fields, S):", *self.lines]), tuple(self.constants)

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def literal(self, value: Any) -> str:
        if value is None or type(value) in (str, bool):
            return repr(value)
        if type(value) is int and abs(value) < 10**100:
            return repr(value)
        self.constants.append(value)  # immutable in JSON; the walker shares it as well
        return f"_K[{len(self.constants) - 1}]"

    def fail(self, message: str) -> None:
        self.emit(f"raise _E({self.literal(message)})")

    # -- what needs no statements --------------------------------------------------------
    def plain(self, node: Any) -> bool:
        """`value(node)` is a single expression."""
        if isinstance(node, list):
            return all(self.plain_item(item) for item in node)
        if isinstance(node, dict):
            return "$each" not in node and self.plain_object(node)
        return True

    def plain_item(self, item: Any) -> bool:
        """An array item or an object's child is kept and filled without statements."""
        if isinstance(item, dict):
            return not any(marker in item for marker in MARKERS) and self.plain_object(item)
        return self.plain(item)

    def plain_object(self, node: dict) -> bool:
        return all(self.plain_item(child) for key, child in node.items() if key not in MARKERS)

    # -- _Filler's steps -----------------------------------------------------------------
    def value(self, node: Any, scope: str) -> str:
        if isinstance(node, str):
            return self.text(node, scope)
        if isinstance(node, list):
            return self.array(node, scope)
        if isinstance(node, dict):
            if "$each" in node:
                self.fail(f"$each {node['$each']!r} outside an array")
                return "None"
            return self.object(node, scope)
        return self.literal(node)

    def text(self, node: str, scope: str) -> str:
        if "{{" not in node:
            return self.literal(node)
        parts, start = [], 0
        for match in _PLACEHOLDER.finditer(node):
            if match.start() > start:
                parts.append(repr(str(node[start:match.start()])))
            name = match.group(1)
            if name.startswith("@"):
                parts.append(f"_string(S, {name[1:]!r}, {scope})")
            else:
                parts.append(f"_text({scope}, {name!r})")
            start = match.end()
        if not start:  # braces but no placeholder
            return self.literal(node)
        if start < len(node):
            parts.append(repr(str(node[start:])))
        return parts[0] if len(parts) == 1 else f"({' + '.join(parts)})"

    def object(self, node: dict, scope: str) -> str:
        if self.plain_object(node):
            return "{" + ", ".join(f"{self.literal(key)}: {self.value(child, scope)}"
                                   for key, child in node.items() if key not in MARKERS) + "}"
        result, pending, started = self.fresh("d"), [], False
        for key, child in node.items():
            if key in MARKERS:
                continue
            if self.plain_item(child):
                pending.append((self.literal(key), self.value(child, scope)))
                continue
            started = self.flush_object(result, pending, started)
            opened = self.kept(child, scope) if isinstance(child, dict) else 0
            self.emit(f"{result}[{self.literal(key)}] = {self.value(child, scope)}")
            self.depth -= opened
        self.flush_object(result, pending, started)
        return result

    def flush_object(self, result: str, pending: list, started: bool) -> bool:
        if not started:
            self.emit(f"{result} = {{{', '.join(f'{k}: {v}' for k, v in pending)}}}")
        for key, value in pending if started else ():
            self.emit(f"{result}[{key}] = {value}")
        pending.clear()
        return True

    def array(self, items: list, scope: str) -> str:
        if self.plain(items):
            return f"[{', '.join(self.value(item, scope) for item in items)}]"
        result, pending, started = self.fresh("a"), [], False
        for item in items:
            if self.plain_item(item):
                pending.append(self.value(item, scope))
                continue
            started = self.flush_array(result, pending, started)
            if isinstance(item, dict) and "$each" in item:
                self.each(item, scope, result)
                continue
            opened = self.kept(item, scope) if isinstance(item, dict) else 0
            self.emit(f"{result}.append({self.value(item, scope)})")
            self.depth -= opened
        self.flush_array(result, pending, started)
        return result

    def flush_array(self, result: str, pending: list, started: bool) -> bool:
        if not started:
            self.emit(f"{result} = [{', '.join(pending)}]")
        elif pending:
            self.emit(f"{result} += [{', '.join(pending)}]")
        pending.clear()
        return True

    def each(self, item: dict, scope: str, result: str) -> None:
        name = item["$each"]
        found, entry, inner = self.fresh("r"), self.fresh("e"), self.fresh("g")
        self.emit(f"{found} = {scope}.get({self.literal(name)}, _M)")
        self.emit(f"if {found} is _M:")
        self.depth += 1
        self.fail(f"no field {name!r}")
        self.depth -= 1
        self.emit(f"if not isinstance({found}, list):")
        self.depth += 1
        self.fail(f"field {name!r} must be a list")
        self.depth -= 1
        self.emit(f"for {entry} in {found}:")
        self.depth += 1
        self.emit(f"if type({entry}) is not dict and not isinstance({entry}, _Mapping):")
        self.depth += 1
        self.fail(f"items of {name!r} must be objects")
        self.depth -= 1
        self.emit(f"{inner} = {{**{scope}, **{entry}}}")
        opened = self.kept(item, inner)
        self.emit(f"{result}.append({self.object(item, inner)})")
        self.depth -= opened + 1

    def kept(self, node: dict, scope: str) -> int:
        """Open an `if` per marker of `node` (as `_Filler.kept` tests them); how many."""
        opened = 0
        for marker, test in (("$if", "c"), ("$unless", "not c")):
            if marker not in node:
                continue
            name = node[marker]
            self.emit(f"c = {scope}.get({self.literal(name)}, _M)")
            self.emit("if c is _M:")
            self.depth += 1
            self.fail(f"no field {name!r}")
            self.depth -= 1
            self.emit(f"if {test}:")
            self.depth += 1
            opened += 1
        return opened


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
