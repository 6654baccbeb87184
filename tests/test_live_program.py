"""The program lives in the database: versions, apply, export, rollback, conflicts, and a
change that reaches every running process without a restart."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import bootstrap
from bot.config import DEFAULT_PROGRAM, ConfigError
from bot.db import transaction
from bot.loyalty import programs
from bot.loyalty.errors import ProgramChanged
from bot.loyalty.staff import add_staff
from bot.loyalty.timeutil import utcnow
from bot.models import Member, ProgramVersion, Purchase
from bot.program import ProgramError, parse_toml
from tests.cli_helpers import Cli
from tests.line_helpers import flat, follow, post, postback, text, user_id

ALICE, CLERK = user_id(1), user_id(9)
EXAMPLE = DEFAULT_PROGRAM.read_text("utf-8")


def edited(tmp_path: Path, old: str, new: str, name: str = "edited.toml") -> Path:
    assert old in EXAMPLE
    path = tmp_path / name
    path.write_text(EXAMPLE.replace(old, new, 1), "utf-8")
    return path


def cheaper_points(tmp_path: Path) -> Path:
    """The example, earning a point per NT$10 instead of per NT$30."""
    return edited(tmp_path, "amount_per_point = 30", "amount_per_point = 10")


@pytest.fixture
def looks_every_time(monkeypatch):
    """Each process looks for a new version at every use (the 2 s wait is tested apart)."""
    monkeypatch.setattr(bootstrap, "CHECK_EVERY", 0.0)


def versions(sessions) -> list[tuple[int, str]]:
    with sessions() as session:
        return [(v.version, v.source) for v in
                session.scalars(select(ProgramVersion).order_by(ProgramVersion.version))]


# -- versions -----------------------------------------------------------------------------
def test_the_first_start_makes_the_file_version_1_and_later_starts_keep_the_database_one(
        db_url, tmp_path, caplog):
    with Cli(db_url) as cli:
        assert cli.app.extensions["loyalty"].program.version == 1
        assert versions(cli.app.extensions["loyalty"].sessions) == [(1, "file")]
    changed = cheaper_points(tmp_path)
    caplog.set_level(logging.WARNING, logger="bot")
    with Cli(db_url, changed) as cli:  # the file is no longer read at start
        program = cli.app.extensions["loyalty"].program
        assert (program.version, program.amount_per_point) == (1, 30)
    notes = [r.getMessage() for r in caplog.records if "has changed" in r.getMessage()]
    assert len(notes) == 1 and f"program apply {changed}" in notes[0]


def test_an_unchanged_file_is_not_reported(db_url, caplog):
    Cli(db_url).close()
    caplog.set_level(logging.WARNING, logger="bot")
    Cli(db_url).close()
    assert not [r for r in caplog.records if "has changed" in r.getMessage()]


def test_apply_makes_a_new_version_and_history_says_what_changed(cli, tmp_path):
    changed = cheaper_points(tmp_path)
    dry = cli("program", "apply", str(changed), "--dry-run")
    assert dry.exit_code == 0 and "earning.amount_per_point: 30 -> 10" in dry.output
    assert cli("program", "history").output.count("version ") == 1  # nothing saved

    result = cli("program", "apply", str(changed))
    assert result.exit_code == 0, result.output
    assert "Version 2 is live" in result.output
    history = cli("program", "history").output
    assert "version 2" in history and "apply by cli" in history
    assert "earning.amount_per_point: 30 -> 10" in history
    assert "version 1" in history and "from " in history
    assert cli.app.extensions["loyalty"].program.amount_per_point == 10


def test_a_broken_file_is_refused_naming_the_field_and_nothing_changes(cli, tmp_path):
    broken = edited(tmp_path, "amount_per_point = 30", "amount_per_point = 0")
    result = cli("program", "apply", str(broken))
    assert result.exit_code != 0
    assert "earning.amount_per_point" in result.output and str(broken) in result.output
    assert "must be at least 1" in result.output
    assert versions(cli.app.extensions["loyalty"].sessions) == [(1, "file")]
    assert cli("program", "check", str(broken)).exit_code != 0


def test_export_round_trips_check_and_reapplies_as_an_identical_program(cli, tmp_path):
    assert cli("program", "apply", str(cheaper_points(tmp_path))).exit_code == 0
    exported = tmp_path / "exported.toml"
    result = cli("program", "export", str(exported))
    assert result.exit_code == 0 and "Version 2 written" in result.output
    assert "Comments are not kept" in exported.read_text("utf-8")
    assert cli("program", "check", str(exported)).exit_code == 0
    assert "no change" in cli("program", "apply", str(exported), "--dry-run").output
    assert cli("program", "apply", str(exported)).exit_code == 0
    with cli.app.extensions["loyalty"].sessions() as session:
        assert programs.data_of(session, 3) == programs.data_of(session, 2)
        second, third = programs.load(session, 2), programs.load(session, 3)
    assert second.__dict__ | {"version": 0, "path": ""} == \
        third.__dict__ | {"version": 0, "path": ""}


def test_rollback_makes_an_old_version_live_again_as_a_new_version(cli, tmp_path):
    dearer = edited(tmp_path, "amount_per_point = 30", "amount_per_point = 60")
    assert "takes effect at" in cli("program", "apply", str(dearer)).output  # takes away
    result = cli("program", "rollback", "1")  # gives back: at once
    assert result.exit_code == 0 and "Version 3 is live" in result.output
    program = cli.app.extensions["loyalty"].program
    assert (program.version, program.amount_per_point, program.coming) == (3, 30, ())
    history = cli("program", "history").output
    assert "back to version 1" in history and "earning.amount_per_point: 60 -> 30" in history
    assert "no version 9" in cli("program", "rollback", "9").output.lower()


def test_a_change_that_takes_something_away_waits_out_the_notice_and_is_announced(
        cli, sessions, tmp_path):
    """A point per NT$60 instead of NT$30, the NT$50 voucher at 150 points instead of 100,
    and the gold tier's cake set gone: in force 30 days later, announced until then."""
    taking = EXAMPLE.replace("amount_per_point = 30", "amount_per_point = 60", 1).replace(
        'points = 100\ncoupon = "nt50"', 'points = 150\ncoupon = "nt50"', 1)
    path = tmp_path / "taking.toml"
    path.write_text(taking, "utf-8")
    result = cli("program", "apply", str(path))
    assert result.exit_code == 0 and "Version 2 takes effect at" in result.output
    now = utcnow()
    with sessions() as session:
        live = programs.live(session, now)
        later = programs.live(session, now + dt.timedelta(days=30, minutes=1))
    assert (live.version, live.amount_per_point, live.reward("nt50").points) == (1, 30, 100)
    assert {(c.kind, c.subject, c.old, c.new) for c in live.coming} == {
        ("earn_slower", "", 30, 60), ("reward_price", "nt50", 100, 150)}
    assert dt.timedelta(days=29, hours=23) < live.coming_at - now <= dt.timedelta(days=30)
    assert (later.version, later.amount_per_point, later.coming) == (2, 60, ())
    assert "takes effect" in cli("program", "history").output


