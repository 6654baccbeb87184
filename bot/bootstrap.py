"""build(config) -> Runtime: everything the web app, the clock and the CLI share, made once.

The web app keeps its Runtime in `app.extensions["loyalty"]`; the clock builds one without
any Flask app (bot.scheduler); CLI commands reach the app's (bot.cli.common.ctx).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Config
from bot.db import bounded, make_engine, make_sessionmaker
from bot.jobs import JobContext
from bot.line.client import LineClient
from bot.line.context import render_context
from bot.line.formatting import RenderContext
from bot.outbox.sender import send_pending
from bot.program import Program, load_program

# LINE takes an answer slower than about 2 s for a timeout and may stop sending to a server
# that keeps timing out: a lock held longer than this makes a webhook event a 503 to redeliver
WEBHOOK_LOCK_WAIT = 1.5


@dataclass
class Runtime:
    config: Config
    program: Program
    engine: Engine
    sessions: sessionmaker[Session]
    webhook_sessions: sessionmaker[Session]  # the same pool, lock waits bounded
    line: LineClient

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
    """Load the program (ProgramError if it is unusable) and open the database's pool."""
    program = load_program(config.program_path)
    config.check_program(program)
    engine = make_engine(config.database_url)
    return Runtime(config=config, program=program, engine=engine,
                   sessions=make_sessionmaker(engine),
                   webhook_sessions=make_sessionmaker(bounded(engine, WEBHOOK_LOCK_WAIT)),
                   line=LineClient(config, aggregation_units=program.aggregation_units))
