"""The live program: the shop's program kept in the database as numbered versions.

The newest version is the one in force. Every change (the owner console, `program apply`,
a rollback) goes through `save`: the same validator as the file (bot.program), then a new
row, never an edit of an old one. Two saves made from the same version cannot both win:
the version number is the table's key, so the second one is refused (ProgramChanged).

A version that takes something away from members (a dearer reward, points that expire
sooner, fewer tier benefits ...: `takeaways`) takes effect only after the program's notice
period ([changes] notice_days, 30 by default); meanwhile the live program carries it as
`coming`, which the points card and the rewards catalog announce. The live version is the
newest one in force; a version still waiting when a newer one is saved never takes effect
(the newer one holds what the owner wants now, and waits again if it takes away).

A version is stored as canonical TOML in the shape `SCHEMA` names. A version written by
older code is upgraded when it is loaded (UPGRADES), so rolling back to it still works
after new fields were added.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tomli_w
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.loyalty.errors import ProgramChanged, UnknownProgramVersion
from bot.loyalty.takeaways import takeaways
from bot.loyalty.timeutil import local_date
from bot.models import ProgramVersion
from bot.program import Program, parse_program, parse_toml

SUMMARY_LINES = 30  # a version's "what changed" names at most this many values


def _reward_keys_written(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: every reward names its key (its coupon's, where it had none), so the
    key stays when the reward's coupon is changed later."""
    rewards = data.get("rewards")
    for reward in rewards if isinstance(rewards, list) else []:  # a wrong shape: the
        if isinstance(reward, dict) and "key" not in reward and "coupon" in reward:  # validator
            reward["key"] = reward["coupon"]  # names it
    return data


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _reward_keys_written}
SCHEMA = 2  # the shape of the data this code writes


@dataclass(frozen=True)
class Version:
    number: int
    created_at: dt.datetime
    created_by: str
    source: str
    summary: str
    effective_at: dt.datetime


def upgraded(data: dict[str, Any], schema: int = 1) -> dict[str, Any]:
    """The program data in today's shape (a copy), from the shape `schema` names."""
    data = copy.deepcopy(data)
    for step in range(schema, SCHEMA):
        data = UPGRADES[step](data)
    return data


def canonical(data: dict[str, Any]) -> str:
    """The program as TOML text: what is stored and what `program export` writes (the
    file's comments and layout are not kept)."""
    return tomli_w.dumps(data)


def current_number(session: Session) -> int | None:
    """The newest version's number, in force or not yet (None before the first one): the
    one an edit starts from."""
    return session.scalar(select(func.max(ProgramVersion.version)))


def live_number(session: Session, now: dt.datetime) -> int | None:
    """The number of the version in force at `now`."""
    return session.scalar(select(func.max(ProgramVersion.version))
                          .where(ProgramVersion.effective_at <= now,
                                 ProgramVersion.superseded.is_(False)))


def numbers(session: Session, now: dt.datetime) -> tuple[int | None, int | None]:
    """(the version in force at `now`, the newest version), in one statement."""
    in_force = func.max(ProgramVersion.version).filter(
        ProgramVersion.effective_at <= now, ProgramVersion.superseded.is_(False))
    return tuple(session.execute(select(in_force, func.max(ProgramVersion.version))).one())


def load(session: Session, number: int) -> Program | None:
    """One version as a Program; None when there is no such version."""
    row = session.get(ProgramVersion, number)
    return _program(row) if row else None


def live(session: Session, now: dt.datetime) -> Program | None:
    """The program in force at `now`, carrying what the newest saved version will take away
    and when (`coming`, `coming_at`); None before the first version."""
    number = live_number(session, now)
    program = load(session, number) if number else None
    newest = current_number(session)
    row = session.get(ProgramVersion, newest) if newest else None
    if program is None or newest == number or row.superseded or row.effective_at <= now:
        return program
    coming = takeaways(program, _program(row), local_date(now, program.timezone))
    return dataclasses.replace(program, coming=tuple(coming),
                               coming_at=row.effective_at)




def _program(row: ProgramVersion) -> Program:
    data = upgraded(parse_toml(row.data, f"version {row.version}"), row.schema)
    return parse_program(canonical(data), f"version {row.version}", row.version)


def data_of(session: Session, number: int) -> dict[str, Any]:
    """A version's data in today's shape (UnknownProgramVersion if there is no such one)."""
    row = session.get(ProgramVersion, number)
    if row is None:
        raise UnknownProgramVersion(number=number)
    return upgraded(parse_toml(row.data, f"version {number}"), row.schema)


def save(session: Session, data: dict[str, Any], *, base: int | None, actor: str, source: str,
         now: dt.datetime, file_sha256: str | None = None,
         check: Callable[[Program], None] | None = None, summary: str | None = None
         ) -> Program:
    """Make `data` the live program as the version after `base` (the version the editor
    started from). ProgramError if it is not a valid program; ProgramChanged if someone
    saved another version since `base`. `check` adds the deployment's own conditions
    (Config.check_program). Flushes; the caller commits."""
    current = current_number(session)
    if current != base:
        raise changed(session, current)
    number = (base or 0) + 1
    data = upgraded(data)
    program = parse_program(canonical(data), f"version {number}", number)
    if check:
        check(program)
    before = data_of(session, base) if base else None
    effective = _effective(session, program, now)
    session.execute(update(ProgramVersion).where(  # a waiting version never takes effect now
        ProgramVersion.effective_at > now, ProgramVersion.superseded.is_(False))
        .values(superseded=True))
    when = (f"\ntakes effect {effective:%Y-%m-%d %H:%M} UTC, after the notice period: it "
            f"takes something away from members" if effective > now else "")
    row = ProgramVersion(version=number, schema=SCHEMA, data=canonical(data),
                         created_at=now, effective_at=effective,
                         created_by=actor[:200], source=source, file_sha256=file_sha256,
                         summary=(summary or describe(before, data)) + when)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another save took this number between our read and our write
        raise changed(session, number) from None
    return program


