"""`flask --app bot ARGS`, run in-process through Flask's test CLI runner.

The app is the one `flask --app bot` builds from DATABASE_URL and LOYALTY_PROGRAM alone (no
LINE channel, no simulator). A result has exit_code, stdout and stderr as the shell sees them.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import Result

from bot import create_app
from bot.config import DEFAULT_PROGRAM, Config


class Cli:
    def __init__(self, database_url: str, program: Path = DEFAULT_PROGRAM) -> None:
        self.app = create_app(Config.from_env({"DATABASE_URL": database_url,
                                               "LOYALTY_PROGRAM": str(program)}))

    def __call__(self, *args: str) -> Result:
        return self.app.test_cli_runner().invoke(args=list(args))

    def close(self) -> None:
        self.app.extensions["loyalty"].engine.dispose()

    def __enter__(self) -> Cli:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def exited_cleanly(result: Result) -> bool:
    """The command ended the way click ends one (an exit code, a message on stderr), not with
    an exception, which a terminal would show as a traceback."""
    return result.exception is None or isinstance(result.exception, SystemExit)
