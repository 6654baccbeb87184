"""The owner's member commands (import, export, erase) and staff linking a POS record in LINE."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from bot.db import transaction
from bot.loyalty.import_file import read_csv
from bot.loyalty.member_import import import_members
from bot.loyalty.staff import add_staff
from bot.loyalty.timeutil import utcnow
from bot.models import Member
from tests.cli_helpers import exited_cleanly
from tests.line_helpers import flat, follow, post, text, user_id

POS_EXPORT = """phone,name,birthday,points,external_id
0912-345-678,陳美玲,1988/03/02,120,POS-1
+886 987 654 321,林志明,,45,POS-2
0912,王小華,1990-01-01,10,POS-3
0933111222,李大同,1990-02-30,5,POS-4
0944555666,張三,1979-12-12,-3,POS-5
0955777888,重複,1985-05-05,1,POS-1
"""


def test_import_reports_each_bad_row_and_a_rerun_adds_nothing(tmp_path, cli, sessions):
    path = tmp_path / "pos.csv"
    path.write_text(POS_EXPORT, encoding="utf-8")
    first = cli("members", "import", str(path))
    assert first.exit_code == 1  # some rows were refused: a script notices
    assert "2 imported (165 opening points), 0 already imported, 4 with errors" in first.stdout
    for line in (4, 5, 6, 7):
        assert f"pos.csv:{line}:" in first.stderr, first.stderr
    assert exited_cleanly(first), first.exc_info
    assert "Traceback" not in first.stderr
    again = cli("members", "import", str(path))
    assert "0 imported (0 opening points), 2 already imported" in again.stdout
    with sessions() as session:
        balances = dict(session.execute(select(Member.external_id, Member.points_balance)).all())
    assert balances == {"POS-1": 120, "POS-2": 45}


def test_a_file_with_wrong_columns_is_refused_whole(tmp_path, cli, sessions):
    path = tmp_path / "bad.csv"
    path.write_text("mobile,name\n0912345678,x\n", encoding="utf-8")
    result = cli("members", "import", str(path))
    assert result.exit_code != 0 and "bad.csv" in result.stderr
    assert exited_cleanly(result), result.exc_info
    assert "Traceback" not in result.stderr
    with sessions() as session:
        assert session.scalars(select(Member)).all() == []


def test_export_writes_every_member_and_erase_removes_personal_data(tmp_path, cli,
                                                                    sessions, program):
    with sessions() as session:
        import_members(session, program, read_csv(io.StringIO(POS_EXPORT)), utcnow(),
                       commit=session.commit)
    out = tmp_path / "members.csv"
    assert cli("members", "export", str(out)).exit_code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["name"] for r in rows} == {"陳美玲", "林志明"}
    code = next(r["member_code"] for r in rows if r["name"] == "陳美玲")
    erased = cli("members", "erase", code, "--yes")
    assert erased.exit_code == 0 and "erased" in erased.stdout
    with sessions() as session:
        gone = session.scalar(select(Member).where(Member.member_code == code))
        assert (gone.display_name, gone.phone, gone.birthday) == ("", None, None)
        assert gone.points_balance == 120  # the accounts keep the ledger


def test_staff_link_a_pos_record_into_the_customers_line_membership_once(
        client, app, fake_line, sessions, program):
    with sessions() as session:
        import_members(session, program, read_csv(io.StringIO(POS_EXPORT)), utcnow(),
                       commit=session.commit)
    post(client, [follow(user_id(1))])
    with transaction(sessions) as session:
        add_staff(session, user_id(9), utcnow(), name="阿明", actor="test")
        customer = session.scalars(select(Member).where(Member.line_user_id == user_id(1))).one()
        card, before = customer.member_code, customer.points_balance
    fake_line.reset()
    post(client, [text(user_id(9), f"綁定 {card} 0912 345 678")])
    assert "120 點" in flat(fake_line.replies()[-1]["messages"])
    fake_line.wait_for(lambda: fake_line.messages_to(user_id(1)))
    assert "120" in flat(fake_line.messages_to(user_id(1)))
    with sessions() as session:
        customer = session.scalars(select(Member).where(Member.member_code == card)).one()
        assert customer.points_balance == before + 120 and customer.phone == "0912345678"
    post(client, [text(user_id(9), f"link {card} 0912345678")])
    assert "already" in flat(fake_line.replies()[-1]["messages"]).lower()
    post(client, [text(user_id(1), f"綁定 {card} 0987654321")])  # a customer cannot
    with sessions() as session:
        assert session.scalar(select(Member.points_balance).where(
            Member.member_code == card)) == before + 120
