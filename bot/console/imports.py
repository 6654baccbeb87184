"""The console's members import (owners only): upload a POS file, follow its import.

The file goes into the database and the clock's `imports` job imports it in the background
(bot.loyalty.import_queue): a file of 200,000 rows takes minutes, far past a web request's
timeout. The upload has its own size limit (CONSOLE_IMPORT_MAX_MB), above the app's 1 MB.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from flask import Response, g, redirect, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from bot.console.views import bp, page, runtime, signed_in, who
from bot.db import transaction
from bot.loyalty import import_queue
from bot.loyalty.errors import ImportFileError
from bot.loyalty.import_reasons import in_language
from bot.loyalty.member_csv import spreadsheet_safe

SHOWN_REFUSALS = 100  # refused rows listed on the page; the download has them all
REFRESH_SECONDS = 3


@bp.before_app_request
def larger_limit() -> None:
    """The upload's own limit, set before anything reads the body (the CSRF check does)."""
    if request.endpoint == "console.import_page" and request.method == "POST":
        request.max_content_length = runtime().config.import_max_bytes


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> tuple[str, int]:
    """A body past the limit: said in words, not the server's bare 413."""
    if request.endpoint == "console.import_page":
        most = runtime().config.import_max_bytes // (1024 * 1024)
        return page("message.html", 413, message=g.t["import_too_large"].format(
            size=megabytes(request.content_length), most=most))
    return page("message.html", 413, message=g.t["form_too_large"])


def megabytes(size: int | None) -> str:
    return f"{(size or 0) / (1024 * 1024):,.1f}"


def file_size(size: int) -> str:
    return f"{megabytes(size)} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} KB"


@bp.route("/import", methods=["GET", "POST"])
@signed_in("owner", refusal="import_owner_only")
def import_page() -> Any:
    """Upload a members file (the `members import` format) and see the latest imports."""
    rt, error = runtime(), None
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            error = g.t["import_no_file"]
        else:
            try:
                import_queue.check_head(upload.stream.read(import_queue.HEAD_SIZE))
                upload.stream.seek(0)
                with transaction(rt.sessions) as db:
                    job = import_queue.queue_upload(db, upload.stream, upload.filename,
                                                    g.now, actor=who())
                return redirect(url_for("console.import_status", import_id=job.id))
            except ImportFileError as exc:
                error = exc.message(g.lang)
    with rt.sessions() as db:
        listed = import_queue.recent_imports(db)
    return page("imports.html", 400 if error else 200, listed=listed, error=error,
                most=rt.config.import_max_bytes // (1024 * 1024), tz=rt.program.timezone)


@bp.get("/import/<int:import_id>")
@signed_in("owner", refusal="import_owner_only")
def import_status(import_id: int) -> Any:
    """One import's progress (the page reloads itself until it ends) and its refused rows."""
    rt = runtime()
    with rt.sessions() as db:
        job = import_queue.find_import(db, import_id)
        if job is None:
            return page("message.html", 404, message=g.t["import_unknown"])
        refused = [(line, in_language(reason, g.lang)) for line, reason
                   in import_queue.refusals(db, import_id, SHOWN_REFUSALS)]
    going = job.status in ("queued", "running")
    return page("import.html", job=job, refused=refused, refresh=REFRESH_SECONDS if going
                else None, tz=rt.program.timezone, shown=SHOWN_REFUSALS,
                size=file_size(job.size),
                percent=100 * job.rows_done // job.rows_total if job.rows_total else 0)


@bp.get("/import/<int:import_id>/refused.csv")
@signed_in("owner", refusal="import_owner_only")
def import_refused(import_id: int) -> Any:
    """Every refused row of an import as CSV: line, reason (in the page's language)."""
    rt, lang = runtime(), g.lang
    with rt.sessions() as db:
        if import_queue.find_import(db, import_id) is None:
            return page("message.html", 404, message=g.t["import_unknown"])

    def rows() -> Iterator[str]:
        yield "\ufeff"  # a byte-order mark: Excel then reads the file as UTF-8
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", "reason"])
        with rt.sessions() as db:
            for line, reason in import_queue.refusals(db, import_id):
                writer.writerow([line, spreadsheet_safe(in_language(reason, lang))])
                if out.tell() > 64 * 1024:
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
        yield out.getvalue()
    return Response(rows(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="import-{import_id}-refused.csv"'})
