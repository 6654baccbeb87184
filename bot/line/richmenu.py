"""Rich menus: draw their images from richmenu/*.json and deploy them to LINE, re-runnably.

A deployed menu is named "<json name> v<hash of json+png>", so an unchanged menu is
recognised and reused, and a changed one replaces the old, which is deleted once the new
one is live. Menus whose names do not start with "loyalty-" belong to someone else.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from linebot.v3.messaging import ApiClient, ApiException, MessagingApi, MessagingApiBlob
from linebot.v3.messaging.models import RichMenuRequest
from PIL import Image

from bot.config import ROOT, Config
from bot.line.client import configuration
from bot.line.richmenu_art import MAX_IMAGE_BYTES, PREFIX, RichMenuError

MENUS_DIR = ROOT / "richmenu"
ROLES = ("customer", "staff")  # customer: everyone's default; staff: linked per user
TIMEOUT = (5, 30)  # connect, read (seconds); uploads are up to 1 MB


# ---------------------------------------------------------------- checks


def check_menu(menu: dict, image: bytes | None = None) -> list[str]:
    """The LINE limits a menu (and its image) break; the SDK models check only types."""
    problems = []
    try:
        RichMenuRequest.from_dict(menu)
    except Exception as exc:  # pydantic's error names the bad field
        problems.append(f"not a rich menu object: {' '.join(str(exc).split())}")
    try:
        problems += _check_limits(menu)
        if image is not None:
            problems += _check_image(image, menu["size"]["width"], menu["size"]["height"])
    except (KeyError, TypeError, AttributeError) as exc:
        problems.append(f"incomplete rich menu object: {exc!r} missing or malformed")
    return problems


def _check_limits(menu: dict) -> list[str]:
    problems = []
    width, height = menu["size"]["width"], menu["size"]["height"]
    if not (800 <= width <= 2500 and height >= 250 and width / height >= 1.45):
        problems.append(f"size {width}x{height}: need 800-2500 wide, >= 250 high, ratio >= 1.45")
    if not 1 <= len(menu.get("chatBarText", "")) <= 14:
        problems.append("chatBarText must be 1-14 characters")
    if not menu.get("name", "").startswith(PREFIX):
        problems.append(f"name must start with {PREFIX!r} so deploy can recognise it")
    if len(menu.get("name", "")) > 300 - len(" v") - 12:  # room for versioned_name's suffix
        problems.append("name longer than 286 characters")
    areas = menu.get("areas", [])
    if not 1 <= len(areas) <= 20:
        problems.append(f"{len(areas)} areas: LINE allows 1-20")
    boxes = []
    for n, area in enumerate(areas, 1):
        b, action = area["bounds"], area["action"]
        box = (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"])
        if box[2] > width or box[3] > height:
            problems.append(f"area {n} reaches outside the {width}x{height} image")
        problems += [f"area {n} overlaps area {m}" for m, other in enumerate(boxes, 1)
                     if box[0] < other[2] and other[0] < box[2]
                     and box[1] < other[3] and other[1] < box[3]]
        boxes.append(box)
        if len(action.get("data", "")) > 300:
            problems.append(f"area {n}: data longer than 300 characters")
        if len(action.get("label", "")) > 20:
            problems.append(f"area {n}: label longer than 20 characters")
    return problems


def _check_image(image: bytes, width: int, height: int) -> list[str]:
    if len(image) > MAX_IMAGE_BYTES:
        return [f"image is {len(image):,} bytes; LINE takes at most {MAX_IMAGE_BYTES:,}"]
    try:
        with Image.open(io.BytesIO(image)) as img:
            fmt, size = img.format, img.size
    except OSError:
        return ["image is not a picture Pillow can read"]
    problems = [] if fmt == "PNG" else [f"image is {fmt}, expected PNG"]
    if size != (width, height):
        problems.append(f"image is {size[0]}x{size[1]}, menu is {width}x{height}")
    return problems


def load_menus(menus_dir: Path = MENUS_DIR) -> dict[str, tuple[dict, bytes]]:
    """{role: (menu, png bytes)} for every role; RichMenuError names each problem found."""
    menus, problems = {}, []
    for role in ROLES:
        try:
            menu = json.loads((menus_dir / f"{role}.json").read_text(encoding="utf-8"))
            image = (menus_dir / f"{role}.png").read_bytes()
        except (OSError, ValueError) as exc:
            problems.append(f"{role}: {exc}")
            continue
        problems += [f"{role}: {p}" for p in check_menu(menu, image)]
        menus[role] = (menu, image)
    if problems:
        raise RichMenuError("; ".join(problems))
    return menus


def versioned_name(menu: dict, image: bytes) -> str:
    """The menu's name plus a hash of everything LINE would show, e.g. 'loyalty-staff v3f9c...'."""
    digest = hashlib.sha256(json.dumps(menu, sort_keys=True, ensure_ascii=False).encode())
    digest.update(image)
    return f"{menu['name']} v{digest.hexdigest()[:12]}"