def test_a_newer_save_replaces_a_waiting_version_which_never_takes_effect(cli, sessions,
                                                                         tmp_path):
    dearer = edited(tmp_path, "amount_per_point = 30", "amount_per_point = 60")
    assert cli("program", "apply", str(dearer)).exit_code == 0
    renamed = edited(tmp_path, 'name_en = "Mountain Mist Café"', 'name_en = "Mist Cafe"')
    assert "Version 3 is live" in cli("program", "apply", str(renamed)).output  # gives back
    with sessions() as session:
        later = programs.live(session, utcnow() + dt.timedelta(days=31))
    assert (later.version, later.amount_per_point, later.shop_name_en) == (3, 30, "Mist Cafe")


def test_a_save_from_an_old_version_is_refused_with_who_changed_it_and_when(sessions, cli,
                                                                          tmp_path):
    data = parse_toml(EXAMPLE, "example")
    with transaction(sessions) as session:
        programs.save(session, data, base=1, actor="console:owner@cafe.tw", source="console",
                      now=utcnow())
    with pytest.raises(ProgramChanged) as refused, transaction(sessions) as session:
        programs.save(session, data, base=1, actor="console:manager@cafe.tw",
                      source="console", now=utcnow())
    assert "owner@cafe.tw" in str(refused.value) and "reload" in str(refused.value)
    assert versions(sessions) == [(1, "file"), (2, "console")]


