"""`flask --app bot insight`: LINE's own statistics of the pushes, per aggregation unit.

With `[messaging] aggregation_units = true` every push and multicast names its unit (its
kind, or `campaign_<key>`); LINE counts who saw and tapped each. LINE keeps its days in
UTC+9, allows at most 30 days a question, and shows no figure under 20 people."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext

from bot.cli.common import ctx

LINE_DAY = dt.timezone(dt.timedelta(hours=9))  # the days LINE's statistics are kept in
MOST_DAYS = 30


@click.command("insight")
@with_appcontext
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day, LINE's (UTC+9) (default: the 1st of this month).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day, included (default: today, UTC+9).")
def insight_command(first, last) -> None:
    """Per unit: people who saw the messages and who tapped them."""
    state = ctx()
    if not state.config.line_configured:
        raise click.ClickException("the LINE channel is not configured: LINE_CHANNEL_SECRET "
                                   "and LINE_CHANNEL_ACCESS_TOKEN")
    today = dt.datetime.now(LINE_DAY).date()
    last_day = last.date() if last else today
    first_day = first.date() if first else last_day.replace(day=1)
    if first_day > last_day or (last_day - first_day).days > MOST_DAYS:
        raise click.ClickException(f"--from must be on or before --to and at most {MOST_DAYS} "
                                   f"days before it (LINE's limit), not {first_day} to "
                                   f"{last_day}")
    if not state.program.aggregation_units:
        click.echo("[messaging] aggregation_units is off: pushes name no unit, so LINE "
                   "counts none. Units LINE knows of this month are still listed.")
    units = state.line.units_this_month()
    if not units:
        click.echo("LINE has counted no aggregation unit this month.")
        return
    click.echo(f"LINE's statistics {first_day} to {last_day} (UTC+9); '<20' is a figure "
               "LINE hides below 20 people")
    click.echo(f"{'unit':<32}{'saw':>8}{'tapped':>8}")
    for unit in units:
        found = state.line.unit_statistics(unit, first_day, last_day)
        overview = (found or {}).get("overview") or {}
        saw, tapped = (_shown(overview.get(k), found) for k in ("uniqueImpression",
                                                                 "uniqueClick"))
        click.echo(f"{unit:<32}{saw:>8}{tapped:>8}")


def _shown(value: int | None, found: dict | None) -> str:
    if found is None:
        return "n/a"
    return "<20" if value is None else f"{value:,}"
