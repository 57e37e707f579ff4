"""Report jobs: claim the record, stream the data into a temporary file, upload it, mark it done.

A job delivered twice runs once (the claim); a cancelled report stops at its next chunk; a storage or
database hiccup is retried with back-off and the last failure is written on the record. What each
kind builds is registered in gradeflow/reports/kinds.py.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from arq import Retry
from sqlalchemy.exc import DBAPIError, OperationalError

from gradeflow.core.names import safe_name
from gradeflow.jobs import WorkerContext
from gradeflow.notify import mail
from gradeflow.readside.service import course_data
from gradeflow.reports.builders import Counter, Gone, Output
from gradeflow.reports.kinds import KINDS
from gradeflow.reports.repository.jobs import ClaimedReport
from gradeflow.reports.service import reports
from gradeflow.storage.s3 import TRANSIENT

log = logging.getLogger(__name__)


async def run_report(ctx: WorkerContext, report_id: int) -> str:
    """Build one report (once, whatever the number of deliveries)."""
    sessionmaker = ctx["sessionmaker"]
    report = await reports.claim(sessionmaker, report_id)
    if report is None:
        return "not queued (taken, cancelled or finished)"
    try:
        outcome = await _build_and_upload(ctx, report)
    except reports.Cancelled:
        return "cancelled"
    except Gone as exc:  # the request's own words, not a Python error: nothing to retry
        await reports.fail(sessionmaker, report_id, str(exc))
        await _tell(ctx, report, succeeded=False)
        return "failed"
    except (*TRANSIENT, OperationalError, DBAPIError, TimeoutError) as exc:
        log.warning("report %s: try %s failed: %r", report_id, report.tries, exc)
        delay = await reports.retry_or_fail(sessionmaker, report_id, report.tries, f"{type(exc).__name__}: {exc}")
        if delay is None:
            await _tell(ctx, report, succeeded=False)
            return "failed"
        raise Retry(defer=delay) from exc
    except Exception as exc:  # a bug or bad data: fail visibly, never silently
        log.exception("report %s failed", report_id)
        await reports.fail(sessionmaker, report_id, f"{type(exc).__name__}: {exc}")
        await _tell(ctx, report, succeeded=False)
        return "failed"
    if outcome:
        await _tell(ctx, report, succeeded=True)
    return "succeeded" if outcome else "cancelled"


async def _build_and_upload(ctx: WorkerContext, report: ClaimedReport) -> bool:
    sessionmaker, store, settings = ctx["sessionmaker"], ctx["store"], ctx["settings"]
    report_id = report.id

    async def progress(percent: int, message: str) -> None:
        await reports.progress(sessionmaker, report_id, report.tries, percent, message)

    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M")
    began = time.perf_counter()
    kind = KINDS[report.kind]
    ext = kind.file
    key = reports.object_key(report, ext)
    with tempfile.TemporaryDirectory(prefix="gradeflow-report-") as folder:
        out = Output(Path(folder) / f"report.{ext}", store.upload(key, kind.content_type), store)
        async with out.upload, course_data.snapshot(sessionmaker, kind.readers) as snap:
            course = await course_data.load_course(snap.session, report.course_id)
            params = kind.params.model_validate({k: v for k, v in report.params.items() if k != "notify_email"})
            rows, name = await kind.build(snap, course, params, out, Counter(progress))
            built = time.perf_counter()
            await progress(99, "uploading")
            await out.upload.finish(out.path)
        size = out.path.stat().st_size
        log.info(
            "report %s: %s rows built in %.2f s, %s bytes, upload finished %.2f s later",
            report_id,
            rows,
            built - began,
            size,
            time.perf_counter() - built,
        )
    done = await reports.succeed(
        sessionmaker,
        report_id,
        report.tries,
        object_key=key,
        file_name=f"{safe_name(course.external_id)}_{name}_{stamp}.{ext}",
        content_type=kind.content_type,
        rows=rows,
        size=size,
        sha256=out.upload.sha256,
        retention_days=settings.reports.retention_days,
    )
    if not done:  # cancelled while uploading
        await store.delete(key)
    return done


async def _tell(ctx: WorkerContext, report: ClaimedReport, succeeded: bool) -> None:
    """E-mail the requester, if they asked, with a link to the report's page in the LMS (never a signed
    link: it would be dead before the message is read)."""
    to = report.params.get("notify_email")
    if not to:
        return
    settings = ctx["settings"]
    link = reports.page_url(settings.reports.page_url_template, report.course, report.id)
    kind = report.kind.replace("_", " ")
    subject = f"Your {kind} for {report.course_title} is {'ready' if succeeded else 'not available'}"
    outcome = "is ready. Download it from" if succeeded else "could not be built. See why on"
    body = f"The {kind} you asked for in {report.course_title} {outcome} the report's page:\n\n{link}\n"
    try:
        await mail.send_simple(settings.smtp, to, subject, body)
    except Exception:  # the report stands either way; the page shows its state
        log.warning("could not e-mail %s about report %s", "the requester", report.id, exc_info=True)


async def expire_reports(ctx: WorkerContext) -> int:
    """Cron (hourly): delete the files of reports past their retention; the records say expired."""
    async with ctx["sessionmaker"]() as session:
        return await reports.expire(session, ctx["store"])
