"""`flask --app bot jobs ...` and `flask --app bot report`: the clock's jobs by hand, and
the analytics report."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup, with_appcontext

from bot.cli.common import ctx, parse_now
from bot.jobs import JOBS, run_job
from bot.loyalty.job_runs import last_runs
from bot.loyalty.report import build_report, report_period
from bot.loyalty.timeutil import utcnow
from bot.report_format import render_csv, render_text


@click.group("jobs", cls=AppGroup)
def jobs_group() -> None:
    """List the scheduled jobs or run one by hand."""


@jobs_group.command("list")
def jobs_list() -> None:
    """Every job with its schedule (shop time) and its last run."""
    with ctx().sessions() as session:
        runs = last_runs(session)
    for job in JOBS.values():
        row = runs.get(job.name)
        when = row.last_completed_at.isoformat() if row and row.last_completed_at else "never"
        cron = " ".join(f"{k}={v}" for k, v in job.cron.items())
        click.echo(f"{job.name:<16} {cron:<20} last {when}  {job.description}")
        if row and row.last_summary:
            click.echo(f"{'':<16} {row.last_summary}")


@jobs_group.command("run")
@click.argument("name")
@click.option("--now", "when", help="Act as of this ISO-8601 time (default: now).")
def jobs_run(name: str, when: str | None) -> None:
    """Run job NAME once, as of --now."""
    if name not in JOBS:
        raise click.ClickException(f"no job {name!r}; jobs: {', '.join(JOBS)}")
    click.echo(run_job(ctx().jobs(), JOBS[name], parse_now(when)))


@click.command("report")
@with_appcontext
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First local day (default: 29 days before --to).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last local day, included (default: today).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text")
def report_command(first, last, fmt: str) -> None:
    """How the program is doing: members, repurchase, coupons, points, stamps, tiers, pushes."""
    state, now = ctx(), utcnow()
    program = state.program
    try:
        start, end = report_period(program, first and first.date(), last and last.date(), now)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with state.sessions() as session:
        report = build_report(session, program, start, end, now,
                              quota=program.allowance)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_csv(report) if fmt == "csv" else render_text(report), nl=fmt == "text")
