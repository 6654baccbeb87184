"""The clock process (`clock:` in the Procfile): runs the jobs on cron triggers.

APScheduler only decides when; what is due is decided by each job from its last completed
run in the database, so a restart catches up and a second clock sends nothing twice.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.jobs import JOBS, Job, Runtime, run_job
from bot.loyalty.timeutil import utcnow

log = logging.getLogger("bot.clock")


def runtime(state: dict[str, Any]) -> Runtime:
    """The jobs' view of a created app's state."""
    from bot.line.context import render_context
    from bot.line.sender import send_pending

    config, program, sessions = state["config"], state["program"], state["sessions"]
    deliver = (partial(send_pending, sessions, state["line"], program)
               if config.line_configured else None)
    return Runtime(program=program, sessions=sessions,
                   render=partial(render_context, config, program), deliver=deliver)


def run_safely(rt: Runtime, job: Job) -> None:
    try:
        run_job(rt, job, utcnow())
    except Exception:  # one failing run must not stop the clock; the next run catches up
        log.exception("job %s failed", job.name)


def main() -> None:
    from bot import create_app

    app = create_app()
    rt = runtime(app.extensions["loyalty"])
    tz = rt.program.timezone
    scheduler = BlockingScheduler(timezone=tz, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
    for job in JOBS.values():
        run_safely(rt, job)  # catch up at once on whatever fell due while we were down
        scheduler.add_job(run_safely, CronTrigger(timezone=tz, **job.cron), args=(rt, job),
                          id=job.name, name=job.description)
    log.info("clock started with %d jobs in %s", len(JOBS), tz.key)
    scheduler.start()


if __name__ == "__main__":
    main()
