"""The database a benchmark script runs on: a temporary SQLite file, or, when the script is
given a PostgreSQL URL as its first argument, a schema of its own there, dropped at the end."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable

from bot import migrate
from bot.config import normalize_database_url
from bot.db import scratch_schema


def run_on_scratch(run: Callable[[str], None]) -> None:
    """Migrate the scratch database, call run(url) on it, then remove it."""
    if len(sys.argv) < 2:
        url, cleanup = f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'bench.db')}", None
    else:
        url, cleanup = scratch_schema(normalize_database_url(sys.argv[1]),
                                      f"bench_{os.getpid()}")
    try:
        migrate.upgrade(url)
        run(url)
    finally:
        if cleanup:
            cleanup()
