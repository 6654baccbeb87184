"""The clock process (`clock:` in the Procfile): runs the jobs on cron triggers.

APScheduler only decides when; what is due is decided by each job from its last completed
run in the database, so a restart catches up and a second clock sends nothing twice.
"""

from __future__ import annotations

import logging
import sys

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from bot import simulator
from bot.bootstrap import Runtime, build
from bot.config import Config, ConfigError
from bot.db import db_error, transaction
from bot.jobs import JOBS, Job, run_job
from bot.loyalty.job_runs import fail_run
from bot.loyalty.timeutil import utcnow
from bot.program import ProgramError

log = logging.getLogger("bot.clock")


def run_safely(runtime: Runtime, job: Job) -> None:
    """One run of a job, on the program version live when it starts (a newer version saved
    in the console is used from the next run, without a restart)."""
    try:
        with runtime.pinned():
            run_job(runtime.jobs(), job, utcnow())
    except Exception as exc:  # one failing run must not stop the clock; the next run catches up
        log.exception("job %s failed", job.name)
        try:  # for the owner's alerts; a database that is down cannot take it, and says so
            with transaction(runtime.sessions) as session:
                fail_run(session, job.name, utcnow(), f"{type(exc).__name__}: {exc}")
        except Exception as again:
            log.error("job %s: its failure could not be recorded: %s", job.name, db_error(again))


def main() -> None:
    """Build the runtime (no web app) and run every job on its schedule, catching up first."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        runtime = build(simulator.configure(Config.from_env()))
    except (ProgramError, ConfigError) as exc:  # one clear line, as the web process gives
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    tz = runtime.program.timezone  # a new timezone reaches the schedule at the next start
    scheduler = BlockingScheduler(timezone=tz, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
    for job in JOBS.values():
        if job.at_start:  # catch up at once on whatever fell due while we were down
            run_safely(runtime, job)
        scheduler.add_job(run_safely, CronTrigger(timezone=tz, **job.cron), args=(runtime, job),
                          id=job.name, name=job.description)
    log.info("clock started with %d jobs in %s", len(JOBS), tz.key)
    scheduler.start()


if __name__ == "__main__":
    main()
