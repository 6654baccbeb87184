"""Members files uploaded in the console, imported in the background.

The web process stores the upload in the database (`queue_upload`: 1 MB parts, the one
storage every process of a Procfile PaaS shares; its local disk is neither shared nor kept)
and returns at once. The clock's `imports` job claims the oldest queued file
(`claim_next`), copies it part by part to its own temporary file and imports it with
import_members, a batch of 500 rows per transaction (`run_import`). Each batch's members,
its refused rows and the import's progress are committed together, so after a crash the
counts are exactly what is in the database. A claim whose heartbeat stopped for
STALE_AFTER (its process died: a deploy, a restart) is taken over by the next run, which
carries on after the last committed line; members are never created twice, because the
next run starts after that line and because import_members skips an external id already
in the database. A file that fails MAX_ATTEMPTS times is given up on, with the reason.
Once done, the file's bytes are deleted: the members are in the database, and an erased
member's phone should not live on in an old upload.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db import transaction
from bot.loyalty import audit
from bot.loyalty.errors import ImportFileError, LoyaltyError
from bot.loyalty.import_file import read_csv
from bot.loyalty.member_import import BATCH_SIZE, ImportResult, import_members
from bot.loyalty.timeutil import utcnow
from bot.models import MemberImport, MemberImportPart, MemberImportRefusal
from bot.program import Program

PART_SIZE = 1024 * 1024  # bytes per stored part
HEAD_SIZE = 64 * 1024  # the header line must be within the file's first 64 KB
STALE_AFTER = dt.timedelta(minutes=3)  # a claim without a batch for this long is taken over
MAX_ATTEMPTS = 3
UPLOADED, FINISHED = "members.import.upload", "members.import.finish"  # audit actions


class ImportTakenOver(Exception):
    """Another runner claimed this import (this one was thought dead): stop, commit nothing."""


def check_head(head: bytes) -> None:
    """The file's first line is a members file's header, in UTF-8: else ImportFileError,
    while the owner is still on the page (the rest is checked in the background)."""
    line = head.split(b"\n", 1)[0]
    if b"\n" not in head and len(head) >= HEAD_SIZE:
        raise ImportFileError(detail="no header line in the first 64 KB")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(detail="not UTF-8 text: save the file as UTF-8 CSV") from None
    try:
        read_csv(io.StringIO(text))
    except csv.Error as exc:
        raise ImportFileError(detail=str(exc)) from None


def queue_upload(session: Session, stream: BinaryIO, filename: str, now: dt.datetime, *,
                 actor: str) -> MemberImport:
    """Store an uploaded file (already checked by check_head) for the clock to import.

    Read and stored 1 MB at a time, in the caller's transaction: a failed upload leaves
    nothing behind."""
    job = MemberImport(filename=filename[:200] or "members.csv", size=0, uploaded_by=actor,
                       uploaded_at=now, status="queued", attempts=0, rows_done=0,
                       lines_done=0, imported=0, skipped=0, refused=0, points=0, failure="")
    session.add(job)
    session.flush()
    seq = 0
    while block := stream.read(PART_SIZE):
        part = MemberImportPart(import_id=job.id, seq=seq, data=block)
        session.add(part)
        session.flush()
        session.expunge(part)  # one part in memory at a time
        job.size += len(block)
        seq += 1
    audit.record(session, UPLOADED, member_id=None, actor=actor, at=now, import_id=job.id,
                 filename=job.filename, size=job.size)
    session.flush()
    return job


def claim_next(session: Session, now: dt.datetime) -> tuple[int, str] | None:
    """The oldest import waiting (or whose runner stopped), claimed for this process: its id
    and the claim's token; None when there is none. One that already failed MAX_ATTEMPTS
    times is marked failed instead."""
    stale = now - STALE_AFTER
    waiting = or_(MemberImport.status == "queued",
                  (MemberImport.status == "running") & (MemberImport.heartbeat_at < stale))
    while (found := session.scalar(select(MemberImport.id).where(waiting)
                                   .order_by(MemberImport.id).limit(1))) is not None:
        token = secrets.token_hex(16)
        claimed = session.execute(
            update(MemberImport).where(MemberImport.id == found, waiting)
            .values(status="running", runner=token, heartbeat_at=now,
                    attempts=MemberImport.attempts + 1,
                    started_at=func.coalesce(MemberImport.started_at, now))
            .execution_options(synchronize_session=False)).rowcount
        if not claimed:  # another runner was quicker: look again
            continue
        job = session.get(MemberImport, found, populate_existing=True)
        if job.attempts > MAX_ATTEMPTS:
            _finish(session, job, now, failure=f"stopped {MAX_ATTEMPTS} times before the end")
            continue
        return found, token
    return None


def run_import(sessions: sessionmaker[Session], program: Program, import_id: int, token: str,
               *, batch_size: int = BATCH_SIZE, clock: Callable[[], dt.datetime] = utcnow
               ) -> str:
    """Import a claimed file, carrying on after its last committed line; what it did, in
    words. A file that cannot be read is marked failed with the reason (nothing imported
    from it); ImportTakenOver if another runner claimed it meanwhile."""
    with tempfile.TemporaryFile() as raw:
        for block in _parts(sessions, import_id):
            raw.write(block)
        raw.seek(0)
        stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        with sessions() as session:
            job = session.get(MemberImport, import_id)
            try:
                rows = read_csv(stream)
            except (ImportFileError, UnicodeDecodeError) as exc:
                reason = str(exc.context["detail"]) if isinstance(exc, LoyaltyError) else \
                    f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as " \
                    "UTF-8 CSV"
                _finish(session, job, clock(), failure=reason)
                session.commit()
                return f"import {import_id}: {reason}"
            _beat(session, import_id, token, clock(), rows_total=len(rows))
            session.commit()
            _batches(session, program, job, token, rows, batch_size, clock)
            _finish(session, job, clock())
            session.commit()
            return (f"import {import_id}: {job.rows_done:,} of {job.rows_total:,} rows, "
                    f"{job.imported:,} imported, {job.skipped:,} already there, "
                    f"{job.refused:,} refused")


def _parts(sessions: sessionmaker[Session], import_id: int) -> Iterator[bytes]:
    """The file's parts in order, one in memory at a time, each read in a transaction of its
    own (on SQLite every transaction holds the write lock: the webhook waits for one part,
    not the whole file)."""
    with sessions() as session:
        count = session.scalar(select(func.count())
                               .where(MemberImportPart.import_id == import_id)) or 0
    for seq in range(count):
        with sessions() as session:
            yield session.scalar(select(MemberImportPart.data).where(
                MemberImportPart.import_id == import_id, MemberImportPart.seq == seq))


def _batches(session: Session, program: Program, job: MemberImport, token: str, rows: object,
             batch_size: int, clock: Callable[[], dt.datetime]) -> None:
    """import_members from the last committed line on; each batch commits its members, its
    refused rows and the import's counts together, while the claim is still this one's."""
    base = {name: getattr(job, name) for name in ("rows_done", "imported", "skipped",
                                                   "refused", "points")}
    import_id, now = job.id, clock()
    result = ImportResult(keep=lambda line, reason: session.add(
        MemberImportRefusal(import_id=import_id, line=line, reason=reason[:2000])))

    def commit() -> None:
        _beat(session, import_id, token, clock(), lines_done=result.last_line,
              rows_done=base["rows_done"] + result.rows,
              imported=base["imported"] + result.imported,
              skipped=base["skipped"] + result.skipped,
              refused=base["refused"] + result.refused, points=base["points"] + result.points)
        session.commit()

    import_members(session, program, rows, now, commit=commit, actor=job.uploaded_by,
                   batch_size=batch_size, result=result, start_after=job.lines_done)
    session.refresh(job)


def _beat(session: Session, import_id: int, token: str, now: dt.datetime, **values: object
          ) -> None:
    """Record progress (and that this runner is alive), if the claim is still ours."""
    changed = session.execute(
        update(MemberImport).where(MemberImport.id == import_id, MemberImport.runner == token,
                                   MemberImport.status == "running")
        .values(heartbeat_at=now, **values)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        session.rollback()
        raise ImportTakenOver(import_id)


def _finish(session: Session, job: MemberImport, now: dt.datetime, failure: str = "") -> None:
    """Done (or failed, with why): the file's bytes go, the counts and refused rows stay."""
    session.execute(delete(MemberImportPart).where(MemberImportPart.import_id == job.id))
    job.status, job.failure, job.finished_at, job.runner = \
        ("failed" if failure else "done"), failure, now, None
    audit.record(session, FINISHED, member_id=None, actor=job.uploaded_by, at=now,
                 import_id=job.id, status=job.status, rows=job.rows_done,
                 imported=job.imported, skipped=job.skipped, refused=job.refused)
    session.flush()