@pytest.mark.slow
def test_two_owners_saving_at_once_one_wins_the_other_is_told(sessions, cli):
    data = parse_toml(EXAMPLE, "example")
    start, outcomes = threading.Barrier(2), []

    def owner(name: str) -> None:
        start.wait()
        try:
            with transaction(sessions) as session:
                programs.save(session, data, base=1, actor=name, source="console",
                              now=utcnow())
            outcomes.append("saved")
        except ProgramChanged:
            outcomes.append("refused")

    threads = [threading.Thread(target=owner, args=(f"owner{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "saved"]
    assert versions(sessions) == [(1, "file"), (2, "console")]


def test_a_version_written_in_an_older_shape_is_upgraded_and_can_be_rolled_back_to(sessions,
                                                                                 cli):
    old = EXAMPLE.replace('coupon = "nt50"', 'coupon = "nt50"\n', 1)
    with transaction(sessions) as session:  # as the first code stored it: rewards unkeyed
        session.add(ProgramVersion(version=2, schema=1, data=programs.canonical(
            parse_toml(old, "old")), created_at=utcnow(), effective_at=utcnow(),
            created_by="older code",
            source="console", summary="older"))
    with sessions() as session:
        assert "key" not in parse_toml(session.get(ProgramVersion, 2).data, "v2")["rewards"][0]
        assert programs.data_of(session, 2)["rewards"][0]["key"] == "nt50"
        assert [r.key for r in programs.load(session, 2).rewards][0] == "nt50"
    assert cli("program", "rollback", "2").exit_code == 0
    with sessions() as session:
        row = session.get(ProgramVersion, 3)
        assert row.schema == programs.SCHEMA and 'key = "nt50"' in row.data


def test_a_program_the_deployment_cannot_run_is_refused(db_url, fake_line, tmp_path):
    """Claim codes need the account's basic id when a LINE channel is set."""
    from bot.app import create_app
    from bot.config import Config
    from tests.line_helpers import CHANNEL_SECRET

    app = create_app(Config(database_url=db_url, program_path=str(DEFAULT_PROGRAM),
                            secret_key="k", line_channel_secret=CHANNEL_SECRET,
                            line_channel_access_token=fake_line.access_token,
                            line_oa_basic_id="@cafe", line_api_base_url=fake_line.base_url))
    rt = app.extensions["loyalty"]
    without_id = dataclasses.replace(rt.config, line_oa_basic_id="")
    with pytest.raises(ConfigError, match="LINE_OA_BASIC_ID"), transaction(rt.sessions) as s:
        programs.save(s, parse_toml(EXAMPLE, "x"), base=1, actor="t", source="console",
                      now=utcnow(), check=without_id.check_program)
    assert versions(rt.sessions) == [(1, "file")]
    rt.engine.dispose()


# -- no restart ---------------------------------------------------------------------------
def test_a_new_version_reaches_every_worker_without_a_restart(app, client, fake_line, db_url,
                                                               tmp_path, looks_every_time):
    """Two web workers (two runtimes on one database) and a staff purchase in each: both
    earn by the new rate once it is applied elsewhere."""
    from bot.app import create_app

    other = create_app(app.extensions["loyalty"].config)
    post(client, [follow(ALICE)])
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        add_staff(session, CLERK, utcnow(), name="阿明", actor="test")
        code = session.scalars(select(Member.member_code)
                               .where(Member.line_user_id == ALICE)).one()
    with Cli(db_url) as cli:
        assert cli("program", "apply", str(cheaper_points(tmp_path))).exit_code == 0
    for worker, amount in ((client, 300), (other.test_client(), 600)):
        post(worker, [text(CLERK, f"集點 {code} {amount}")])
    with state.sessions() as session:
        earned = session.scalars(select(Purchase.points_earned).order_by(Purchase.id)).all()
    assert earned == [30, 60]  # a point per NT$10, not per NT$30
    other.extensions["loyalty"].engine.dispose()


def test_a_process_looks_for_a_new_version_at_most_every_two_seconds(sessions, cli, tmp_path):
    now = [100.0]
    looks = []
    counting = type("Counting", (), {"__call__": lambda self: (looks.append(1), sessions())[1]})
    live = bootstrap.LiveProgram(counting(), cli.app.extensions["loyalty"].program,
                                 clock=lambda: now[0])
    assert cli("program", "apply", str(cheaper_points(tmp_path))).exit_code == 0
    for _ in range(1000):
        assert live.current().amount_per_point == 30  # within the 2 s: not looked for
    assert looks == []
    now[0] += bootstrap.CHECK_EVERY
    assert live.current().amount_per_point == 10 and live.current().version == 2
    assert len(looks) == 1


def test_a_request_keeps_the_version_it_started_with(cli, tmp_path, looks_every_time):
    rt = cli.app.extensions["loyalty"]
    with rt.pinned() as program:
        assert cli("program", "apply", str(cheaper_points(tmp_path))).exit_code == 0
        assert rt.program is program and rt.program.amount_per_point == 30
    assert rt.program.amount_per_point == 10


def test_the_clock_runs_its_next_job_on_the_new_version(cli, tmp_path, looks_every_time):
    from bot import scheduler
    from bot.jobs import JOBS, Job

    seen = []
    probe = Job("probe", {"minute": "*"}, lambda rt, since, now: seen.append(
        rt.program.amount_per_point) or "", "probe")
    rt = cli.app.extensions["loyalty"]
    scheduler.run_safely(rt, probe)
    assert cli("program", "apply", str(cheaper_points(tmp_path))).exit_code == 0
    scheduler.run_safely(rt, probe)
    assert seen == [30, 10] and "probe" not in JOBS


# -- members keep what they were shown ------------------------------------------------------
def test_a_reward_confirmed_before_a_price_change_is_confirmed_again_not_charged(
        line_config, fake_line, db_url, tmp_path, looks_every_time):
    """With no notice period ([changes] notice_days = 0) a dearer reward is in force at once:
    a confirmation shown before it is asked again at the new price."""
    from bot.app import create_app
    from bot.loyalty.members import adjust_points

    no_notice = tmp_path / "no_notice.toml"
    no_notice.write_text(EXAMPLE.replace("notice_days = 30", "notice_days = 0"), "utf-8")
    app = create_app(dataclasses.replace(line_config, program_path=str(no_notice)))
    client = app.test_client()
    post(client, [follow(ALICE)])
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        member = session.scalars(select(Member)).one()
        adjust_points(session, state.program, member.id, 150, utcnow(), reason="t", actor="t")
    post(client, [postback(ALICE, "action=reward&key=nt50")])
    shown = flat(fake_line.replies()[-1]["messages"])
    assert "action=reward_confirm&key=nt50&points=100" in shown
    dearer = tmp_path / "dearer.toml"
    dearer.write_text(no_notice.read_text("utf-8").replace(
        'points = 100\ncoupon = "nt50"', 'points = 120\ncoupon = "nt50"'), "utf-8")
    with Cli(db_url) as cli:
        assert "Version 2 is live" in cli("program", "apply", str(dearer)).output
    post(client, [postback(ALICE, "action=reward_confirm&key=nt50&points=100")])
    again = flat(fake_line.replies()[-1]["messages"])
    assert "120" in again and "action=reward_confirm&key=nt50&points=120" in again
    with state.sessions() as session:
        assert session.scalars(select(Member)).one().points_balance == 150  # not charged
    post(client, [postback(ALICE, "action=reward_confirm&key=nt50&points=120")])
    with state.sessions() as session:
        assert session.scalars(select(Member)).one().points_balance == 30
    app.extensions["loyalty"].engine.dispose()


def test_members_read_what_is_coming_on_their_points_card_and_in_the_catalog(
        app, client, fake_line, db_url, tmp_path, looks_every_time):
    from bot.loyalty.members import adjust_points

    post(client, [follow(ALICE)])
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        member = session.scalars(select(Member)).one()
        adjust_points(session, state.program, member.id, 150, utcnow(), reason="t", actor="t")
    dearer = edited(tmp_path, 'points = 100\ncoupon = "nt50"', 'points = 120\ncoupon = "nt50"')
    with Cli(db_url) as cli:
        assert "takes effect at" in cli("program", "apply", str(dearer)).output
    day = (utcnow() + dt.timedelta(days=30)).astimezone(state.program.timezone)
    post(client, [postback(ALICE, "action=rewards")])
    catalog = flat(fake_line.replies()[-1]["messages"])
    assert "權益異動預告" in catalog and f"{day:%Y/%m/%d} 起：「折價NT$50」需要 120 點" in catalog
    assert "action=reward&key=nt50" in catalog
    post(client, [postback(ALICE, "action=points")])
    assert "「折價NT$50」需要 120 點（現在 100 點）" in flat(fake_line.replies()[-1]["messages"])
    post(client, [postback(ALICE, "action=reward_confirm&key=nt50&points=100")])
    with state.sessions() as session:  # the price shown is the price in force until then
        assert session.scalars(select(Member)).one().points_balance == 50


def test_a_reward_keeps_its_key_when_the_list_is_reordered(tmp_path, cli):
    reordered = EXAMPLE.replace('[[rewards]]\npoints = 100\ncoupon = "nt50"\n\n', "", 1)
    reordered = reordered.replace('[[rewards]]\npoints = 1000', '[[rewards]]\npoints = 100\n'
                                  'coupon = "nt50"\n\n[[rewards]]\npoints = 1000', 1)
    path = tmp_path / "reordered.toml"
    path.write_text(reordered, "utf-8")
    assert cli("program", "apply", str(path)).exit_code == 0
    program = cli.app.extensions["loyalty"].program
    assert [r.key for r in program.rewards] == ["cake_set", "nt50", "free_shipping"]
    assert program.reward("nt50").points == 100


def test_two_rewards_of_one_coupon_need_their_own_keys(tmp_path):
    from bot.program import load_program

    path = tmp_path / "twice.toml"
    path.write_text(EXAMPLE.replace('[[rewards]]\npoints = 500\ncoupon = "cake_set"',
                                    '[[rewards]]\npoints = 500\ncoupon = "nt50"', 1), "utf-8")
    with pytest.raises(ProgramError, match=r"rewards\[1\]\.key.*already another reward's key"):
        load_program(path)


def test_a_reward_whose_coupon_changed_since_it_was_shown_is_confirmed_again(sessions,
                                                                             program, now):
    """Same key, same price, a smaller coupon: nothing is charged until it is seen again."""
    from bot.loyalty.errors import RewardChanged
    from bot.loyalty.members import adjust_points
    from bot.loyalty.rewards import offer_digest, redeem_reward
    from tests.helpers import balance, join

    member = join(sessions, program, now)
    with transaction(sessions) as session:
        adjust_points(session, program, member, 150, now, reason="t", actor="t")
    shown = offer_digest(program, program.reward("nt50"))
    smaller = dataclasses.replace(program, coupons={
        **program.coupons, "nt50": dataclasses.replace(program.coupons["nt50"], amount=10)})
    with pytest.raises(RewardChanged), transaction(sessions) as session:
        redeem_reward(session, smaller, member, "nt50", now, actor="t", shown_points=100,
                      shown_offer=shown)
    assert balance(sessions, member) == 150
    reworded = dataclasses.replace(program, coupons={
        **program.coupons, "nt50": dataclasses.replace(program.coupons["nt50"], title="NT$50")})
    assert offer_digest(reworded, reworded.reward("nt50")) == shown  # wording is not terms
    with transaction(sessions) as session:
        redeem_reward(session, reworded, member, "nt50", now, actor="t", shown_points=100,
                      shown_offer=shown)
    assert balance(sessions, member) == 50


# -- what counts as taking something away ---------------------------------------------------
def variant(program, **changes):
    return dataclasses.replace(program, **changes)


def kinds(old, new, today=dt.date(2026, 12, 7)):
    from bot.loyalty.takeaways import takeaways
    return sorted({c.kind for c in takeaways(old, new, today)})


def test_what_takes_something_away_from_members_is_found(program):
    from bot.program import PointsCampaign, Reward

    gold = program.tier("gold")
    tiers = tuple(t for t in program.tiers if t.key != "gold")
    renamed = tuple(dataclasses.replace(t, key="vip") if t.key == "gold" else t
                    for t in program.tiers)
    no_gift = tuple(dataclasses.replace(t, birthday_coupon=None) if t.key == "gold" else t
                    for t in program.tiers)
    smaller = {**program.coupons, "nt50": dataclasses.replace(program.coupons["nt50"],
                                                              amount=10)}
    other = tuple(dataclasses.replace(r, coupon="free_shipping") if r.key == "nt50" else r
                  for r in program.rewards)
    ending = tuple(dataclasses.replace(r, ends=dt.date(2026, 12, 20)) if r.key == "nt50"
                   else r for r in program.rewards)
    found = {
        "a tier removed": variant(program, tiers=tiers),
        "a tier's key renamed": variant(program, tiers=renamed),
        "a tier's birthday gift removed": variant(program, tiers=no_gift),
        "month-end expiry dropped": variant(program, expiry_end_of_month=False),
        "a reward's coupon giving less": variant(program, coupons=smaller),
        "a reward pointing at another coupon": variant(program, rewards=other),
        "a reward ending soon": variant(program, rewards=ending),
        "a shorter tier window": variant(program, tier_window_months=6),
        "a stricter downgrade": variant(program, downgrade="rolling"),
        "a stamp card reward giving less": variant(program, coupons={
            **program.coupons, "free_drink": dataclasses.replace(
                program.coupons["free_drink"], gift="小杯美式")}),
    }
    for what, new in found.items():
        assert kinds(program, new), what
    assert kinds(variant(program, rounding="ceil"), program) == ["rounding_less"]
    christmas = program.campaigns[0]
    assert christmas.ends >= dt.date(2026, 12, 7)
    assert kinds(program, variant(program, campaigns=())) == ["campaign_gone"]
    wider = PointsCampaign(christmas.name, christmas.name_en, christmas.starts,
                           christmas.ends + dt.timedelta(days=2), christmas.multiplier)
    assert kinds(program, variant(program, campaigns=(wider,))) == []
    assert gold.threshold > 0
    assert program.rewards[0] == Reward("nt50", 100, "nt50")


def test_what_takes_nothing_away_is_not_delayed(program):
    from bot.program import Reward

    over = (*program.rewards, Reward("old", 50, "nt50", ends=dt.date(2026, 1, 31)))
    rekeyed = tuple(dataclasses.replace(r, key="voucher50") if r.key == "nt50" else r
                    for r in program.rewards)
    bigger = {**program.coupons, "nt50": dataclasses.replace(program.coupons["nt50"],
                                                             amount=80, title="NT$80")}
    for what, old, new in (
            ("a reward over since January removed", variant(program, rewards=over), program),
            ("a reward's key renamed, same coupon and price", program,
             variant(program, rewards=rekeyed)),
            ("a reward's coupon giving more", program, variant(program, coupons=bigger)),
            ("a better rate", program, variant(program, amount_per_point=20)),
            ("a longer expiry", program, variant(program, expiry_months=24))):
        assert kinds(old, new) == [], what


def test_a_date_or_a_number_no_shop_means_is_refused_naming_the_field(tmp_path):
    from bot.program import load_program

    for old, new, field in (
            ("valid_days = 30\n", "valid_until = 9999-12-31\n", "coupons.welcome.valid_until"),
            ("valid_days = 30\n", "valid_days = 3000000\n", "coupons.welcome.valid_days"),
            ("notice_days = 30", "notice_days = 3000", "changes.notice_days"),
            ("months = 12", "months = 1200", "expiry.months")):
        path = tmp_path / "p.toml"
        path.write_text(EXAMPLE.replace(old, new, 1), "utf-8")
        with pytest.raises(ProgramError, match=re.escape(f"[{field}] must be")):
            load_program(path)


def test_a_process_starting_just_behind_another_still_finds_version_1(sessions, now):
    """The other process imported the file a moment "later" by our clock."""
    with transaction(sessions) as session:
        programs.start(session, EXAMPLE, "a.toml", now + dt.timedelta(seconds=5))
    with transaction(sessions) as session:
        program, _ = programs.start(session, EXAMPLE, "a.toml", now)
    assert program is not None and program.version == 1


def test_a_catalog_of_many_dearer_rewards_still_fits_line(program, now):
    from bot.line import messages
    from bot.line.limits import check_messages
    from bot.program import Change, Reward
    from bot.simulator.samples import context, member, summary

    many = tuple(Reward(f"r{i}", 100 + i, "nt50") for i in range(50))
    coming = tuple(Change("reward_price", "nt50", r.points, r.points + 20) for r in many)
    shop = variant(program, rewards=many, coming=coming,
                   coming_at=now + dt.timedelta(days=30))
    for lang in ("zh-TW", "en"):
        ctx = context(shop, lang)
        check_messages(messages.rewards_catalog(ctx, 500))
        check_messages(messages.points_card(ctx, summary(shop, member())))


def test_a_save_while_a_change_waits_keeps_its_date_unless_it_takes_more(cli, sessions,
                                                                         tmp_path):
    dearer = EXAMPLE.replace('points = 100\ncoupon = "nt50"', 'points = 120\ncoupon = "nt50"')
    first = tmp_path / "dearer.toml"
    first.write_text(dearer, "utf-8")
    assert cli("program", "apply", str(first)).exit_code == 0
    with sessions() as session:
        told = session.get(ProgramVersion, 2).effective_at
    more = tmp_path / "more.toml"  # the same, and a better earning rate
    more.write_text(dearer.replace("amount_per_point = 30", "amount_per_point = 25"), "utf-8")
    assert cli("program", "apply", str(more)).exit_code == 0
    with sessions() as session:
        assert session.get(ProgramVersion, 3).effective_at == told
    less = tmp_path / "less.toml"  # and now points that expire sooner too: a new notice
    less.write_text(dearer.replace("months = 12", "months = 6", 1), "utf-8")
    assert cli("program", "apply", str(less)).exit_code == 0
    with sessions() as session:
        assert session.get(ProgramVersion, 4).effective_at > told
