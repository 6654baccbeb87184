"""Quick start on a fresh clone, with nothing but Python 3.11+.

    python3 -m bot.dev serve   # make .venv, migrate a SQLite database, start the bot and
                               # the LINE simulator (--port N, or PORT; 5000 by default)
    python3 -m bot.dev test    # make .venv, run the whole test suite (extra args go to pytest)

Standard library only: this runs before any dependency is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv() -> None:
    """Create .venv and install the project with its test tools, again only when they change."""
    stamp = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    marker = VENV / f".installed-{stamp}"
    if marker.exists():
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing dependencies into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    marker.touch()


def run(*args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=ROOT, env=env).returncode


def serve_env(args: list[str], environ: dict[str, str]) -> dict[str, str]:
    """The environment every `serve` step runs with: the port (`--port N`, else PORT, else
    5000) and SIMULATOR=1 unless a real LINE channel is configured, for the migration too,
    so no step logs that /callback answers 503 while the simulator holds the channel."""
    port = environ.get("PORT", "5000")
    if "--port" in args:
        at = args.index("--port")
        if at + 1 >= len(args) or not args[at + 1].isdigit():
            raise SystemExit("usage: python3 -m bot.dev serve [--port N]")
        port = args[at + 1]
    channel = environ.get("LINE_CHANNEL_SECRET") and environ.get("LINE_CHANNEL_ACCESS_TOKEN")
    return {**environ, "PORT": port,
            "SIMULATOR": environ.get("SIMULATOR") or ("0" if channel else "1")}


def serve(args: list[str] = ()) -> int:
    env = serve_env(list(args), dict(os.environ))
    code = run("flask", "--app", "bot", "db", "upgrade", env=env)
    if code:
        return code
    port = env["PORT"]
    print(f"the bot is starting on http://127.0.0.1:{port} (health: /healthz); Ctrl-C stops it")
    if env["SIMULATOR"] == "1":
        print(f"LINE simulator: http://127.0.0.1:{port}/simulator "
              f"(template gallery: /simulator/gallery)")
        run("flask", "--app", "bot", "owner", "demo", env=env)
    return run("flask", "--app", "bot", "run", "--port", port, "--with-threads", env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("serve", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    if argv[0] == "serve":
        return serve(argv[1:])
    return run("python", "-m", "pytest", *argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
