"""Where rules live: adapters turn input into domain verbs and results into messages; they
do not query or write the models themselves (GUIDE: one home for every rule)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bot.config import ROOT

# a query or a write of the models, as written in this codebase
QUERY = re.compile(r"((?<![\w.])(select|update|delete)\(|(session|db)\.(add|add_all|delete|execute|"
                   r"merge)\(|\.get\([A-Z]\w*, )")
ADAPTERS = ["bot/line", "bot/cli", "bot/api", "bot/console", "bot/jobs.py",
            "bot/simulator/views.py"]


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
    assert QUERY.search("    owner = call.session.get(Member, view.coupon.member_id)")
    assert QUERY.search("    account = db.merge(g.who)")
    assert not QUERY.search('    token = session.get("sid")')
    assert len(adapter_files()) > 15


def lazy_imports_without_a_reason(path: Path) -> list[str]:
    """Imports of bot modules inside a function with no comment on or just above the line:
    a hidden import loop looks exactly like this."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for func in ast.walk(ast.parse("\n".join(lines), str(path))):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(n == "bot" or n.startswith("bot.") for n in names):
                first = node.lineno - 1  # the reason may head a block of imports
                while first > 0 and lines[first - 1].lstrip().startswith(("from ", "import ")):
                    first -= 1
                here, above = lines[node.lineno - 1], lines[first - 1]
                if "#" not in here and not above.lstrip().startswith("#"):
                    found.append(f"{path.parent.name}/{path.name}:{node.lineno}: "
                                 f"{here.strip()}")
    return found


def test_a_bot_module_imported_inside_a_function_says_why():
    assert [hit for f in sorted((ROOT / "bot").rglob("*.py"))
            for hit in lazy_imports_without_a_reason(f)] == []


def test_the_lazy_import_check_sees_one_without_a_reason(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    x = 1\n    from bot.app import create_app\n"
                                   "def g():\n    # the app loads Flask: only when asked\n"
                                   "    from bot.app import create_app\n")
    assert [hit.split(": ")[1] for hit in lazy_imports_without_a_reason(tmp_path / "m.py")
            ] == ["from bot.app import create_app"]