# ---------------------------------------------------------------- deploy


@dataclass
class DeployReport:
    menu_ids: dict[str, str] = field(default_factory=dict)  # role -> live rich menu id
    created: list[str] = field(default_factory=list)  # names
    reused: list[str] = field(default_factory=list)  # names
    deleted: list[str] = field(default_factory=list)  # names of old menus of ours
    linked: list[str] = field(default_factory=list)  # staff user ids
    link_failures: dict[str, str] = field(default_factory=dict)  # user id -> LINE's answer


def deploy(api: MessagingApi, blob_api: MessagingApiBlob, staff_user_ids: Iterable[str],
           menus_dir: Path = MENUS_DIR) -> DeployReport:
    """Make richmenu/ live: customer menu as default, staff menu linked to each staff user."""
    menus = load_menus(menus_dir)  # every file checked before the first call to LINE
    existing = api.get_rich_menu_list(_request_timeout=TIMEOUT).richmenus
    report = DeployReport()
    for role, (menu, image) in menus.items():
        name = versioned_name(menu, image)
        found = next((m.rich_menu_id for m in existing if m.name == name), None)
        if found:
            report.reused.append(name)
        else:
            found = _create(api, blob_api, {**menu, "name": name}, image)
            report.created.append(name)
        report.menu_ids[role] = found
    api.set_default_rich_menu(report.menu_ids["customer"], _request_timeout=TIMEOUT)
    for user_id in dict.fromkeys(staff_user_ids):
        try:
            api.link_rich_menu_id_to_user(user_id, report.menu_ids["staff"],
                                          _request_timeout=TIMEOUT)
            report.linked.append(user_id)
        except ApiException as exc:  # one unknown user must not keep the others waiting
            report.link_failures[user_id] = f"{exc.status} {exc.body or exc.reason}"
    live = set(report.menu_ids.values())
    for old in existing:
        if old.name.startswith(PREFIX) and old.rich_menu_id not in live:
            _delete(api, old.rich_menu_id)
            report.deleted.append(old.name)
    return report


def _create(api: MessagingApi, blob_api: MessagingApiBlob, menu: dict, image: bytes) -> str:
    menu_id = api.create_rich_menu(RichMenuRequest.from_dict(menu),
                                   _request_timeout=TIMEOUT).rich_menu_id
    try:
        blob_api.set_rich_menu_image(menu_id, image, _headers={"Content-Type": "image/png"},
                                     _request_timeout=TIMEOUT)
    except BaseException:  # a menu without an image can never go live: don't leave it
        _delete(api, menu_id)
        raise
    return menu_id


def _delete(api: MessagingApi, menu_id: str) -> None:
    try:
        api.delete_rich_menu(menu_id, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:  # already gone is what we wanted
            raise


def link_staff(api: MessagingApi, user_id: str, menus_dir: Path = MENUS_DIR) -> bool:
    """Give one new staff member the live staff menu; False if it was never deployed."""
    menu, image = load_menus(menus_dir)["staff"]
    name = versioned_name(menu, image)
    live = next((m.rich_menu_id for m in api.get_rich_menu_list(_request_timeout=TIMEOUT)
                 .richmenus if m.name == name), None)
    if live is None:
        return False
    api.link_rich_menu_id_to_user(user_id, live, _request_timeout=TIMEOUT)
    return True


def unlink_staff(api: MessagingApi, user_id: str) -> None:
    """Give a former staff member the default (customer) menu again."""
    try:
        api.unlink_rich_menu_id_from_user(user_id, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:  # nothing linked: already where we want them
            raise


def publish(config: Config, staff: list[str], menus_dir: Path = MENUS_DIR) -> DeployReport:
    """deploy() with the channel's credentials; LINE's refusals become RichMenuError."""
    try:
        with ApiClient(configuration(config)) as client:
            return deploy(MessagingApi(client), MessagingApiBlob(client), staff, menus_dir)
    except ApiException as exc:
        raise RichMenuError(f"LINE answered {exc.status}: {exc.body or exc.reason}") from None
