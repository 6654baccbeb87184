"""`flask --app bot tags ...` and `flask --app bot campaign ...`: segments and campaigns."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot.cli.common import ctx, fail
from bot.db import transaction
from bot.jobs import send_campaign
from bot.loyalty import campaigns, segments
from bot.loyalty.errors import LoyaltyError
from bot.loyalty.members import find_by_code
from bot.loyalty.timeutil import utcnow
from bot.outbox.budget import month_budget


@click.group("tags", cls=AppGroup)
def tags_group() -> None:
    """Tags that campaigns pick members by."""


@tags_group.command("list")
def tags_list() -> None:
    """Every tag and how many members have it."""
    with ctx().sessions() as session:
        for name, automatic, count in segments.tag_counts(session):
            click.echo(f"{name:<20} {count:>9,}  {'automatic' if automatic else 'manual'}")


@tags_group.command("add")
@click.argument("tag")
@click.argument("member_codes", nargs=-1, required=True)
def tags_add(tag: str, member_codes: tuple[str, ...]) -> None:
    """Give TAG to the members with these MEMBER_CODES."""
    try:
        with transaction(ctx().sessions) as session:
            added = sum(segments.add_tag(session, find_by_code(session, code), tag, utcnow(),
                                         actor="cli:owner") for code in member_codes)
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{tag}: {added} members tagged, {len(member_codes) - added} had it already")


@tags_group.command("remove")
@click.argument("tag")
@click.argument("member_codes", nargs=-1, required=True)
def tags_remove(tag: str, member_codes: tuple[str, ...]) -> None:
    """Take TAG away from the members with these MEMBER_CODES."""
    try:
        with transaction(ctx().sessions) as session:
            removed = sum(segments.remove_tag(session, find_by_code(session, code), tag,
                                              utcnow(), actor="cli:owner")
                          for code in member_codes)
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(f"{tag}: removed from {removed} members")


@click.group("campaign", cls=AppGroup)
def campaign_group() -> None:
    """Give a coupon to a segment, or let members claim it until a cap."""


@campaign_group.command("create")
@click.argument("key")
@click.option("--template", required=True, help="The coupon template to give.")
@click.option("--name", default="", help="What customers see (default: the coupon title).")
@click.option("--segment", default="", help="A tag expression, e.g. 'vip and not dormant' "
              "(default: every active member).")
@click.option("--keyword", default=None, help="Members claim by sending this word.")
@click.option("--cap", type=int, default=None, help="At most this many claims.")
@click.option("--push", is_flag=True, help="Send each member a LINE message (billed).")
def create(key: str, template: str, name: str, segment: str, keyword: str | None,
           cap: int | None, push: bool) -> None:
    """Create campaign KEY (a draft). With --keyword or --cap it is a claim campaign."""
    try:
        with transaction(ctx().sessions) as session:
            made = campaigns.create_campaign(session, ctx().program, key,
                                             template=template, now=utcnow(), name=name,
                                             segment=segment, keyword=keyword, cap=cap,
                                             push=push)
            mode = made.mode
    except LoyaltyError as exc:
        raise fail(exc) from None
    then = f"campaign open {key}" if mode == "claim" else f"campaign send {key} --dry-run"
    click.echo(f"campaign {key} created ({mode}); next: flask --app bot {then}")


@campaign_group.command("send")
@click.argument("key")
@click.option("--dry-run", is_flag=True, help="Only say whom it reaches and what it costs.")
def send(key: str, dry_run: bool) -> None:
    """Give campaign KEY's coupon to its segment (and queue the messages with --push)."""
    state = ctx()
    try:
        with state.sessions() as session:
            campaign = campaigns.find_campaign(session, key)
            reach = campaigns.reach(session, campaign)
        if dry_run:
            click.echo(f"{key}: {reach.members:,} members get \"{campaign.name}\"; "
                       f"{reach.pushes:,} LINE pushes ({_budget(reach.pushes)})")
            return
        click.echo(send_campaign(state.jobs(), key, utcnow()))
        if campaign.push and not state.config.line_configured:
            click.echo("LINE is not configured: the messages wait in the outbox")
    except LoyaltyError as exc:
        raise fail(exc) from None


def _budget(pushes: int) -> str:
    """What those pushes mean against this month's budget and LINE's free quota."""
    state = ctx()
    with state.sessions() as session:
        figures = month_budget(session, state.program, utcnow(), state.line.pushes_left
                               if state.config.line_configured else None)
    return figures.describe(pushes)


@campaign_group.command("open")
@click.argument("key")
def open_(key: str) -> None:
    """Let members claim campaign KEY (by its keyword or a button)."""
    _set(key, "open")


@campaign_group.command("close")
@click.argument("key")
def close(key: str) -> None:
    """Stop claims of campaign KEY."""
    _set(key, "closed")


def _set(key: str, status: str) -> None:
    try:
        with transaction(ctx().sessions) as session:
            campaign = campaigns.find_campaign(session, key, lock=True)
            campaigns.set_status(session, campaign, status, utcnow())
            shown = f"{key} is {status}" + (f"; members send {campaign.keyword!r} to claim"
                                            if status == "open" and campaign.keyword else "")
    except LoyaltyError as exc:
        raise fail(exc) from None
    click.echo(shown)


@campaign_group.command("list")
def list_() -> None:
    """Every campaign: mode, status, template, segment, claims."""
    with ctx().sessions() as session:
        for c in campaigns.all_campaigns(session):
            claims = f"  claimed {c.claimed}/{c.cap if c.cap is not None else '∞'}" \
                if c.mode == "claim" else ""
            click.echo(f"{c.key:<20} {c.mode:<6} {c.status:<7} {c.template:<16} "
                       f"[{c.segment or 'everyone'}]{claims}")

