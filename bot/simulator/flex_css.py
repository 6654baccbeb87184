"""LINE's keyword sizes, and the checks every value passes before it may reach a style attribute.

The pixel values are those of LINE's own Flex Message Simulator stylesheet. Every function
returns either a value safe to paste into CSS or None: a value that fails a check is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

TEXT_SIZES = {"xxs": "11px", "xs": "13px", "sm": "14px", "md": "16px", "lg": "19px",
              "xl": "22px", "xxl": "29px", "3xl": "35px", "4xl": "48px", "5xl": "74px"}
IMAGE_SIZES = {"xxs": "40px", "xs": "60px", "sm": "80px", "md": "100px", "lg": "120px",
               "xl": "140px", "xxl": "160px", "3xl": "180px", "4xl": "200px", "5xl": "220px",
               "full": "100%"}
# spacing, margin, padding, offsets and cornerRadius share one scale
SPACING = {"none": "0", "xs": "2px", "sm": "4px", "md": "8px", "lg": "12px", "xl": "16px",
           "xxl": "20px"}
BORDER_WIDTHS = {"none": "0", "light": "0.5px", "normal": "1px", "medium": "2px",
                 "semi-bold": "3px", "bold": "4px"}
# tuples, not sets: a malformed (unhashable) value must compare unequal, not raise
BUBBLE_SIZES = ("nano", "micro", "deca", "hecto", "kilo", "mega", "giga")
LAYOUTS = ("vertical", "horizontal", "baseline")
JUSTIFY = {v: v for v in ("flex-start", "center", "flex-end", "space-between", "space-around",
                          "space-evenly")}
ALIGN_ITEMS = {v: v for v in ("flex-start", "center", "flex-end")}
ALIGN = {"start": "flex-start", "center": "center", "end": "flex-end"}
TEXT_ALIGN = {"start": "start", "center": "center", "end": "end"}
GRAVITY = {"top": "flex-start", "center": "center", "bottom": "flex-end"}
WEIGHTS = {"regular": "400", "bold": "700"}
STYLES = {"normal": "normal", "italic": "italic"}
DECORATIONS = {"none": "none", "underline": "underline", "line-through": "line-through"}

_LENGTH = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:px|%)")
_PIXELS = re.compile(r"[0-9]+(?:\.[0-9]+)?px")
_COLOR = re.compile(r"#([0-9a-fA-F]{6})([0-9a-fA-F]{2})?")
_RATIO = re.compile(r"([0-9]+(?:\.[0-9]+)?):([0-9]+(?:\.[0-9]+)?)")
_ANGLE = re.compile(r"[0-9]+(?:\.[0-9]+)?deg")


def length(value: Any, keywords: Mapping[str, str] | None = None, *,
           percent: bool = True) -> str | None:
    """A keyword's pixels, or a plain `12px` / `30%` (percent only where LINE allows it)."""
    if not isinstance(value, str):
        return None
    if keywords and value in keywords:
        return keywords[value]
    return value if (_LENGTH if percent else _PIXELS).fullmatch(value) else None


def color(value: Any) -> str | None:
    """`#RRGGBB` as is; `#RRGGBBAA` (alpha last, as in CSS) spelt rgba() for older browsers."""
    match = _COLOR.fullmatch(value) if isinstance(value, str) else None
    if not match:
        return None
    if match[2] is None:
        return value
    red, green, blue = (int(match[1][i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red}, {green}, {blue}, {round(int(match[2], 16) / 255, 3)})"


def ratio(value: Any) -> float | None:
    """Height as a percentage of width for an aspect ratio `W:H`."""
    match = _RATIO.fullmatch(value) if isinstance(value, str) else None
    if not match or float(match[1]) == 0 or float(match[2]) == 0:
        return None
    return round(float(match[2]) / float(match[1]) * 100, 4)


def count(value: Any) -> int | None:
    """A non-negative integer such as `flex` or `maxLines` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def choice(value: Any, table: Mapping[str, str]) -> str | None:
    return table.get(value) if isinstance(value, str) else None


def url(value: Any) -> str | None:
    """http(s) URLs only: javascript:, data: and relative URLs never reach the page."""
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def gradient(background: Any) -> str | None:
    """LINE's linearGradient as CSS: both measure angles clockwise from `to top`."""
    if not isinstance(background, dict) or background.get("type") != "linearGradient":
        return None
    start, end = color(background.get("startColor")), color(background.get("endColor"))
    if not start or not end:
        return None
    angle = background.get("angle")
    angle = angle if isinstance(angle, str) and _ANGLE.fullmatch(angle) else "0deg"
    center = color(background.get("centerColor"))
    position = length(background.get("centerPosition")) if center else None
    stops = [f"{start} 0%", f"{end} 100%"]
    if center:
        stops.insert(1, f"{center} {position if position and position.endswith('%') else '50%'}")
    return f"linear-gradient({angle}, {', '.join(stops)})"
