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
from bot.simulator.store import PERSONAS
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
    with app.extensions["loyalty"]["sessions"]() as session:
        return session.scalars(select(Member).where(
            Member.line_user_id == PERSONA[persona].user_id)).one()


def test_the_simulator_is_on_without_a_line_channel_and_otherwise_only_when_asked():
    bare = Config(database_url="sqlite://", program_path="p", secret_key="k")
    line = Config(database_url="sqlite://", program_path="p", secret_key="k",
                  line_channel_secret="s", line_channel_access_token="t")
    assert configure(bare).simulator == "local" and configure(bare).line_configured
    assert configure(line) == line and not line.simulator_on
    forced = configure(Config(**{**line.__dict__, "simulator": "1"}))
    assert forced.line_channel_secret != "s" and forced.line_api_base_url.endswith(
        "/simulator/line")
    assert not Config(**{**bare.__dict__, "simulator": "0"}).simulator_on
    with pytest.raises(ConfigError, match="SIMULATOR must be 1"):
        Config.from_env({"SIMULATOR": "yes"})


def test_following_shows_the_welcome_in_the_profiles_language_and_registers_the_member(live):
    app, base = live
    assert act(base, "emma", type="follow").status_code == 200
    [welcome] = chat(base, "emma")
    assert welcome["sender"] == "bot" and welcome["via"] == "reply"
    assert "Welcome" in words(welcome)
    emma = member(app, "emma")
    assert (emma.display_name, emma.language, emma.status) == ("Emma", "en", "active")
    assert requests.get(f"{base}/simulator/api/chats", timeout=10).json()["followed"] == [
        "emma"]


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
    with app.extensions["loyalty"]["sessions"]() as session:
        assert session.scalar(select(Coupon.status).where(
            Coupon.code == typed.split()[1])) == "redeemed"


def test_the_clock_runs_a_job_as_of_the_chosen_time_and_holds_pushes_in_quiet_hours(live):
    app, base = live
    act(base, "mei", type="follow")
    act(base, "mei", type="postback", data="action=birthday", params={"date": "1995-12-01"})
    assert str(member(app, "mei").birthday) == "1995-12-01"

    late = requests.post(f"{base}/simulator/api/clock", timeout=60,
                         json={"job": "birthday", "at": "2026-12-01T22:00"}).json()
    assert late["pushes"] == [] and "held 1 for quiet hours" in late["summaries"]["send"]
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
    with app.extensions["loyalty"]["sessions"]() as session:
        assert session.scalars(select(Member)).all() == []


def test_the_simulated_messaging_api_behaves_like_lines(live):
    app, base = live
    config = app.extensions["loyalty"]["config"]
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


def test_started_without_a_channel_the_simulator_answers_only_this_machine(tmp_path):
    app = create_app(simulator_config(f"sqlite:///{tmp_path / 'x.db'}", 5000))
    client = app.test_client()
    assert client.get("/simulator").status_code == 200
    assert client.get("/simulator", environ_base={"REMOTE_ADDR": "203.0.113.9"}
                      ).status_code == 404
    assert client.get("/simulator", headers={"X-Forwarded-For": "203.0.113.9"}
                      ).status_code == 404
    forced = create_app(simulator_config(f"sqlite:///{tmp_path / 'y.db'}", 5000,
                                         simulator="1"))
    assert forced.test_client().get("/simulator", environ_base={
        "REMOTE_ADDR": "203.0.113.9"}).status_code == 200
    off = create_app(simulator_config(f"sqlite:///{tmp_path / 'z.db'}", 5000, simulator="0"))
    assert off.test_client().get("/simulator").status_code == 404
    assert off.test_client().get("/simulator/gallery").status_code == 404


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
    from bot.line.richmenu import richmenu_group

    app = create_app(simulator_config(f"sqlite:///{tmp_path / 'x.db'}", 5000))
    result = app.test_cli_runner().invoke(richmenu_group, ["deploy"])
    assert result.exit_code != 0 and "The LINE simulator is on" in result.output
