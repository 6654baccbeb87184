"""build(config) -> Runtime: everything the web app, the clock and the CLI share, made once.

The web app keeps its Runtime in `app.extensions["loyalty"]`; the clock builds one without
any Flask app (bot.scheduler); CLI commands reach the app's (bot.cli.common.ctx).

The program is the database's live version (bot.loyalty.programs), looked up at most every
CHECK_EVERY seconds per process, so an owner's change reaches every web worker and the
clock without a restart. A request or a job run pins the version it started with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Config
from bot.db import autocommit, bounded, make_engine, make_sessionmaker, reading
from bot.jobs import JobContext
from bot.line.client import LineClient
from bot.line.context import render_context
from bot.line.formatting import RenderContext
from bot.loyalty import programs
from bot.loyalty.timeutil import utcnow
from bot.outbox.sender import send_pending
from bot.program import Program, ProgramError, parse_program, read_text

# LINE takes an answer slower than about 2 s for a timeout and may stop sending to a server
# that keeps timing out: a lock held longer than this makes a webhook event a 503 to redeliver
WEBHOOK_LOCK_WAIT = 1.5
CHECK_EVERY = 2.0  # seconds between two looks for a new program version, per process

log = logging.getLogger("bot")
_pinned: ContextVar[Program | None] = ContextVar("pinned_program", default=None)


class LiveProgram:
    """The program in force in this process: the newest version, looked up at most every
    CHECK_EVERY seconds (one indexed query), so the webhook's hot path pays nothing."""

    def __init__(self, sessions: sessionmaker[Session], program: Program,
                 clock: Callable[[], float] = time.monotonic):
        self.sessions, self.clock, self._program = sessions, clock, program
        self._looked = clock()
        self._seen: tuple[int | None, int | None] | None = None  # (live, newest) last looked
        self._lock = threading.Lock()

    def current(self) -> Program:
        if self.clock() - self._looked < CHECK_EVERY:
            return self._program
        with self._lock:
            if self.clock() - self._looked >= CHECK_EVERY:
                self._looked = self.clock()
                self._refresh()
        return self._program

    def replace(self, program: Program) -> None:
        """Put `program` in force in this process, unsaved, until the next version."""
        with self._lock:
            self._program = program

    def refresh(self) -> None:
        """Look now (after this process saved a version), not in CHECK_EVERY."""
        with self._lock:
            self._looked = self.clock()
            self._refresh()

    def _refresh(self) -> None:
        try:
            with self.sessions() as session:
                seen = programs.numbers(session, utcnow())
                if self._seen is None:  # the first look: is ours the live one, with what waits?
                    moved = seen[0] != self._program.version or (
                        seen[1] != seen[0] and not self._program.coming)
                else:
                    moved = seen != self._seen
                self._seen = seen
                if moved and seen[0] is not None:
                    self._program = programs.live(session, utcnow()) or self._program
                    log.info("program version %d is live", self._program.version)
        except (SQLAlchemyError, ProgramError) as exc:  # keep serving the version we have
            log.error("could not look for a new program version: %s", exc)


@dataclass
class Runtime:
    config: Config
    live: LiveProgram
    engine: Engine
    sessions: sessionmaker[Session]
    webhook_sessions: sessionmaker[Session]  # the same pool, lock waits bounded
    line: LineClient
    # the webhook's card screens read here (db.reading), then claim the event and count the
    # tap on screen_claims (taps.claim_and_count); None: they run whole in webhook_sessions
    screen_sessions: sessionmaker[Session] | None = None
    screen_claims: Engine | None = None
    notes: list[str] = field(default_factory=list)  # said once at start (a changed file)

    @property
    def program(self) -> Program:
        """The version pinned by the request or job run in progress, else the live one."""
        return _pinned.get() or self.live.current()

    @program.setter
    def program(self, program: Program) -> None:
        """Put a variant in force in this process only, unsaved (tests try variants so); it
        gives way to the next version saved."""
        self.live.replace(program)

    def pin(self) -> Token:
        """Use one version from here until `unpin` (a request, a job run)."""
        return _pinned.set(self.live.current())

    @staticmethod
    def unpin(token: Token) -> None:
        _pinned.reset(token)

    @contextmanager
    def pinned(self) -> Iterator[Program]:
        token = self.pin()
        try:
            yield self.program
        finally:
            self.unpin(token)

    def render(self, language: str) -> RenderContext:
        """How to write to a member who reads `language`."""
        return render_context(self.config, self.program, language)

    def jobs(self) -> JobContext:
        """The scheduled jobs' view: with a LINE channel, the sender delivers pushes."""
        deliver = (partial(send_pending, self.sessions, self.line, self.program)
                   if self.config.line_configured else None)
        return JobContext(program=self.program, sessions=self.sessions, render=self.render,
                          deliver=deliver)

    def close(self) -> None:
        self.engine.dispose()


def build(config: Config) -> Runtime:
    """Open the database's pool and find the live program (ProgramError if it is unusable)."""
    engine = make_engine(config.database_url)
    sessions = make_sessionmaker(engine)
    program, note = _starting_program(config, sessions)
    config.check_program(program)
    runtime = Runtime(config=config, live=LiveProgram(sessions, program), engine=engine,
                      sessions=sessions,
                      webhook_sessions=make_sessionmaker(bounded(engine, WEBHOOK_LOCK_WAIT)),
                      line=LineClient(config, aggregation_units=program.aggregation_units),
                      screen_sessions=reading(engine, WEBHOOK_LOCK_WAIT),
                      screen_claims=autocommit(engine, WEBHOOK_LOCK_WAIT, synced=False),
                      notes=[note] if note else [])
    for line in runtime.notes:
        log.warning(line)
    return runtime


def _starting_program(config: Config, sessions: sessionmaker[Session]
                      ) -> tuple[Program, str | None]:
    """The live version; the file becomes version 1 while the database holds none. Before
    the database is migrated (the release step itself), the file alone."""
    path = config.program_path
    try:
        with sessions() as session:
            live = programs.current_number(session)
    except SQLAlchemyError:  # no program_versions table yet: `db upgrade` is about to run
        return parse_program(read_text(path), path), None
    if live is None:
        text = read_text(path)
        with sessions() as session, session.begin():
            return programs.start(session, text, path, utcnow(), check=config.check_program)
    try:
        text = read_text(path)
    except ProgramError:  # the file is not needed any more
        text = ""
    with sessions() as session:
        return programs.start(session, text, path, utcnow())
