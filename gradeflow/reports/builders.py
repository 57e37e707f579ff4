"""How each report kind is built: read its data inside the report's snapshot, write its file.

A builder takes the snapshot, the course, the kind's params (validated), where to write and the
progress counter; it returns the rows written and the name that goes into the file's name. The kinds
and their builders are registered once, in gradeflow/reports/kinds.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import zipfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from gradeflow.certificates.service import certificates, diplomas
from gradeflow.certificates.writers import diplomas as diploma_writer
from gradeflow.core.errors import NotFound
from gradeflow.core.names import safe_name
from gradeflow.courses.service import sessions
from gradeflow.readside.repository.results_table import Selection
from gradeflow.readside.service import course_data, results_table
from gradeflow.readside.service.course_data import AssessmentInfo, CourseInfo, Who
from gradeflow.reports.commands import (
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
    openedx_reports,
    progression_report,
    report_records,
    skills_report,
    streams,
)
from gradeflow.reports.writers import pdf
from gradeflow.reports.writers.csv import CsvFile
from gradeflow.reports.writers.xlsx import XlsxFile
from gradeflow.storage.s3 import ObjectStore, Upload

Progress = Callable[[int, str], Awaitable[None]]
# The ZIP's progress is written after this many PDFs (and at the end).
PROGRESS_EVERY = 100
Snapshot = course_data.Snapshot


@dataclass(frozen=True)
class Output:
    """Where a builder writes its file; an append-only file (CSV) is uploaded while it grows.
    `image_store`: where it reads the images it prints (the diplomas' logos and signatures)."""

    path: Path
    upload: Upload
    image_store: ObjectStore | None = None


class Counter:
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


# --- one builder per kind: (snapshot, course, params, output, counter) -> (rows, name) --------------

Built = tuple[int, str]  # rows, the name in the file name


async def _csv(
    frames: Any, out: Output, bom: bool, counter: Counter, learners: Callable[[pl.DataFrame], int] = len
) -> int:
    """Write the frames; `learners(frame)`: the learners a frame holds (a row each by default)."""
    with out.path.open("wb") as f:
        csv = CsvFile(f, bom)
        async for frame in streams.ahead(frames):
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


async def _session(snap: Snapshot, course: CourseInfo, external_id: str | None) -> int | None:
    """The id of the course session the params name, or the request's words if it went since it was checked."""
    if external_id is None:
        return None
    try:
        return await sessions.session_id(snap.session, course.id, external_id)
    except NotFound:
        raise Gone(f"The session {external_id!r} was deleted from the course after the report was requested.") from None


async def _selection(snap: Snapshot, course: CourseInfo, f: results_table.ResultsFilter) -> Selection:
    """The results table's selection the params make, what they name resolved once."""
    assessment = None if f.assessment is None else _assessment(course, f.assessment).id
    return results_table.selection(f, assessment, await _session(snap, course, f.session))


async def _who(snap: Snapshot, course: CourseInfo, p: Any) -> Who:
    """The learners the params select, their session resolved once."""
    return Who.of(p, await _session(snap, course, p.session))


async def grade_report(snap: Snapshot, course: CourseInfo, p: GradeReportParams, out: Output, c: Counter) -> Built:
    c.covers(await course_data.count_learners(snap.session, course.id))
    return await _csv(openedx_reports.grade_report(snap, course), out, p.bom, c), "grade_report"


async def problem_grade_report(
    snap: Snapshot, course: CourseInfo, p: ProblemGradeReportParams, out: Output, c: Counter
) -> Built:
    c.covers(await course_data.count_learners(snap.session, course.id))
    return await _csv(openedx_reports.problem_grade_report(snap.session, course), out, p.bom, c), "problem_grade_report"


async def marks_and_grades(
    snap: Snapshot, course: CourseInfo, p: MarksAndGradesParams, out: Output, c: Counter
) -> Built:
    assessment = _assessment(course, p.assessment)
    frames = marks_report.marks_and_grades(snap.session, course, assessment)
    c.covers(await course_data.count_candidates(snap.session, assessment.id))
    rows = await _csv(frames, out, p.bom, c, learners=lambda frame: frame["CandidateExternalId"].n_unique())
    return rows, f"marks_and_grades_{safe_name(assessment.external_id)}"


async def results_xlsx(snap: Snapshot, course: CourseInfo, p: ResultsXlsxParams, out: Output, c: Counter) -> Built:
    f = await _selection(snap, course, results_table.ResultsFilter(**p.model_dump(exclude={"time_zone"})))
    total = await results_table.total(snap.session, course.id, f)
    c.covers(total, "rows written")
    tz = p.time_zone
    header, formats, texts = results_table.headers(tz), results_table.number_formats(tz), results_table.text_columns(tz)
    book = XlsxFile(out.path, header, total, formats=formats, texts=texts)
    await _xlsx(book, results_table.frames(snap.session, course.id, f, course_data.CHUNK, tz), c)
    return book.rows, "results"


async def skills_xlsx(snap: Snapshot, course: CourseInfo, p: SkillsXlsxParams, out: Output, c: Counter) -> Built:
    f = await _selection(snap, course, results_table.ResultsFilter(**p.model_dump()))
    shape = await skills_report.layout(snap.session, course.id, p.assessment)
    if (too_wide := shape.too_wide()) is not None:  # skills added since the request was checked
        raise Gone(too_wide)
    total = await skills_report.total(snap.session, course.id, f)
    c.covers(total, "rows written")
    book = XlsxFile(out.path, shape.headers, total, title="Skills", formats=shape.formats)
    await _xlsx(book, skills_report.frames(snap.session, course.id, f, shape, course_data.CHUNK), c)
    return book.rows, "skills"


async def _xlsx(book: XlsxFile, frames: AsyncIterator[pl.DataFrame], c: Counter) -> None:
    """Stream the frames into the book, written as they come (a frame's rows count as done).

    The writer waits for rows for the whole job, so it runs on a thread of its own: on the event
    loop's shared pool, a few XLSX jobs at once would hold every thread waiting for rows that the
    `put` calls, queued behind them on the same pool, could never deliver."""
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-writer")
    saving = asyncio.get_running_loop().run_in_executor(writer, book.save)
    try:
        async for frame in streams.ahead(frames):
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


async def group_report_pdf(snap: Snapshot, course: CourseInfo, p: GroupReportParams, out: Output, c: Counter) -> Built:
    _assessment(course, p.assessment)
    who = await _who(snap, course, p)
    results = await report_records.group_results(snap.session, course, p, who)
    await asyncio.to_thread(out.path.write_bytes, await asyncio.to_thread(pdf.group_report, results))
    return len(results.ranking), f"group_report_{safe_name(p.assessment)}"


async def individual_reports_zip(
    snap: Snapshot, course: CourseInfo, p: IndividualReportsParams, out: Output, c: Counter
) -> Built:
    who = await _who(snap, course, p)
    c.covers(await course_data.count_learners(snap.session, course.id, who))
    written = 0

    async def one_more() -> None:
        nonlocal written
        written += 1
        if written % PROGRESS_EVERY == 0:
            await c.add(PROGRESS_EVERY)

    chunks = ((0, records) async for records in report_records.learner_records(snap.session, course, p, who))
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


async def group_progression_pdf(
    snap: Snapshot, course: CourseInfo, p: GroupProgressionParams, out: Output, c: Counter
) -> Built:
    pair = await _pair(snap, course, p.assessment)
    who = await _who(snap, course, p)
    g = await progression_report.group_progression(snap.session, course, p, who, pair)
    await asyncio.to_thread(out.path.write_bytes, await asyncio.to_thread(pdf.group_progression, g))
    return len(g.learners), f"group_progression_{safe_name(p.assessment)}"


async def individual_progression_zip(
    snap: Snapshot, course: CourseInfo, p: IndividualProgressionParams, out: Output, c: Counter
) -> Built:
    """One progression PDF per learner with both results published; progress counts the learners covered
    ("300 of 1,000 learners"), those without both results included, chunk by chunk."""
    pair = await _pair(snap, course, p.assessment)
    who = await _who(snap, course, p)
    c.covers(await course_data.count_learners(snap.session, course.id, who))
    chunks = progression_report.learner_progressions(snap.session, course, p, who, pair)
    count = await _zip_of_pdfs(out, chunks, pdf.individual_progression, chunk_done=c.add)
    return count, "individual_progression_reports"


async def certificates_zip(
    snap: Snapshot, course: CourseInfo, p: CertificatesZipParams, out: Output, c: Counter
) -> Built:
    """Download all certificates: the diploma of each valid certificate the filters select, drawn now
    (whatever is stored), named by the learner's name and the certificate's code; progress counts them."""
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
    # costs much of the job's time and saves little (bench/diplomas.py).
    count = await _zip_of_pdfs(
        out, chunks(), diploma_writer.diploma, chunk_done=c.add, entry=_diploma_entry, compression=zipfile.ZIP_STORED
    )
    return count, f"certificates_{safe_name(p.assessment)}" if p.assessment else "certificates"


def _diploma_entry(d: diplomas.Diploma) -> str:
    """A diploma's name in the ZIP: the learner's name (cut short if long), then the code (unique)."""
    return f"{safe_name(d.name)[:80]}_{d.code}"
