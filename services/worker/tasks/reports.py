"""Report jobs: claim the record, stream the data into a temporary file, upload it, mark it done.

A job delivered twice runs once (the claim); a cancelled report stops at its next chunk; a storage or
database hiccup is retried with back-off and the last failure is written on the record.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arq import Retry
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from services.worker.writers import pdf
from services.worker.writers.csv import CsvFile
from services.worker.writers.xlsx import XlsxFile
from shared.notify import mail
from shared.services import report_data, report_records, reports
from shared.services.inputs import (
    GradeReportParams,
    GroupReportParams,
    IndividualReportsParams,
    MarksAndGradesParams,
    ProblemGradeReportParams,
    ResultsXlsxParams,
)
from shared.services.report_data import AssessmentInfo, CourseInfo
from shared.storage.s3 import TRANSIENT

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "zip": "application/zip",
}

Progress = Callable[[int, str], Awaitable[None]]
Params = dict[str, Any]


async def run_report(ctx: dict[str, Any], report_id: int) -> str:
    """Build one report (once, whatever the number of deliveries)."""
    sessionmaker = ctx["sessionmaker"]
    report = await reports.claim(sessionmaker, report_id)
    if report is None:
        return "not queued (taken, cancelled or finished)"
    try:
        outcome = await _build_and_upload(ctx, report)
    except reports.Cancelled:
        return "cancelled"
    except (*TRANSIENT, OperationalError, DBAPIError, TimeoutError) as exc:
        log.warning("report %s: try %s failed: %r", report_id, report["tries"], exc)
        delay = await reports.retry_or_fail(sessionmaker, report_id, report["tries"], f"{type(exc).__name__}: {exc}")
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


async def _build_and_upload(ctx: dict[str, Any], report: dict[str, Any]) -> bool:
    sessionmaker, store, settings = ctx["sessionmaker"], ctx["store"], ctx["settings"]
    report_id = report["id"]

    async def progress(percent: int, message: str) -> None:
        await reports.progress(sessionmaker, report_id, percent, message)

    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gradeflow-report-") as folder:
        async with sessionmaker() as session:
            await report_data.begin_snapshot(session)
            course = await report_data.load_course(session, report["course_id"])
            total = await report_data.count_learners(session, course.id)
            builder = BUILDERS[report["kind"]]
            params = {k: v for k, v in report["params"].items() if k != "notify_email"}
            ext, rows, name = await builder(session, course, params, Path(folder), _Counter(progress, total))
        built = time.perf_counter()
        path = Path(folder) / f"report.{ext}"
        file_name = f"{_safe_name(course.external_id)}_{name}_{stamp}.{ext}"
        await progress(99, "uploading")
        digest, size = await asyncio.to_thread(_sha256, path)
        key = reports.object_key(report, file_name)
        await store.upload_file(key, path, CONTENT_TYPES[ext])
        log.info(
            "report %s: %s rows built in %.2f s, %s bytes uploaded in %.2f s",
            report_id,
            rows,
            built - began,
            size,
            time.perf_counter() - built,
        )
    done = await reports.succeed(
        sessionmaker,
        report_id,
        object_key=key,
        file_name=file_name,
        content_type=CONTENT_TYPES[ext],
        rows=rows,
        size=size,
        sha256=digest,
        retention_days=settings.reports.retention_days,
    )
    if not done:  # cancelled while uploading
        await store.delete(key)
    return done


class _Counter:
    """Progress by learners done, written at most every chunk."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress, self.total, self.done = progress, max(total, 1), 0

    async def add(self, n: int, what: str = "learners") -> None:
        self.done += n
        await self.progress(min(98, self.done * 98 // self.total), f"{self.done:,} {what} done")


def _safe_name(external_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in external_id)[:100]


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest(), path.stat().st_size


# --- one builder per kind: (session, course, params, folder, counter) -> (extension, rows, name) ---

Built = tuple[str, int, str]


async def _csv(frames: Any, path: Path, bom: bool, counter: _Counter, per_learner: bool = True) -> int:
    with path.open("wb") as out:
        csv = CsvFile(out, bom)
        async for frame in report_data.ahead(frames):
            await asyncio.to_thread(csv.write, frame)
            await counter.add(frame.height if per_learner else 0, "learners" if per_learner else "rows")
    return csv.rows


def _assessment(course: CourseInfo, external_id: str) -> AssessmentInfo:
    assessment = course.assessment(external_id)
    if assessment is None:
        raise ValueError(f"assessment {external_id!r} no longer exists in the course")
    return assessment


async def grade_report(session: AsyncSession, course: CourseInfo, params: Params, folder: Path, c: _Counter) -> Built:
    p = GradeReportParams.model_validate(params)
    rows = await _csv(report_data.grade_report(session, course), folder / "report.csv", p.bom, c)
    return "csv", rows, "grade_report"


async def problem_grade_report(
    session: AsyncSession, course: CourseInfo, params: Params, folder: Path, c: _Counter
) -> Built:
    p = ProblemGradeReportParams.model_validate(params)
    rows = await _csv(report_data.problem_grade_report(session, course), folder / "report.csv", p.bom, c)
    return "csv", rows, "problem_grade_report"


async def marks_and_grades(
    session: AsyncSession, course: CourseInfo, params: Params, folder: Path, c: _Counter
) -> Built:
    p = MarksAndGradesParams.model_validate(params)
    assessment = _assessment(course, p.assessment)
    frames = report_data.marks_and_grades(session, course, assessment)
    rows = await _csv(frames, folder / "report.csv", p.bom, c, per_learner=False)
    return "csv", rows, f"marks_and_grades_{_safe_name(assessment.external_id)}"


async def results_xlsx(session: AsyncSession, course: CourseInfo, params: Params, folder: Path, c: _Counter) -> Built:
    p = ResultsXlsxParams.model_validate(params)
    book = XlsxFile(folder / "report.xlsx", report_records.RESULTS_HEADER)
    async for rows in report_data.ahead(report_records.results_rows(session, course, p)):
        await asyncio.to_thread(book.write, rows)
        await c.add(0, "rows")
    await asyncio.to_thread(book.close)
    return "xlsx", book.rows, "results"


async def group_report_pdf(
    session: AsyncSession, course: CourseInfo, params: Params, folder: Path, c: _Counter
) -> Built:
    p = GroupReportParams.model_validate(params)
    _assessment(course, p.assessment)
    results = await report_records.group_results(session, course, p)
    data = await asyncio.to_thread(pdf.group_report, results)
    await asyncio.to_thread((folder / "report.pdf").write_bytes, data)
    return "pdf", len(results.ranking), f"group_report_{_safe_name(p.assessment)}"


async def individual_reports_zip(
    session: AsyncSession, course: CourseInfo, params: Params, folder: Path, c: _Counter
) -> Built:
    p = IndividualReportsParams.model_validate(params)
    count = 0
    used: set[str] = set()
    with zipfile.ZipFile(folder / "report.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        async for records in report_records.learner_records(session, course, p):
            for record in records:
                data = await asyncio.to_thread(pdf.individual_report, record)
                name = _safe_name(record.learner) + ".pdf"
                while name in used:  # two ids that differ only in unsafe characters
                    name = "_" + name
                used.add(name)
                await asyncio.to_thread(archive.writestr, name, data)
                count += 1
            await c.add(len(records))
    return "zip", count, "individual_reports"


BUILDERS = {
    "grade_report": grade_report,
    "problem_grade_report": problem_grade_report,
    "marks_and_grades": marks_and_grades,
    "results_xlsx": results_xlsx,
    "group_report_pdf": group_report_pdf,
    "individual_reports_zip": individual_reports_zip,
}


async def _tell(ctx: dict[str, Any], report: dict[str, Any], succeeded: bool) -> None:
    """E-mail the requester, if they asked, with a link to the report's page in the LMS (never a signed
    link: it would be dead before the message is read)."""
    to = report["params"].get("notify_email")
    if not to:
        return
    settings = ctx["settings"]
    link = reports.page_url(settings.reports.page_url_template, report["course"], report["id"])
    kind = report["kind"].replace("_", " ")
    subject = f"Your {kind} for {report['course_title']} is {'ready' if succeeded else 'not available'}"
    outcome = "is ready. Download it from" if succeeded else "could not be built. See why on"
    body = f"The {kind} you asked for in {report['course_title']} {outcome} the report's page:\n\n{link}\n"
    try:
        await mail.send_simple(settings.smtp, to, subject, body)
    except Exception:  # the report stands either way; the page shows its state
        log.warning("could not e-mail %s about report %s", "the requester", report["id"], exc_info=True)


async def expire_reports(ctx: dict[str, Any]) -> int:
    """Cron (hourly): delete the files of reports past their retention; the records say expired."""
    async with ctx["sessionmaker"]() as session:
        return await reports.expire(session, ctx["store"])
