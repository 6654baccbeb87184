"""`flask --app bot richmenu images|check|deploy`: the LINE rich menus in richmenu/."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from bot.cli.common import ctx
from bot.line.richmenu import MENUS_DIR, ROLES, load_menus, publish, versioned_name
from bot.line.richmenu_art import RichMenuError, render_image
from bot.loyalty.staff import active_staff

richmenu_group = AppGroup("richmenu", help="Draw and deploy the LINE rich menus.")
_dir_option = click.option("--dir", "menus_dir", type=click.Path(file_okay=False, path_type=Path),
                           default=MENUS_DIR, show_default=True, help="Folder of the menus.")


@richmenu_group.command("images", with_appcontext=False)
@_dir_option
@click.option("--font", "font_path", help="A CJK .ttf/.otf/.ttc (default: search the system).")
def images_command(menus_dir: Path, font_path: str | None) -> None:
    """Redraw richmenu/*.png from richmenu/*.json (needs a CJK font; commit the result)."""
    for role in ROLES:
        menu = json.loads((menus_dir / f"{role}.json").read_text(encoding="utf-8"))
        try:
            png = render_image(menu, font_path=font_path)
        except RichMenuError as exc:
            raise click.ClickException(str(exc)) from None
        (menus_dir / f"{role}.png").write_bytes(png)
        click.echo(f"{menus_dir / f'{role}.png'}: {len(png):,} bytes")


@richmenu_group.command("check", with_appcontext=False)
@_dir_option
def check_command(menus_dir: Path) -> None:
    """Check the menus and images against LINE's limits without calling LINE."""
    try:
        menus = load_menus(menus_dir)
    except RichMenuError as exc:
        raise click.ClickException(str(exc)) from None
    for menu, image in menus.values():
        click.echo(f"{versioned_name(menu, image)}: OK")


@richmenu_group.command("deploy")
@_dir_option
def deploy_command(menus_dir: Path) -> None:
    """Upload the menus, make the customer one the default and link staff to theirs."""
    state = ctx()
    config = state.config
    if config.simulator:
        raise click.ClickException(
            "The LINE simulator is on (SIMULATOR=1): it shows richmenu/*.json itself. "
            "Set the channel variables and unset SIMULATOR to deploy.")
    if not config.line_channel_access_token:
        raise click.ClickException("LINE_CHANNEL_ACCESS_TOKEN is not set: cannot reach LINE.")
    with state.sessions() as session:
        staff = [w.line_user_id for w in active_staff(session) if w.line_user_id]
    try:
        report = publish(config, staff, menus_dir)
    except RichMenuError as exc:
        raise click.ClickException(str(exc)) from None
    for label, names in (("created", report.created), ("reused", report.reused),
                         ("deleted", report.deleted)):
        for name in names:
            click.echo(f"{label}: {name}")
    click.echo(f"default: {report.menu_ids['customer']}; staff menu linked to "
               f"{len(report.linked)} of {len(report.linked) + len(report.link_failures)}")
    if report.link_failures:
        raise click.ClickException("could not link: " + ", ".join(
            f"{user} ({why})" for user, why in report.link_failures.items()))
