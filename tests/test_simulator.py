"""The LINE simulator over real HTTP: signed events in, the bot's replies and pushes out."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bot.app import create_app
from bot.config import ROOT, Config, ConfigError
from bot.models import Coupon, Member
from bot.simulator import configure
from bot.simulator.store import PERSONAS, Store
from tests.live_app import free_port, served, simulator_config

PERSONA = {p.key: p for p in PERSONAS}


@pytest.fixture
def live(db_url):
    with served(simulator_config(db_url, free_port())) as (app, base):
        yield app, base


def act(base: str, persona: str, **body) -> requests.Response:
    return requests.post(f"{base}/simulator/api/chats/{persona}", json=body, timeout=30)


def chat(base: str, persona: str, after: int = 0) -> list[dict]:
    entries = requests.get(f"{base}/simulator/api/chats", params={"after": after},
                           timeout=10).json()["entries"]
    return [e for e in entries if e["persona"] == persona]


def words(entry: dict) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", entry["html"]))


def scans(entries: list[dict]) -> list[str]:
    return [html.unescape(s) for e in entries for s in re.findall(r'data-scan="([^"]*)"',
                                                                   e["html"])]


def member(app, persona: str) -> Member:
    with app.extensions["loyalty"].sessions() as session:
        return session.scalars(select(Member).where(
            Member.line_user_id == PERSONA[persona].user_id)).one()


def test_the_simulator_is_on_only_with_simulator_1_and_then_takes_the_channels_place():
    assert not Config.from_env({}).simulator
    assert Config.from_env({"SIMULATOR": "1"}).simulator
    with pytest.raises(ConfigError, match="SIMULATOR must be 1"):
        Config.from_env({"SIMULATOR": "yes"})
    bare = Config(database_url="sqlite://", program_path="p", secret_key="k")
    assert configure(bare) == bare and not bare.line_configured
    line = Config(database_url="sqlite://", program_path="p", secret_key="k", simulator=True,
                  line_channel_secret="s", line_channel_access_token="t")
    taken = configure(line)
    assert taken.line_configured and taken.line_channel_secret != "s"
    assert taken.line_api_base_url == "http://127.0.0.1:5000/simulator/line"


def test_following_shows_the_welcome_in_the_profiles_language_and_registers_the_member(live):
    app, base = live
    assert act(base, "emma", type="follow").status_code == 200
    [welcome] = chat(base, "emma")
    assert welcome["sender"] == "bot" and welcome["via"] == "reply"
    assert "Welcome" in words(welcome)
    emma = member(app, "emma")
    assert (emma.display_name, emma.language, emma.status) == ("Emma", "en", "active")
    standing = requests.get(f"{base}/simulator/api/chats", timeout=10).json()["friendship"]
    assert standing == {"mei": "none", "jie": "none", "emma": "friend", "kai": "none"}


def test_staff_redeem_the_coupon_they_scan_in_a_customers_chat_and_the_customer_is_told(live):
    app, base = live
    act(base, "mei", type="follow")
    act(base, "mei", type="postback", data="action=wallet", displayText="優惠券")
    mei = chat(base, "mei")
    assert [e["sender"] for e in mei] == ["bot", "user", "bot"]
    assert words(mei[1]).strip() == "優惠券"
    typed = scans(mei[2:])[0]
    assert re.fullmatch(r"核銷 [0-9A-Z]{9}", typed)  # no LINE_OA_BASIC_ID: the bare command
    seen = mei[-1]["seq"]

    assert act(base, "kai", type="text", text=typed).status_code == 200
    assert "核銷成功" in words(chat(base, "kai")[-1])
    [told] = chat(base, "mei", after=seen)
    assert told["via"] == "push" and "優惠券已使用" in words(told)
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalar(select(Coupon.status).where(
            Coupon.code == typed.split()[1])) == "redeemed"


def test_the_clock_runs_a_job_as_of_the_chosen_time_and_holds_pushes_in_quiet_hours(live):
    app, base = live
    act(base, "mei", type="follow")
    act(base, "mei", type="postback", data="action=birthday", params={"date": "1995-12-01"})
    act(base, "mei", type="postback", data="action=birthday_confirm&date=1995-12-01")
    assert str(member(app, "mei").birthday) == "1995-12-01"

    late = requests.post(f"{base}/simulator/api/clock", timeout=60,
                         json={"job": "birthday", "at": "2026-12-01T14:00"}).json()
    # the card waits 10 hours for a free reply, then for the morning (quiet from 21:00)
    assert late["pushes"] == [] and "1 waiting for a free reply" in late["summaries"]["send"]
    night = requests.post(f"{base}/simulator/api/clock", timeout=60,
                          json={"job": "send", "at": "2026-12-02T00:30"}).json()
    assert night["pushes"] == [] and "held 1 for quiet hours" in night["summaries"]["send"]
    morning = requests.post(f"{base}/simulator/api/clock", timeout=60,
                            json={"job": "send", "at": "2026-12-02T09:00"}).json()
    assert [p["persona"] for p in morning["pushes"]] == ["mei"]
    assert "生日快樂" in words(chat(base, "mei")[-1])


def test_bad_requests_get_a_clear_error_and_send_nothing(live):
    app, base = live
    assert act(base, "mei", type="text", text="  ").json() == {
        "error": "type a message of 1 to 5000 characters"}
    assert act(base, "mei", type="wave").status_code == 400
    assert act(base, "mei", type="postback").json()["error"] == "a postback needs its data"
    assert act(base, "nobody", type="follow").status_code == 404
    bad_job = requests.post(f"{base}/simulator/api/clock", json={"job": "x", "at": "y"},
                            timeout=10)
    assert bad_job.status_code == 400 and "job must be one of" in bad_job.json()["error"]
    bad_time = requests.post(f"{base}/simulator/api/clock",
                             json={"job": "birthday", "at": "tomorrow"}, timeout=10)
    assert bad_time.json()["error"] == "at must be a local date and time: YYYY-MM-DDTHH:MM"
    assert chat(base, "mei") == []
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalars(select(Member)).all() == []


def test_the_simulated_messaging_api_behaves_like_lines(live):
    app, base = live
    config = app.extensions["loyalty"].config
    api = f"{base}/simulator/line/v2/bot/message"
    auth = {"Authorization": f"Bearer {config.line_channel_access_token}"}
    text = {"messages": [{"type": "text", "text": "hi"}]}
    user = PERSONA["mei"].user_id
    assert requests.post(f"{api}/push", json={"to": user, **text}, timeout=5).status_code == 401
    token = app.extensions["simulator"].new_reply_token(user)
    first = requests.post(f"{api}/reply", json={"replyToken": token, **text}, headers=auth,
                          timeout=5)
    again = requests.post(f"{api}/reply", json={"replyToken": token, **text}, headers=auth,
                          timeout=5)
    assert (first.status_code, again.status_code) == (200, 400)
    keyed = {**auth, "X-Line-Retry-Key": "6b2f3c1e-0000-4000-8000-000000000001"}
    codes = [requests.post(f"{api}/push", json={"to": user, **text}, headers=keyed,
                           timeout=5).status_code for _ in range(2)]
    assert codes == [200, 409]  # a retry key LINE already accepted: delivered once
    assert len(chat(base, "mei")) == 2


def test_with_the_simulator_the_home_page_opens_it_and_no_step_says_callback_answers_503(
        tmp_path, monkeypatch, caplog):
    on = create_app(simulator_config(f"sqlite:///{tmp_path / 'y.db'}", 5000))
    home = on.test_client().get("/")
    assert home.status_code == 302 and home.headers["Location"].endswith("/simulator")
    assert "answers 503" not in caplog.text
    from bot import dev  # only this test drives the quick start's steps

    steps = []
    monkeypatch.setattr(dev, "run", lambda *args, env=None: steps.append((args, env)) or 0)
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "SIMULATOR", "PORT"):
        monkeypatch.delenv(name, raising=False)
    assert dev.serve(["--port", "8123"]) == 0
    assert [args[3] for args, _ in steps] == ["db", "owner", "run"]
    assert all(env["SIMULATOR"] == "1" and env["PORT"] == "8123" for _, env in steps)
    assert steps[-1][0][-2:] == ("8123", "--with-threads")
    monkeypatch.setenv("PORT", "8200")
    assert dev.serve_env([], {"PORT": "8200"})["PORT"] == "8200"


def test_without_simulator_1_there_is_no_simulator_and_callback_still_answers_503(tmp_path):
    off = create_app(simulator_config(f"sqlite:///{tmp_path / 'z.db'}", 5000, simulator=False))
    client = off.test_client()
    assert client.get("/").status_code == 404
    assert client.get("/simulator").status_code == 404
    assert client.get("/simulator/gallery").status_code == 404
    assert client.post("/simulator/line/v2/bot/message/push", json={}).status_code == 404
    assert client.post("/callback", data=b"{}", headers={"X-Line-Signature": "x"}
                       ).status_code == 503


def test_an_app_listening_elsewhere_than_port_is_told_how_to_fix_it(tmp_path, sqlite_template):
    import shutil

    shutil.copy(sqlite_template, tmp_path / "x.db")
    app = create_app(simulator_config(f"sqlite:///{tmp_path / 'x.db'}", free_port()))
    answer = app.test_client().post("/simulator/api/chats/mei", json={"type": "follow"})
    assert answer.status_code == 400
    assert "start the app with PORT set to the port it listens on" in answer.json["error"]
    friendship = app.test_client().get("/simulator/api/chats").json["friendship"]
    assert friendship["mei"] == "none"  # the follow did not happen


def test_the_gallery_shows_every_flex_template_in_both_languages(tmp_path):
    app = create_app(simulator_config(f"sqlite:///{tmp_path / 'x.db'}", 5000))
    page = app.test_client().get("/simulator/gallery").get_data(as_text=True)
    templates = {p.stem for p in Path(ROOT / "flex_templates").glob("*.json")
                 if not p.stem.startswith("strings.")}
    for lang in ("zh-TW", "en"):
        section = page.split(f'data-lang="{lang}"')[1].split("</section>")[0]
        shown = {name.split()[0] for name in re.findall(r'data-sample="([^"]+)"', section)}
        assert shown == templates, lang
    assert "sim-unknown" not in page and "<script" not in page


def test_with_the_simulator_on_richmenu_deploy_says_it_needs_a_real_channel(tmp_path):
    from bot.cli.richmenu import richmenu_group

    app = create_app(simulator_config(f"sqlite:///{tmp_path / 'x.db'}", 5000))
    result = app.test_cli_runner().invoke(richmenu_group, ["deploy"])
    assert result.exit_code != 0 and "The LINE simulator is on" in result.output


def test_a_persona_who_blocked_the_shop_sends_nothing_and_receives_nothing(live):
    app, base = live
    act(base, "mei", type="follow")
    assert act(base, "mei", type="follow").json()["error"] == "小美 is already a friend of the shop"
    assert act(base, "mei", type="unfollow").status_code == 200
    assert member(app, "mei").status == "blocked"
    refused = act(base, "mei", type="text", text="點數")
    assert refused.status_code == 400 and "blocked the shop" in refused.json()["error"]
    seen = chat(base, "mei")[-1]["seq"]
    token = app.extensions["loyalty"].config.line_channel_access_token
    pushed = requests.post(f"{base}/simulator/line/v2/bot/message/push", timeout=5,
                           headers={"Authorization": f"Bearer {token}"},
                           json={"to": PERSONA["mei"].user_id,
                                 "messages": [{"type": "text", "text": "hi"}]})
    assert pushed.status_code == 200
    [note] = chat(base, "mei", after=seen)
    assert note["sender"] == "system" and "not delivered" in note["message"]["text"]
    friendship = requests.get(f"{base}/simulator/api/chats", timeout=5).json()["friendship"]
    assert friendship == {"mei": "blocked", "jie": "none", "emma": "none", "kai": "none"}
    app.extensions["simulator"] = Store()  # a restarted simulator reads it from the database
    friendship = requests.get(f"{base}/simulator/api/chats", timeout=5).json()["friendship"]
    assert friendship["mei"] == "blocked"

    assert act(base, "mei", type="follow").status_code == 200  # unblocked: no second gift
    assert member(app, "mei").status == "active"
    back = chat(base, "mei")[-1]
    assert back["sender"] == "bot" and "歡迎" in words(back)
    with app.extensions["loyalty"].sessions() as session:
        assert len(session.scalars(select(Coupon)).all()) == 1


def test_staff_removed_from_the_command_line_stay_removed_in_the_simulator(live):
    from bot.db import transaction
    from bot.loyalty.staff import remove_staff
    from bot.loyalty.timeutil import utcnow
    from bot.models import Staff

    app, base = live
    act(base, "kai", type="text", text="說明")
    sessions = app.extensions["loyalty"].sessions
    with transaction(sessions) as session:
        remove_staff(session, PERSONA["kai"].user_id, utcnow(), actor="test")
    act(base, "kai", type="text", text="核銷 ABCDEFGHJ")
    assert "核銷成功" not in words(chat(base, "kai")[-1])
    with sessions() as session:
        assert session.scalars(select(Staff.active)).all() == [False]


def test_the_simulated_messaging_api_refuses_what_line_refuses(live):
    app, base = live
    token = app.extensions["loyalty"].config.line_channel_access_token
    auth = {"Authorization": f"Bearer {token}"}
    api = f"{base}/simulator/line/v2/bot/message"
    mei = PERSONA["mei"].user_id

    def push(body: dict, **headers: str) -> requests.Response:
        return requests.post(f"{api}/push", json=body, headers={**auth, **headers}, timeout=5)

    empty = push({"to": mei, "messages": [{"type": "text", "text": ""}]})
    assert empty.status_code == 400 and "non-empty text" in empty.json()["message"]
    assert push({"to": "Unobody", "messages": [{"type": "text", "text": "x"}]}
                ).status_code == 400
    assert push({"to": mei, "messages": [{"type": "text", "text": "x"}]},
                **{"X-Line-Retry-Key": "again"}).status_code == 400
    many = requests.post(f"{api}/multicast", headers=auth, timeout=5, json={
        "to": [mei] * 501, "messages": [{"type": "text", "text": "x"}]})
    assert many.status_code == 400
    assert chat(base, "mei") == []


@pytest.fixture
def gallery_app(tmp_path):
    from bot.line.flex import strings_table, template

    yield create_app(simulator_config(f"sqlite:///{tmp_path / 'x.db'}", 5000))
    template.cache_clear()  # the next test reads the real templates again
    strings_table.cache_clear()


def test_the_gallery_shows_a_template_as_it_is_on_disk_and_a_broken_one_as_its_error(
        gallery_app, tmp_path, monkeypatch):
    import shutil

    from bot.line import flex

    edited = tmp_path / "flex_templates"
    shutil.copytree(ROOT / "flex_templates", edited)
    points = (edited / "points_card.json").read_text("utf-8")
    (edited / "points_card.json").write_text(points.replace("{", "{{", 1), "utf-8")
    stamps = (edited / "stamp_card.json").read_text("utf-8")
    (edited / "stamp_card.json").write_text(stamps.replace("{{stamps}}", "NEW {{stamps}}"),
                                            "utf-8")
    client = gallery_app.test_client()
    assert "NEW 3" not in client.get("/simulator/gallery").get_data(as_text=True)
    monkeypatch.setattr(flex, "TEMPLATE_DIR", edited)
    page = client.get("/simulator/gallery").get_data(as_text=True)
    broken = page.split('data-sample="points_card"')[1].split("</figure>")[0]
    assert "sim-sample-error" in broken and "JSONDecodeError" in broken
    assert "NEW 3" in page.split('data-sample="stamp_card"')[1].split("</figure>")[0]
    # the points card and the points card with changes coming, in each language
    assert page.count('class="sim-sample-error"') == 4


def test_the_gallery_works_for_a_program_without_the_examples_coupons_or_rewards(
        gallery_app, tmp_path):
    from bot.program import load_program

    text = (ROOT / "program.example.toml").read_text("utf-8")
    text = text[:text.index("[[rewards]]")] + text[text.index("[tier_rules]"):]
    for old, new in (("pct10", "ten_off"), ("xmas_beans", "beans"), ("nt50", "fifty"),
                     ("free_drink", "drink"), ("bday_member", "cake")):
        text = text.replace(old, new)
    (tmp_path / "shop.toml").write_text(text, "utf-8")
    gallery_app.extensions["loyalty"].program = load_program(tmp_path / "shop.toml")
    page = gallery_app.test_client().get("/simulator/gallery").get_data(as_text=True)
    assert 'class="sim-sample-error"' not in page and 'data-sample="wallet"' in page
    assert 'data-sample="reward_confirm"' not in page
