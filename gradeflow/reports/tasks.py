"""Report jobs: claim the record, stream the data into a temporary file, upload it, mark it done.

A job delivered twice runs once (the claim); a cancelled report stops at its next chunk; a storage or
database hiccup is retried with back-off and the last failure is written on the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import tempfile
import time
import zipfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from arq import Retry
from sqlalchemy.exc import DBAPIError, OperationalError

from gradeflow.certificates.service import certificates, diplomas
from gradeflow.certificates.writers import diplomas as diploma_writer
from gradeflow.core.commands import Command
from gradeflow.core.names import safe_name
from gradeflow.courses.service import sessions
from gradeflow.notify import mail
from gradeflow.readside.service import results_table
from gradeflow.reports.commands import (
    REPORT_PARAMS,
    CertificatesZipParams,
    GradeReportParams,
    GroupProgressionParams,
    GroupReportParams,
    IndividualProgressionParams,
    IndividualReportsParams,
    MarksAndGradesParams,
    ProblemGradeReportParams,
    ResultsXlsxParams,
    SkillsXlsxParams,
)
from gradeflow.reports.service import (
    marks_report,
    progression_report,
    report_data,
    report_records,
    reports,
    skills_report,
)
from gradeflow.reports.service.report_data import AssessmentInfo, CourseInfo
from gradeflow.reports.writers import pdf
from gradeflow.reports.writers.csv import CsvFile
from gradeflow.reports.writers.xlsx import XlsxFile
from gradeflow.storage.s3 import TRANSIENT, ObjectStore, Upload

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "zip": "application/zip",
}

Progress = Callable[[int, str], Awaitable[None]]
Params = dict[str, Any]
# The ZIP's progress is written after this many PDFs (and at the end).
PROGRESS_EVERY = 100


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
    except Gone as exc:  # the request's own words, not a Python error: nothing to retry
        await reports.fail(sessionmaker, report_id, str(exc))
        await _tell(ctx, report, succeeded=False)
        return "failed"
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
        await reports.progress(sessionmaker, report_id, report["tries"], percent, message)

    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M")
    began = time.perf_counter()
    kind = KINDS[REPORT_PARAMS[report["kind"]]]
    ext = kind.extension
    key = reports.object_key(report, ext)
    with tempfile.TemporaryDirectory(prefix="gradeflow-report-") as folder:
        out = Output(Path(folder) / f"report.{ext}", store.upload(key, CONTENT_TYPES[ext]), store)
        async with out.upload, report_data.snapshot(sessionmaker, kind.readers) as snap:
            course = await report_data.load_course(snap.session, report["course_id"])
            params = {k: v for k, v in report["params"].items() if k != "notify_email"}
            rows, name = await kind.build(snap, course, params, out, _Counter(progress))
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
        report["tries"],
        object_key=key,
        file_name=f"{safe_name(course.external_id)}_{name}_{stamp}.{ext}",
        content_type=CONTENT_TYPES[ext],
        rows=rows,
        size=size,
        sha256=out.upload.sha256,
        retention_days=settings.reports.retention_days,
    )
    if not done:  # cancelled while uploading
        await store.delete(key)
    return done


@dataclass(frozen=True)
class Output:
    """Where a builder writes its file; an append-only file (CSV) is uploaded while it grows.
    `image_store`: where it reads the images it prints (the diplomas' logos and signatures)."""

    path: Path
    upload: Upload
    image_store: ObjectStore | None = None


class _Counter:
    """A report's progress: the percent is how far it is through what it covers (learners, or the
    XLSX's rows), the message what its reader can check: CSV rows written, "300 of 1,000 learners"."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.total, self.done, self.unit = progress, 0, 0, "learners"

    def covers(self, total: int, unit: str = "learners") -> None:
        self.total, self.unit = total, unit

    async def add(self, n: int, written: int | None = None) -> None:
        """`n` more done; `written`: the rows written so far, for a file whose rows are not what it covers."""
        self.done += n
        # 98 at most: 99 is the upload, 100 the report ready.
        percent = min(98, self.done * 100 // self.total) if self.total else 0
        message = f"{written:,} rows written" if written is not None else f"{self.done:,} of {self.total:,} {self.unit}"
        await self.progress(percent, message)


# --- one builder per kind: (session, course, params, folder, counter) -> (extension, rows, name) ---

Built = tuple[int, str]  # rows, the name in the file name
Snapshot = report_data.Snapshot


async def _csv(
    frames: Any, out: Output, bom: bool, counter: _Counter, learners: Callable[[pl.DataFrame], int] = len
) -> int:
    """Write the frames; `learners(frame)`: the learners a frame holds (a row each by default)."""
    with out.path.open("wb") as f:
        csv = CsvFile(f, bom)
        async for frame in report_data.ahead(frames):
            await asyncio.to_thread(csv.write, frame)
            await asyncio.to_thread(f.flush)
            out.upload.grown(out.path)
            await counter.add(learners(frame), written=csv.rows)
    return csv.rows


class Gone(Exception):
    """What the request named was in the course when it was asked for, and is no longer."""


def _assessment(course: CourseInfo, external_id: str) -> AssessmentInfo:
    assessment = course.assessment(external_id)
    if assessment is None:
        raise Gone(f"The assessment {external_id!r} was deleted from the course after the report was requested.")
    return assessment


async def _session(snap: Snapshot, course: CourseInfo, external_id: str | None) -> None:
    if external_id is not None and await sessions.unknown(snap.session, course.id, external_id):
        raise Gone(f"The session {external_id!r} was deleted from the course after the report was requested.")


async def grade_report(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    p = GradeReportParams.model_validate(params)
    c.covers(await report_data.count_learners(snap.session, course.id))
    return await _csv(report_data.grade_report(snap, course), out, p.bom, c), "grade_report"


async def problem_grade_report(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    p = ProblemGradeReportParams.model_validate(params)
    c.covers(await report_data.count_learners(snap.session, course.id))
    return await _csv(report_data.problem_grade_report(snap.session, course), out, p.bom, c), "problem_grade_report"


async def marks_and_grades(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    p = MarksAndGradesParams.model_validate(params)
    assessment = _assessment(course, p.assessment)
    frames = marks_report.marks_and_grades(snap.session, course, assessment)
    c.covers(await report_data.count_candidates(snap.session, assessment.id))
    rows = await _csv(frames, out, p.bom, c, learners=lambda frame: frame["CandidateExternalId"].n_unique())
    return rows, f"marks_and_grades_{safe_name(assessment.external_id)}"


async def results_xlsx(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    p = ResultsXlsxParams.model_validate(params)
    if p.assessment is not None:
        _assessment(course, p.assessment)
    await _session(snap, course, p.session)
    f = results_table.ResultsFilter(**p.model_dump(exclude={"time_zone"}))
    total = await results_table.total(snap.session, course.id, f)
    c.covers(total, "rows written")
    tz = p.time_zone
    header, formats, texts = results_table.headers(tz), results_table.number_formats(tz), results_table.text_columns(tz)
    book = XlsxFile(out.path, header, total, formats=formats, texts=texts)
    await _xlsx(book, results_table.frames(snap.session, course.id, f, report_data.CHUNK, tz), c)
    return book.rows, "results"


async def skills_xlsx(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    p = SkillsXlsxParams.model_validate(params)
    if p.assessment is not None:
        _assessment(course, p.assessment)
    await _session(snap, course, p.session)
    f = results_table.ResultsFilter(**p.model_dump())
    shape = await skills_report.layout(snap.session, course.id, p.assessment)
    if (too_wide := shape.too_wide()) is not None:  # skills added since the request was checked
        raise Gone(too_wide)
    total = await skills_report.total(snap.session, course.id, f)
    c.covers(total, "rows written")
    book = XlsxFile(out.path, shape.headers, total, title="Skills", formats=shape.formats)
    await _xlsx(book, skills_report.frames(snap.session, course.id, f, shape, report_data.CHUNK), c)
    return book.rows, "skills"


async def _xlsx(book: XlsxFile, frames: AsyncIterator[pl.DataFrame], c: _Counter) -> None:
    """Stream the frames into the book, written as they come (a frame's rows count as done).

    The writer waits for rows for the whole job, so it runs on a thread of its own: on the event
    loop's shared pool, a few XLSX jobs at once would hold every thread waiting for rows that the
    `put` calls, queued behind them on the same pool, could never deliver."""
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-writer")
    saving = asyncio.get_running_loop().run_in_executor(writer, book.save)
    try:
        async for frame in report_data.ahead(frames):
            await asyncio.to_thread(book.put, frame)
            await c.add(frame.height)
        await asyncio.to_thread(book.end)
    except BaseException:
        book.abort()
        with contextlib.suppress(Exception):
            await saving
        raise
    finally:
        writer.shutdown(wait=False)
    await saving


async def group_report_pdf(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    p = GroupReportParams.model_validate(params)
    _assessment(course, p.assessment)
    await _session(snap, course, p.session)
    results = await report_records.group_results(snap.session, course, p)
    await asyncio.to_thread(out.path.write_bytes, await asyncio.to_thread(pdf.group_report, results))
    return len(results.ranking), f"group_report_{safe_name(p.assessment)}"


async def individual_reports_zip(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    p = IndividualReportsParams.model_validate(params)
    await _session(snap, course, p.session)
    who = await report_data.who_of(snap.session, course.id, p)
    c.covers(await report_data.count_learners(snap.session, course.id, who))
    written = 0

    async def one_more() -> None:
        nonlocal written
        written += 1
        if written % PROGRESS_EVERY == 0:
            await c.add(PROGRESS_EVERY)

    chunks = ((0, records) async for records in report_records.learner_records(snap.session, course, p))
    count = await _zip_of_pdfs(out, chunks, pdf.individual_report, written=one_more)
    if count > c.done:
        await c.add(count - c.done)
    return count, "individual_reports"


async def _zip_of_pdfs(
    out: Output,
    chunks: AsyncIterator[tuple[int, Sequence[Any]]],
    draw: Callable[[Any], bytes],
    written: Callable[[], Awaitable[None]] | None = None,
    chunk_done: Callable[[int], Awaitable[None]] | None = None,
    entry: Callable[[Any], str] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> int:
    """One PDF per record (each has a `learner`), named after the learner (or `entry(record)`), into
    the ZIP at `out`.

    `written()` after each PDF, and `chunk_done(covered)` after each chunk with the learners it
    covered. Returns how many PDFs."""
    used: set[str] = set()
    with (
        zipfile.ZipFile(out.path, "w", compression=compression) as archive,
        Drawing(draw) as drawing,
    ):
        async for covered, records in chunks:
            async for record, content in drawing.each(records):
                name = safe_name(entry(record) if entry is not None else record.learner) + ".pdf"
                while name in used:  # two ids that differ only in unsafe characters
                    name = "_" + name
                used.add(name)
                await asyncio.to_thread(archive.writestr, name, content)
                if written is not None:
                    await written()
            if chunk_done is not None:
                await chunk_done(covered)
    return len(used)


R = TypeVar("R")


class Drawing:
    """PDFs drawn from records, for as long as the block lasts.

    Typst holds the GIL while it compiles: the PDFs are drawn in processes, one per core, a few ahead of
    the consumer (each process loads the fonts and the template once)."""

    def __init__(self, draw: Callable[[Any], bytes]) -> None:
        self.draw = draw
        self.workers = os.cpu_count() or 1
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def __enter__(self) -> Drawing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(cancel_futures=True)

    async def each(self, records: Sequence[R]) -> AsyncIterator[tuple[R, bytes]]:
        """Each record with its PDF, in the records' order."""
        loop = asyncio.get_running_loop()
        pending: deque[tuple[R, asyncio.Future[bytes]]] = deque()
        for record in records:
            pending.append((record, loop.run_in_executor(self.pool, self.draw, record)))
            if len(pending) > 4 * self.workers:
                oldest, drawn = pending.popleft()
                yield oldest, await drawn
        while pending:
            oldest, drawn = pending.popleft()
            yield oldest, await drawn


async def _pair(snap: Snapshot, course: CourseInfo, final: str) -> progression_report.Pair:
    """The final test and its initial test, or the request's words if either went since it was checked."""
    _assessment(course, final)
    try:
        return await progression_report.pair_of(snap.session, course, final)
    except progression_report.NoInitial as exc:
        raise Gone(f"{exc} It was unlinked after the report was requested.") from exc


async def group_progression_pdf(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    p = GroupProgressionParams.model_validate(params)
    await _pair(snap, course, p.assessment)
    await _session(snap, course, p.session)
    g = await progression_report.group_progression(snap.session, course, p)
    await asyncio.to_thread(out.path.write_bytes, await asyncio.to_thread(pdf.group_progression, g))
    return len(g.learners), f"group_progression_{safe_name(p.assessment)}"


async def individual_progression_zip(
    snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter
) -> Built:
    """One progression PDF per learner with both results published; progress counts the learners covered
    ("300 of 1,000 learners"), those without both results included, chunk by chunk."""
    p = IndividualProgressionParams.model_validate(params)
    await _pair(snap, course, p.assessment)
    await _session(snap, course, p.session)
    who = await report_data.who_of(snap.session, course.id, p)
    c.covers(await report_data.count_learners(snap.session, course.id, who))
    chunks = progression_report.learner_progressions(snap.session, course, p)
    count = await _zip_of_pdfs(out, chunks, pdf.individual_progression, chunk_done=c.add)
    return count, "individual_progression_reports"


async def certificates_zip(snap: Snapshot, course: CourseInfo, params: Params, out: Output, c: _Counter) -> Built:
    """Download all certificates: the diploma of each valid certificate the filters select, drawn now
    (whatever is stored), named by the learner's name and the certificate's code; progress counts them."""
    p = CertificatesZipParams.model_validate(params)
    if p.assessment is not None:
        _assessment(course, p.assessment)
    await _session(snap, course, p.session)
    selected = await certificates.select(snap.session, course.id, p)
    c.covers(await diplomas.count(snap.session, selected), "certificates")
    assert out.image_store is not None
    store, images = out.image_store, dict[str, bytes]()

    async def chunks() -> AsyncIterator[tuple[int, list[diplomas.Diploma]]]:
        async for rows in diplomas.chunks(snap.session, selected):
            await diplomas.load_images(store, rows, images)
            yield len(rows), [diplomas.diploma_of(r, images) for r in rows]

    # Stored, not deflated: a diploma is mostly its images, already compressed; deflating them again
    # took a third of the job's time for a few per cent (bench/diplomas.py).
    count = await _zip_of_pdfs(
        out, chunks(), diploma_writer.diploma, chunk_done=c.add, entry=_diploma_entry, compression=zipfile.ZIP_STORED
    )
    return count, f"certificates_{safe_name(p.assessment)}" if p.assessment else "certificates"


def _diploma_entry(d: diplomas.Diploma) -> str:
    """A diploma's name in the ZIP: the learner's name (cut short if long), then the code (unique)."""
    return f"{safe_name(d.name)[:80]}_{d.code}"


@dataclass(frozen=True)
class Kind:
    """How a report kind is built: its builder, its file's extension, and how many sessions read its
    snapshot at once (the grade report reads its chunks in parallel)."""

    build: Callable[[Snapshot, CourseInfo, Params, Output, _Counter], Awaitable[Built]]
    extension: str
    readers: int = 1


# Keyed by each kind's params: the kinds themselves are listed once, in gradeflow.core.commands.
KINDS: dict[type[Command], Kind] = {
    GradeReportParams: Kind(grade_report, "csv", readers=2),
    ProblemGradeReportParams: Kind(problem_grade_report, "csv"),
    MarksAndGradesParams: Kind(marks_and_grades, "csv"),
    ResultsXlsxParams: Kind(results_xlsx, "xlsx"),
    SkillsXlsxParams: Kind(skills_xlsx, "xlsx"),
    GroupReportParams: Kind(group_report_pdf, "pdf"),
    IndividualReportsParams: Kind(individual_reports_zip, "zip"),
    GroupProgressionParams: Kind(group_progression_pdf, "pdf"),
    IndividualProgressionParams: Kind(individual_progression_zip, "zip"),
    CertificatesZipParams: Kind(certificates_zip, "zip"),
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