def _effective(session: Session, program: Program, now: dt.datetime) -> dt.datetime:
    """When a new version takes effect: now, or after the live program's notice period if
    it takes something away from members. A version still waiting is superseded by the new
    one; if the new one takes away nothing it did not (its changes carried over, and maybe
    more given), it keeps that version's date: members were told that date."""
    in_force = live(session, now)
    if in_force is None:
        return now
    today = local_date(now, in_force.timezone)
    taken = takeaways(in_force, program, today)
    waiting = session.scalars(select(ProgramVersion).where(
        ProgramVersion.effective_at > now, ProgramVersion.superseded.is_(False))
        .order_by(ProgramVersion.version.desc()).limit(1)).first()
    if taken and waiting is not None and set(taken) <= set(
            takeaways(in_force, _program(waiting), today)):
        return waiting.effective_at
    if {c.kind for c in taken} - {"notice_shorter"}:
        return now + dt.timedelta(days=in_force.notice_days)
    if taken:  # a shorter notice alone is announced as long as the new notice
        return now + dt.timedelta(days=program.notice_days)
    return now


def changed(session: Session, number: int | None) -> ProgramChanged:
    row = session.get(ProgramVersion, number) if number else None
    return ProgramChanged(version=number or 0, by=row.created_by if row else "?",
                          at=row.created_at.strftime("%Y-%m-%d %H:%M UTC") if row else "?")


def rollback(session: Session, number: int, *, actor: str, now: dt.datetime,
             base: int | None = None, check: Callable[[Program], None] | None = None
             ) -> Program:
    """Make version `number` live again, as a new version (history is never rewritten).
    `base`, the newest version the owner saw (default: the newest now): a newer save since
    is refused (ProgramChanged), never silently undone."""
    data = data_of(session, number)
    current = current_number(session)
    before = data_of(session, current) if current else None
    return save(session, data, base=current if base is None else base, actor=actor,
                source="rollback", now=now, check=check,
                summary=f"back to version {number}: {describe(before, data)}")


def history(session: Session, limit: int = 50) -> list[Version]:
    """The newest versions first."""
    rows = session.scalars(select(ProgramVersion).order_by(ProgramVersion.version.desc())
                           .limit(limit))
    return [Version(r.version, r.created_at, r.created_by, r.source, r.summary,
                    r.effective_at) for r in rows]


def file_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def start(session: Session, text: str, path: str, now: dt.datetime,
          check: Callable[[Program], None] | None = None) -> tuple[Program, str | None]:
    """The program at start: the live version, or, while the database has none, the file's
    text as version 1 (ProgramError if it is unusable). The note, when there is one, says
    that the file changed since it was last applied, and how to apply it."""
    program = live(session, now)
    if program is None:
        try:
            program = save(session, parse_toml(text, path), base=None, actor="file",
                           source="file", now=now, file_sha256=file_sha256(text), check=check,
                           summary=f"from {path}")
        except ProgramChanged:  # another process imported it first (version 1 never waits,
            program = load(session, 1)  # though its clock may be a little ahead of ours)
        return program, None
    applied = session.scalar(select(ProgramVersion.file_sha256)
                             .where(ProgramVersion.file_sha256.is_not(None))
                             .order_by(ProgramVersion.version.desc()).limit(1))
    if text and applied != file_sha256(text):
        return program, (f"{path} has changed since it was last applied; the live program is "
                         f"version {program.version} and the file is not read at start. To "
                         f"make the file live: flask --app bot program apply {path}")
    return program, None


def describe(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    """What changed, one value a line (`earning.amount_per_point: 30 -> 25`)."""
    if before is None:
        return "first version"
    old, new = _flat(before), _flat(after)
    lines = [f"{k}: {_show(old[k])} -> {_show(new[k])}" for k in new if k in old
             and old[k] != new[k]]
    lines += [f"{k}: added ({_show(new[k])})" for k in new if k not in old]
    lines += [f"{k}: removed" for k in old if k not in new]
    if not lines:
        return "no change"
    more = len(lines) - SUMMARY_LINES
    return "\n".join(lines[:SUMMARY_LINES] + ([f"... and {more} more"] if more > 0 else []))


def _flat(value: Any, at: str = "") -> dict[str, Any]:
    """Dotted paths to plain values; a list of tables is keyed by each one's key where it
    has one (rewards[nt50], tiers[gold]), so a reordering reads as no change."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{at}.{key}" if at else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            name = item.get("key", item.get("name", i))
            out.update(_flat(item, f"{at}[{name}]"))
        return out
    return {at: value}


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."

