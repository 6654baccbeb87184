"""Rich menus: the committed files obey LINE's rules, and deploy is safe to re-run.

Deploy runs the real SDK against tests/fake_line.py, a fake LINE server on 127.0.0.1 that
keeps menus, images, the default and links the way LINE does and records every call.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    MessagingApi,
    MessagingApiBlob,
)
from linebot.v3.messaging.models import RichMenuRequest
from PIL import Image, ImageChops, ImageStat

from bot.bootstrap import build
from bot.cli.richmenu import richmenu_group
from bot.config import DEFAULT_PROGRAM, Config
from bot.db import transaction
from bot.line import richmenu_art
from bot.line.client import configuration
from bot.line.richmenu import (
    MENUS_DIR,
    RichMenuError,
    check_menu,
    deploy,
    unlink_staff,
    versioned_name,
)
from bot.line.richmenu_art import Tile, find_fonts, render_image
from bot.models import Staff
from tests.fake_line import FakeLine


def menu(role: str) -> dict:
    return json.loads((MENUS_DIR / f"{role}.json").read_text(encoding="utf-8"))


def has_cjk_font() -> bool:
    try:
        find_fonts()
    except RichMenuError:
        return False
    return True


# ---------------------------------------------------------------- the committed files


@pytest.mark.parametrize("role", ["customer", "staff"])
def test_menu_file_is_what_create_rich_menu_takes(role: str) -> None:
    data = menu(role)
    request = RichMenuRequest.from_dict(data)
    assert request.to_dict() == data  # nothing the SDK would drop or rename
    assert check_menu(data, (MENUS_DIR / f"{role}.png").read_bytes()) == []
    assert 1 <= len(data["chatBarText"]) <= 14
    assert all(len(a["action"].get("data", "")) <= 300 for a in data["areas"])


@pytest.mark.parametrize("role", ["customer", "staff"])
def test_areas_tile_the_whole_image_without_overlap(role: str) -> None:
    data = menu(role)
    width, height = data["size"]["width"], data["size"]["height"]
    boxes = [(b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"])
             for b in (a["bounds"] for a in data["areas"])]
    assert all(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height for x0, y0, x1, y1 in boxes)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    # inside and disjoint, so equal total area means every pixel is tappable
    assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes) == width * height


def test_customer_menu_has_the_six_member_actions() -> None:
    data = menu("customer")
    assert data["size"] == {"width": 2500, "height": 1686}
    actions = [a["action"] for a in data["areas"]]
    assert [a["type"] for a in actions] == ["postback"] * 5 + ["datetimepicker"]
    assert [(a["data"], a.get("displayText")) for a in actions[:5]] == [
        ("action=points", "我的點數"), ("action=stamps", "集點卡"), ("action=wallet", "優惠券"),
        ("action=card", "會員卡"), ("action=rewards", "兌換好禮")]
    birthday = actions[5]
    assert (birthday["mode"], birthday["data"]) == ("date", "action=birthday")
    dates = [dt.date.fromisoformat(birthday[k]) for k in ("min", "initial", "max")]
    assert dates == sorted(dates)
    # the grid: three across, two down, reading order = the order above
    assert [(a["bounds"]["x"], a["bounds"]["y"]) for a in data["areas"]] == [
        (0, 0), (833, 0), (1667, 0), (0, 843), (833, 843), (1667, 843)]


def test_staff_menu_actions() -> None:
    data = menu("staff")
    assert data["size"] == {"width": 2500, "height": 843}
    actions = [a["action"] for a in data["areas"]]
    assert [a.get("data") or a.get("text") or a.get("uri") for a in actions] == [
        "https://line.me/R/nv/QRCodeReader",  # LINE's own QR code reader, first
        "action=staff_help&topic=verify", "action=staff_help&topic=earn", "撤銷"]
    assert actions[0]["type"] == "uri" and actions[3]["type"] == "message"


@pytest.mark.parametrize("role", ["customer", "staff"])
def test_images_are_pngs_of_the_menu_size_under_1_mb(role: str) -> None:
    data = (MENUS_DIR / f"{role}.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) < 1024 * 1024
    with Image.open(io.BytesIO(data)) as img:
        assert (img.format, img.size) == ("PNG", tuple(menu(role)["size"].values()))


@pytest.mark.skipif(not has_cjk_font(), reason="no CJK font installed (fonts-noto-cjk)")
@pytest.mark.parametrize("role", ["customer", "staff"])
def test_committed_images_match_their_json(role: str) -> None:
    """Catches a JSON edit without `flask --app bot richmenu images` (allowing for font and
    Pillow versions drawing a pixel differently)."""
    fresh = Image.open(io.BytesIO(render_image(menu(role)))).convert("RGB")
    committed = Image.open(MENUS_DIR / f"{role}.png").convert("RGB")
    assert max(ImageStat.Stat(ImageChops.difference(fresh, committed)).mean) < 1.0


@pytest.mark.skipif(not has_cjk_font(), reason="no CJK font installed (fonts-noto-cjk)")
def test_labels_change_the_picture() -> None:
    data = menu("staff")
    plain = render_image(data)
    relabelled = render_image(data, {"撤銷": Tile("取消", "Cancel", "undo")})
    assert plain != relabelled


def test_missing_font_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(richmenu_art, "FONT_CANDIDATES", [("/nowhere/a.ttc", "/nowhere/b.ttc")])
    with pytest.raises(RichMenuError, match="fonts-noto-cjk"):
        render_image(menu("staff"))


def test_check_menu_finds_what_line_would_refuse() -> None:
    data = menu("staff")
    data["chatBarText"] = "這是一段超過十四個字的聊天列文字喔"
    data["areas"][1]["bounds"]["x"] = 700  # now overlaps area 1
    data["areas"][3]["bounds"]["width"] = 900  # reaches past 2500
    data["areas"][1]["action"]["data"] = "x" * 301
    problems = check_menu(data, (MENUS_DIR / "customer.png").read_bytes())
    assert any("chatBarText" in p for p in problems)
    assert any("overlaps" in p for p in problems)
    assert any("outside" in p for p in problems)
    assert any("300" in p for p in problems)
    assert any("2500x1686, menu is 2500x843" in p for p in problems)


# ---------------------------------------------------------------- deploy against a fake LINE

MEI, KEN = "U" + "a1" * 16, "U" + "b2" * 16


@pytest.fixture
def line() -> Iterator[FakeLine]:
    with FakeLine() as fake:
        yield fake


@pytest.fixture
def apis(line: FakeLine) -> Iterator[tuple[MessagingApi, MessagingApiBlob]]:
    with ApiClient(line.configuration()) as client:
        yield MessagingApi(client), MessagingApiBlob(client)


@pytest.fixture
def menus_dir(tmp_path: Path) -> Path:
    """A copy of richmenu/ a test may edit."""
    return Path(shutil.copytree(MENUS_DIR, tmp_path / "richmenu"))


def foreign_menu(line: FakeLine, name: str) -> str:
    """A menu someone else made through the API (a campaign, say)."""
    menu_id = f"richmenu-{uuid.uuid4().hex}"
    line.rich_menus[menu_id] = {"richMenuId": menu_id, **menu("staff"), "name": name}
    return menu_id


def ours(line: FakeLine) -> list[str]:
    return sorted(k for k, m in line.rich_menus.items() if m["name"].startswith("loyalty-"))


def test_first_deploy_makes_both_menus_live(line: FakeLine, apis, menus_dir: Path) -> None:
    foreign = foreign_menu(line, "spring campaign")
    report = deploy(*apis, [MEI, KEN], menus_dir)
    customer, staff = report.menu_ids["customer"], report.menu_ids["staff"]
    assert line.default_rich_menu_id == customer
    assert line.user_rich_menus == {MEI: staff, KEN: staff}
    assert ours(line) == sorted([customer, staff])
    for role, menu_id in report.menu_ids.items():
        png = (menus_dir / f"{role}.png").read_bytes()
        sent = {k: v for k, v in line.rich_menus[menu_id].items() if k != "richMenuId"}
        assert sent["name"] == versioned_name(menu(role), png)
        assert {**sent, "name": menu(role)["name"]} == menu(role)
        assert line.rich_menu_images[menu_id] == png
        [upload] = line.calls_to(f"/{menu_id}/content")
        assert upload.headers["Content-Type"] == "image/png"
    assert foreign in line.rich_menus
    assert line.rejections == []
    assert (len(report.created), report.reused, report.deleted) == (2, [], [])


def test_second_deploy_of_unchanged_files_creates_nothing(line: FakeLine, apis,
                                                          menus_dir: Path) -> None:
    first = deploy(*apis, [MEI], menus_dir)
    before = len(line.calls)
    second = deploy(*apis, [MEI], menus_dir)
    again = line.calls[before:]
    assert second.menu_ids == first.menu_ids
    assert (second.created, second.deleted) == ([], [])
    assert sorted(second.reused) == sorted(first.created)
    assert not any(c.path == "/v2/bot/richmenu" for c in again)
    assert not any(c.path.endswith("/content") or c.method == "DELETE" for c in again)
    assert line.default_rich_menu_id == first.menu_ids["customer"]
    assert ours(line) == sorted(first.menu_ids.values())


def test_changed_menu_replaces_and_deletes_the_old_one(line: FakeLine, apis,
                                                       menus_dir: Path) -> None:
    foreign = foreign_menu(line, "loyal customers week")  # not "loyalty-": not ours
    first = deploy(*apis, [MEI], menus_dir)
    changed = menu("customer")
    changed["chatBarText"] = "點我看點數"
    (menus_dir / "customer.json").write_text(json.dumps(changed, ensure_ascii=False), "utf-8")
    before = len(line.calls)
    second = deploy(*apis, [MEI], menus_dir)
    again = line.calls[before:]
    new_customer = second.menu_ids["customer"]
    assert new_customer != first.menu_ids["customer"]
    assert second.menu_ids["staff"] == first.menu_ids["staff"]
    assert len(second.created) == 1 and len(second.deleted) == 1
    assert [c.method for c in again if c.path == "/v2/bot/richmenu"] == ["POST"]
    assert first.menu_ids["customer"] not in line.rich_menus
    assert line.rich_menus[new_customer]["chatBarText"] == "點我看點數"
    assert line.default_rich_menu_id == new_customer
    assert ours(line) == sorted(second.menu_ids.values())
    assert foreign in line.rich_menus
    # the new menu was the default before the old one went
    order = [(c.method, c.path) for c in again if c.method == "DELETE" or "/all/" in c.path]
    assert order == [("POST", f"/v2/bot/user/all/richmenu/{new_customer}"),
                     ("DELETE", f"/v2/bot/richmenu/{first.menu_ids['customer']}")]


def test_a_menu_whose_image_failed_is_not_left_behind(line: FakeLine, apis,
                                                      menus_dir: Path) -> None:
    line.fail_next("/content", 500)
    with pytest.raises(ApiException):
        deploy(*apis, [], menus_dir)
    assert ours(line) == []
    report = deploy(*apis, [], menus_dir)
    assert line.default_rich_menu_id == report.menu_ids["customer"]
    assert ours(line) == sorted(report.menu_ids.values())


def test_bad_files_stop_deploy_before_calling_line(line: FakeLine, apis,
                                                   menus_dir: Path) -> None:
    (menus_dir / "staff.png").write_bytes((menus_dir / "customer.png").read_bytes())
    with pytest.raises(RichMenuError, match="staff: image is 2500x1686"):
        deploy(*apis, [], menus_dir)
    assert line.calls == []


def test_one_unlinkable_user_does_not_stop_the_others(line: FakeLine, apis,
                                                      menus_dir: Path) -> None:
    report = deploy(*apis, ["bogus", MEI], menus_dir)
    assert report.linked == [MEI]
    assert list(report.link_failures) == ["bogus"]
    assert "400" in report.link_failures["bogus"]
    assert line.user_rich_menus == {MEI: report.menu_ids["staff"]}


def test_unlink_staff(line: FakeLine, apis, menus_dir: Path) -> None:
    deploy(*apis, [MEI, KEN], menus_dir)
    unlink_staff(apis[0], MEI)
    assert list(line.user_rich_menus) == [KEN]
    unlink_staff(apis[0], MEI)  # again: nothing to unlink is fine


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def make_app(tmp_path: Path, sqlite_template: Path) -> Iterator:
    """A bare Flask app holding the runtime create_app puts in app.extensions["loyalty"] (the
    rest of the app stays out of these tests)."""
    path = tmp_path / "loyalty.db"
    shutil.copy(sqlite_template, path)
    built = []

    def make(**line_settings: str) -> Flask:
        config = Config(database_url=f"sqlite:///{path}", program_path=str(DEFAULT_PROGRAM),
                        secret_key="test", **line_settings)
        app = Flask(__name__)
        app.extensions["loyalty"] = runtime = build(config)
        built.append(runtime)
        return app

    yield make
    for runtime in built:
        runtime.close()


def test_cli_deploy_links_active_staff(line: FakeLine, make_app, menus_dir: Path) -> None:
    app = make_app(line_channel_access_token=line.access_token, line_api_base_url=line.base_url)
    now = dt.datetime.now(dt.UTC)
    with transaction(app.extensions["loyalty"].sessions) as session:
        session.add_all([Staff(line_user_id=MEI, name="Mei", active=True, created_at=now),
                         Staff(line_user_id=KEN, name="Ken", active=False, created_at=now),
                         Staff(line_user_id=None, name="Paper", active=True, created_at=now)])
    result = app.test_cli_runner().invoke(richmenu_group, ["deploy", "--dir", str(menus_dir)])
    assert result.exit_code == 0, result.output
    assert "created: loyalty-customer v" in result.output
    assert list(line.user_rich_menus) == [MEI]
    again = app.test_cli_runner().invoke(richmenu_group, ["deploy", "--dir", str(menus_dir)])
    assert again.exit_code == 0 and "reused: loyalty-staff v" in again.output


def test_cli_deploy_without_token_fails_clearly(make_app) -> None:
    result = make_app().test_cli_runner().invoke(richmenu_group, ["deploy"])
    assert result.exit_code != 0
    assert "LINE_CHANNEL_ACCESS_TOKEN is not set" in result.output


def test_cli_check_and_images(menus_dir: Path, make_app) -> None:
    runner = make_app().test_cli_runner()
    checked = runner.invoke(richmenu_group, ["check", "--dir", str(menus_dir)])
    assert checked.exit_code == 0 and checked.output.count(": OK") == 2
    if has_cjk_font():
        (menus_dir / "staff.png").unlink()
        drawn = runner.invoke(richmenu_group, ["images", "--dir", str(menus_dir)])
        assert drawn.exit_code == 0, drawn.output
        assert check_menu(menu("staff"), (menus_dir / "staff.png").read_bytes()) == []



def test_without_a_base_url_uploads_go_to_lines_data_host() -> None:
    """The deploy command's clients leave `host` unset, so the SDK picks api-data.line.me."""
    config = Config(database_url="sqlite://", program_path=str(DEFAULT_PROGRAM),
                    secret_key="test", line_channel_access_token="token")
    assert configuration(config).host is None
