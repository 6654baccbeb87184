"""`flask --app bot api-token create|list|revoke`: the owner hands tokens to the POS."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot.cli.common import ctx
from bot.db import transaction
from bot.loyalty.api_tokens import SCOPES, create_token, list_tokens, revoke_token
from bot.loyalty.errors import TokenError
from bot.loyalty.timeutil import utcnow


@click.group("api-token", cls=AppGroup)
def api_token_group() -> None:
    """Bearer tokens for the REST API under /api/v1."""


@api_token_group.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(sorted(SCOPES)), help="Repeat for each scope the token gets.")
def create(name: str, scopes: tuple[str, ...]) -> None:
    """Make a token called NAME; it is printed once, only its hash is kept."""
    try:
        with transaction(ctx().sessions) as session:
            row, secret = create_token(session, name, list(scopes), utcnow(), actor="cli:owner")
            shown = f"token {row.id} ({row.prefix}...) for {row.name}: {row.scopes}"
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(shown, err=True)
    click.echo(secret)


@api_token_group.command("list")
def list_() -> None:
    """Every token: id, prefix, name, scopes, last use, revoked or not."""
    with ctx().sessions() as session:
        for row in list_tokens(session):
            used = row.last_used_at.isoformat(timespec="minutes") if row.last_used_at else "never"
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "live"
            click.echo(f"{row.id:>4}  {row.prefix}...  {row.name}  [{row.scopes}]  "
                       f"last used {used}  {state}")


@api_token_group.command("revoke")
@click.argument("token")
def revoke(token: str) -> None:
    """Stop TOKEN (its id or prefix from `list`) from working, at once."""
    try:
        with transaction(ctx().sessions) as session:
            row = revoke_token(session, token, utcnow(), actor="cli:owner")
            shown = f"token {row.id} ({row.name}) revoked"
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(shown)
