"""Where rules live: adapters turn input into domain verbs and results into messages; they
do not query or write the models themselves (GUIDE: one home for every rule)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import ROOT

# a query or a write of the models, as written in this codebase
QUERY = re.compile(r"((?<![\w.])(select|update|delete)\(|session\.(add|add_all|delete|execute)\()")
ADAPTERS = ["bot/line", "bot/cli", "bot/api/routes.py", "bot/api/views.py"]


def adapter_files() -> list[Path]:
    files = []
    for name in ADAPTERS:
        path = ROOT / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_adapters_call_domain_verbs_and_never_query_or_write_models_themselves():
    found = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}"
             for f in adapter_files()
             for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
             if QUERY.search(line) and not line.lstrip().startswith("#")]
    assert found == []


def test_the_check_sees_a_query_where_one_is_written():
    assert QUERY.search("    rows = session.scalars(select(Member).where(x))")
    assert QUERY.search("    session.add(row)")
    assert QUERY.search("    session.execute(update(Coupon).values(status='void'))")
    assert not QUERY.search("    member = find_by_code(session, code)")
    assert not QUERY.search("    digest.update(image)")
    assert len(adapter_files()) > 15
