"""Rich menu images, drawn from the menu definitions with a CJK font (Pillow)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageFont

PREFIX = "loyalty-"  # names of the menus this app owns
MAX_IMAGE_BYTES = 1_000_000  # LINE says "1 MB"; take the stricter reading


class RichMenuError(Exception):
    """A menu file, its image or the font needed to draw it is unusable."""


def area_key(area: dict) -> str:
    """What an area does, as one string: its postback data, message text or URI."""
    action = area["action"]
    return action.get("data") or action.get("text") or action.get("uri") or action["type"]


class Tile(NamedTuple):
    zh: str
    en: str
    icon: str  # a key of ICONS


DEFAULT_TILES = {
    "action=points": Tile("我的點數", "My Points", "coin"),
    "action=stamps": Tile("集點卡", "Stamp Card", "stamps"),
    "action=wallet": Tile("優惠券", "Coupons", "ticket"),
    "action=card": Tile("會員卡", "Member Card", "card"),
    "action=rewards": Tile("兌換好禮", "Rewards", "gift"),
    "action=birthday": Tile("生日", "Birthday", "cake"),
    "https://line.me/R/nv/QRCodeReader": Tile("掃描", "Scan a QR", "scan"),
    "action=staff_help&topic=verify": Tile("核銷說明", "Redeem a Code", "ticket"),
    "action=staff_help&topic=earn": Tile("集點說明", "Give Stamps", "cup"),
    "撤銷": Tile("撤銷", "Undo Last", "undo"),
}


@dataclass(frozen=True)
class Theme:
    background: str
    separator: str
    title: str
    subtitle: str
    glyph: str  # icon strokes, drawn on the badge
    badges: tuple[str, ...]


CAFE = Theme("#FBF4E8", "#E8D8C3", "#4A2E1F", "#A27B5C", "#FFF8EE",
             ("#C8864B", "#C0644A", "#D9A441", "#8B5E3C", "#B86B5A", "#A8794F"))
ESPRESSO = Theme("#3B2A20", "#5C4536", "#FBF4E8", "#CDB49A", "#3B2A20",
                 ("#D9A441", "#E0A270", "#E3B7A0"))
HONEY = "#F2C14E"

# Fonts that cover Traditional Chinese, by platform: (bold, regular).
FONT_CANDIDATES = [
    (f"{d}/NotoSansCJK-Bold.ttc", f"{d}/NotoSansCJK-Regular.ttc")
    for d in ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/noto-cjk",
              "/usr/share/fonts/google-noto-cjk", "/usr/share/fonts/noto-cjk-fonts")
] + [
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",) * 2,
    ("/usr/share/fonts/truetype/arphic/uming.ttc",) * 2,
    ("/System/Library/Fonts/PingFang.ttc",) * 2,
    ("C:/Windows/Fonts/msjhbd.ttc", "C:/Windows/Fonts/msjh.ttc"),
]


def find_fonts(font_path: str | None = None) -> tuple[str, str]:
    """(bold, regular) CJK font files: font_path for both, or the first installed candidate."""
    if font_path:
        if not Path(font_path).is_file():
            raise RichMenuError(f"font file {font_path} does not exist")
        return font_path, font_path
    for bold, regular in FONT_CANDIDATES:
        if Path(bold).is_file() and Path(regular).is_file():
            return bold, regular
    raise RichMenuError(
        "No Chinese (CJK) font found to draw the rich menu images. Install one with "
        "`apt-get install fonts-noto-cjk` (Debian/Ubuntu; `noto-fonts-cjk` on Arch, "
        "`google-noto-sans-cjk-fonts` on Fedora) or pass --font PATH to a .ttf/.otf/.ttc. "
        "Looked for: " + ", ".join(b for b, _ in FONT_CANDIDATES))


def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """The Traditional Chinese face of a collection when it has one (Taiwan's glyph forms)."""
    first = ImageFont.truetype(path, size, index=0)
    for index in range(1, 12 if path.endswith(".ttc") else 1):
        try:
            face = ImageFont.truetype(path, size, index=index)
        except OSError:
            break
        if face.getname()[0].endswith(" TC"):
            return face
    return first


def render_image(menu: dict, labels: dict[str, Tile] | None = None,
                 font_path: str | None = None) -> bytes:
    """PNG bytes of the menu's image: one tile (icon, Chinese label, English line) per area.

    labels maps area_key(area) to a Tile; areas missing from it fall back to DEFAULT_TILES,
    then to the action's label. The staff menu is dark so staff see at once which one is on.
    """
    k = 2  # draw at twice the size and scale down: Pillow's shapes are not anti-aliased
    width, height = menu["size"]["width"], menu["size"]["height"]
    theme = ESPRESSO if menu["name"].startswith(PREFIX + "staff") else CAFE
    tiles = {**DEFAULT_TILES, **(labels or {})}
    bold_path, regular_path = find_fonts(font_path)
    img = Image.new("RGB", (width * k, height * k), theme.background)
    draw = ImageDraw.Draw(img)
    for n, area in enumerate(menu["areas"]):
        b = area["bounds"]
        x, y, w, h = (v * k for v in (b["x"], b["y"], b["width"], b["height"]))
        tile = tiles.get(area_key(area)) or Tile(area["action"].get("label", ""), "", "")
        unit = min(w, h) / 100  # every tile is laid out on a 100-unit square
        cx, icon_y = x + w / 2, y + h * 0.34
        badge = theme.badges[n % len(theme.badges)]
        r = 22 * unit
        draw.ellipse((cx - r, icon_y - r, cx + r, icon_y + r), fill=badge)
        if tile.icon in ICONS:
            ICONS[tile.icon](draw, cx, icon_y, r, theme.glyph, badge)
        draw.text((cx, y + h * 0.70), tile.zh, fill=theme.title, anchor="mm",
                  font=_font(bold_path, round(14 * unit)))
        _spaced(draw, (cx, y + h * 0.84), tile.en.upper(), theme.subtitle,
                _font(regular_path, round(5.6 * unit)), spacing=unit * 0.9)
        line = max(2, k * 2)
        if b["x"] > 0:
            draw.line((x, y + h * 0.12, x, y + h * 0.88), fill=theme.separator, width=line)
        if b["y"] > 0:
            draw.line((x + w * 0.08, y, x + w * 0.92, y), fill=theme.separator, width=line)
    img = img.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    if out.tell() > MAX_IMAGE_BYTES:  # a photo-like image: 256 colours still look right
        out = io.BytesIO()
        img.quantize(256, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
    return out.getvalue()


def _spaced(draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, fill: str,
            font: ImageFont.FreeTypeFont, spacing: float) -> None:
    """Letter-spaced text centred on a point (Pillow has no tracking of its own)."""
    widths = [font.getlength(ch) for ch in text]
    x = centre[0] - (sum(widths) + spacing * (len(text) - 1)) / 2
    for ch, w in zip(text, widths, strict=True):
        draw.text((x, centre[1]), ch, fill=fill, font=font, anchor="lm")
        x += w + spacing


# Icons: f(draw, cx, cy, r, ink, badge) draws inside the badge of radius r centred at cx, cy.
Icon = Callable[[ImageDraw.ImageDraw, float, float, float, str, str], None]


def _box(cx: float, cy: float, r: float, x0: float, y0: float, x1: float, y1: float):
    return (cx + x0 * r, cy + y0 * r, cx + x1 * r, cy + y1 * r)


def _coin(d, cx, cy, r, ink, badge):
    d.ellipse(_box(cx, cy, r, -.55, -.55, .55, .55), outline=ink, width=round(r * .09))
    d.ellipse(_box(cx, cy, r, -.38, -.38, .38, .38), fill=ink)
    d.polygon([(cx + r * (.27 if i % 2 == 0 else .11) * math.sin(math.radians(36 * i)),
                cy - r * (.27 if i % 2 == 0 else .11) * math.cos(math.radians(36 * i)))
               for i in range(10)], fill=badge)


def _stamps(d, cx, cy, r, ink, badge):
    d.rounded_rectangle(_box(cx, cy, r, -.62, -.42, .62, .42), radius=r * .1, fill=ink)
    for row, yy in enumerate((-.17, .17)):
        for col, xx in enumerate((-.34, 0, .34)):
            full = row * 3 + col < 4
            d.ellipse(_box(cx, cy, r, xx - .12, yy - .12, xx + .12, yy + .12),
                      fill=badge if full else None, outline=badge, width=round(r * .05))


def _ticket(d, cx, cy, r, ink, badge):
    d.rounded_rectangle(_box(cx, cy, r, -.64, -.38, .64, .38), radius=r * .08, fill=ink)
    for side in (-.64, .64):
        d.ellipse(_box(cx, cy, r, side - .14, -.14, side + .14, .14), fill=badge)
    for i in range(5):
        yy = -.3 + i * .13
        d.line((cx - .2 * r, cy + yy * r, cx - .2 * r, cy + (yy + .07) * r), fill=badge,
               width=round(r * .05))
    d.ellipse(_box(cx, cy, r, .02, -.22, .16, -.08), fill=badge)
    d.ellipse(_box(cx, cy, r, .3, .08, .44, .22), fill=badge)
    d.line((cx + .42 * r, cy - .2 * r, cx + .04 * r, cy + .2 * r), fill=badge,
           width=round(r * .06))


def _card(d, cx, cy, r, ink, badge):
    d.rounded_rectangle(_box(cx, cy, r, -.64, -.42, .64, .42), radius=r * .1, fill=ink)
    d.ellipse(_box(cx, cy, r, -.46, -.24, -.18, .04), fill=badge)
    d.chord(_box(cx, cy, r, -.56, .06, -.08, .5), 180, 360, fill=badge)
    for yy, length in ((-.14, .42), (.04, .32), (.2, .38)):
        d.line((cx, cy + yy * r, cx + length * r, cy + yy * r), fill=badge,
               width=round(r * .07))


def _gift(d, cx, cy, r, ink, badge):
    w = round(r * .08)
    d.ellipse(_box(cx, cy, r, -.36, -.56, -.02, -.24), outline=ink, width=w)
    d.ellipse(_box(cx, cy, r, .02, -.56, .36, -.24), outline=ink, width=w)
    d.rectangle(_box(cx, cy, r, -.56, -.28, .56, -.06), fill=ink)
    d.rectangle(_box(cx, cy, r, -.46, -.02, .46, .52), fill=ink)
    d.rectangle(_box(cx, cy, r, -.08, -.28, .08, .52), fill=badge)


def _cake(d, cx, cy, r, ink, badge):
    d.rounded_rectangle(_box(cx, cy, r, -.56, .04, .56, .5), radius=r * .06, fill=ink)
    d.rounded_rectangle(_box(cx, cy, r, -.38, -.2, .38, .08), radius=r * .06, fill=ink)
    d.line((cx - .56 * r, cy + .22 * r, cx + .56 * r, cy + .22 * r), fill=badge,
           width=round(r * .06))
    for xx in (-.22, 0, .22):
        d.rectangle(_box(cx, cy, r, xx - .035, -.42, xx + .035, -.2), fill=ink)
        d.ellipse(_box(cx, cy, r, xx - .06, -.6, xx + .06, -.44), fill=HONEY)


def _scan(d, cx, cy, r, ink, badge):
    w, e, s = round(r * .09), .55, .22
    for sx in (-1, 1):
        for sy in (-1, 1):
            d.line([(cx + sx * e * r, cy + sy * (e - s) * r), (cx + sx * e * r, cy + sy * e * r),
                    (cx + sx * (e - s) * r, cy + sy * e * r)], fill=ink, width=w, joint="curve")
    d.line([(cx - .25 * r, cy), (cx - .06 * r, cy + .2 * r), (cx + .28 * r, cy - .18 * r)],
           fill=ink, width=round(r * .1), joint="curve")


def _cup(d, cx, cy, r, ink, badge):
    w = round(r * .08)
    d.ellipse(_box(cx, cy, r, .14, -.08, .52, .26), outline=ink, width=w)
    d.chord(_box(cx, cy, r, -.46, -.5, .3, .46), 0, 180, fill=ink)
    d.rectangle(_box(cx, cy, r, -.46, -.1, .3, -.02), fill=ink)
    d.line((cx - .6 * r, cy + .52 * r, cx + .44 * r, cy + .52 * r), fill=ink, width=w)
    for xx in (-.24, .08):  # steam: a short sine wave each
        d.line([(cx + (xx + .06 * math.sin(t / 3)) * r, cy - (.24 + t * .03) * r)
                for t in range(11)], fill=ink, width=w, joint="curve")


def _undo(d, cx, cy, r, ink, badge):
    w, edge = r * .12, .46
    mid = edge - .06  # Pillow draws an arc's width inside its box
    d.arc(_box(cx, cy, r, -edge, -edge, edge, edge), 180, 430, fill=ink, width=round(w))
    d.polygon([(cx - (mid + .2) * r, cy - .04 * r), (cx - (mid - .2) * r, cy - .04 * r),
               (cx - mid * r, cy + .24 * r)], fill=ink)


ICONS: dict[str, Icon] = {"coin": _coin, "stamps": _stamps, "ticket": _ticket, "card": _card,
                          "gift": _gift, "cake": _cake, "scan": _scan, "cup": _cup,
                          "undo": _undo}