def run_waiting(sessions: sessionmaker[Session], program: Program,
                clock: Callable[[], dt.datetime] = utcnow) -> str:
    """The clock's `imports` job: import every waiting file, oldest first."""
    said = []
    while True:
        with transaction(sessions) as session:
            claim = claim_next(session, clock())
        if claim is None:
            return "; ".join(said) or "no file waiting"
        try:
            said.append(run_import(sessions, program, *claim, clock=clock))
        except ImportTakenOver:
            said.append(f"import {claim[0]}: taken over by another process")


def recent_imports(session: Session, limit: int = 20) -> list[MemberImport]:
    return list(session.scalars(select(MemberImport).order_by(MemberImport.id.desc())
                                .limit(limit)))


def find_import(session: Session, import_id: int) -> MemberImport | None:
    """The import with this id, or None (also for an id no database column could hold)."""
    return session.get(MemberImport, import_id) if 0 < import_id < 2 ** 63 else None


def refusals(session: Session, import_id: int, limit: int | None = None
             ) -> Iterator[tuple[int, str]]:
    """The import's refused rows by line (all of them, streamed, without a limit)."""
    query = (select(MemberImportRefusal.line, MemberImportRefusal.reason)
             .where(MemberImportRefusal.import_id == import_id)
             .order_by(MemberImportRefusal.line))
    if limit is not None:
        query = query.limit(limit)
    for line, reason in session.execute(query.execution_options(yield_per=1000)):
        yield int(line), str(reason)
