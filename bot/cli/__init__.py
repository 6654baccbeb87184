"""Owner and deploy commands, `flask --app bot GROUP ...`: one module per group."""

from __future__ import annotations

from flask import Flask

from bot.cli.campaigns import campaign_group, tags_group
from bot.cli.db import db_group
from bot.cli.insight import insight_command
from bot.cli.jobs import jobs_group, report_command
from bot.cli.members import members_group, points_group
from bot.cli.owners import owner_group
from bot.cli.program import program_group
from bot.cli.richmenu import richmenu_group
from bot.cli.staff import staff_group
from bot.cli.tokens import api_token_group


def register_cli(app: Flask) -> None:
    for command in (db_group, program_group, points_group, members_group, staff_group,
                    richmenu_group, jobs_group, api_token_group, report_command, tags_group,
                    campaign_group, owner_group, insight_command):
        app.cli.add_command(command)
