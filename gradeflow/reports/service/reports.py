"""Report jobs: the record in PostgreSQL is the source of truth for every report.

The API commits a queued record, then enqueues the job with the report id as its job id. A worker
claims the record with a conditional update (a job delivered twice runs once), reports progress,
uploads the file and marks it succeeded. Download links are minted on every read, never stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.access.service.access import Action, course_access
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core import clock, jsonutil
from gradeflow.core.commands import Command
from gradeflow.core.errors import Conflict, NotFound
from gradeflow.core.paging import Page
from gradeflow.grades.service import grades
from gradeflow.jobs import JobName
from gradeflow.notify import events
from gradeflow.reports.repository import jobs as repository
from gradeflow.reports.repository.jobs import ClaimedReport, Finished, ReportRecord
from gradeflow.reports.service import report_references
from gradeflow.storage.s3 import ObjectStore

MAX_TRIES = 3
RETRY_AFTER = [timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2)]


async def create(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    kind: str,
    params: Command,
    notify_email: str | None,
    actor: str,
    kind_check: report_references.KindCheck | None = None,
) -> ReportView:
    """Check what the request names (422 for anything the course lacks; `kind_check`: the kind's own
    check), record it (queued, audited), commit, then enqueue the job."""
    await report_references.check(session, ref.id, params, kind_check)
    named = params.model_dump(mode="json", exclude_none=True)
    stored = jsonutil.dumps({**named, **({"notify_email": notify_email} if notify_email else {})})
    report_id = await repository.add_queued(session, ref.id, kind, stored, actor)
    # A report holds every learner's results: who asked for which is on the record, like each link.
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "report.requested",
        new={"report": report_id, "kind": kind, "params": named},
    )
    await session.commit()
    await jobs.enqueue(queue, JobName.RUN_REPORT, jobs.job_id(JobName.RUN_REPORT, report_id), report_id)
    return await _view(session, report_id)


async def _record(session: AsyncSession, report_id: int) -> ReportRecord:
    record = await repository.report(session, report_id)
    if record is None:
        raise NotFound(f"Report {report_id} not found.")
    return record


@dataclass(frozen=True, slots=True)
class ReportView(ReportRecord):
    """A report as those who may read it see it: its params without the address it notifies, and once it
    succeeded (read one at a time) a download link minted for this answer, never stored."""

    download_url: str | None = None
    download_expires_at: datetime | None = None


def _shape(r: ReportRecord, link: tuple[str, datetime] | None = None) -> ReportView:
    url, expires_at = link or (None, None)
    params = {k: v for k, v in r.params.items() if k != "notify_email"}
    return ReportView(**(dataclasses.asdict(r) | {"params": params}), download_url=url, download_expires_at=expires_at)


async def _view(session: AsyncSession, report_id: int) -> ReportView:
    return _shape(await _record(session, report_id))


async def report_access(session: AsyncSession, principal: Principal, report_id: int, action: Action) -> CourseRef:
    """The report's course, checked for `action` (a report of another organization is 404)."""
    course = await repository.course_of(session, report_id, principal.organization_id)
    if course is None:
        raise NotFound(f"Report {report_id} not found.")
    return await course_access(session, principal, course, action)


async def get(
    session: AsyncSession, store: ObjectStore, ref: CourseRef, report_id: int, actor: str, link_seconds: int
) -> ReportView:
    """The record; once succeeded, with a download link minted now (valid `link_seconds`), whose
    issuance is audited. The link is never stored."""
    record = await _record(session, report_id)
    if record.status != "succeeded":
        return _shape(record)
    return _shape(record, await issue_link(session, store, ref, record, actor, link_seconds))


async def issue_link(
    session: AsyncSession, store: ObjectStore, ref: CourseRef, record: ReportRecord, actor: str, link_seconds: int
) -> tuple[str, datetime]:
    if record.status != "succeeded" or record.object_key is None:
        raise Conflict(f"The report is {record.status}: there is no file to download.")
    issued = clock.now()
    url = await store.presign_get(record.object_key, link_seconds, record.file_name)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "report.link_issued",
        new={"report": record.id, "kind": record.kind, "file_name": record.file_name, "valid_seconds": link_seconds},
    )
    await session.commit()
    return url, issued + timedelta(seconds=link_seconds)


async def download_link(
    session: AsyncSession, store: ObjectStore, ref: CourseRef, report_id: int, actor: str, link_seconds: int
) -> str:
    url, _ = await issue_link(session, store, ref, await _record(session, report_id), actor, link_seconds)
    return url


async def list_reports(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[ReportView]:
    """Most recent first, pending and running ones with their progress."""
    page = await repository.reports_of_course(session, ref.id, limit, cursor)
    return Page([_shape(r) for r in page.items], page.next_cursor)


async def cancel(session: AsyncSession, ref: CourseRef, report_id: int, actor: str) -> ReportView:
    """Cancel a queued or running report (a running one stops at its next chunk)."""
    if not await repository.cancel(session, report_id, ref.id, clock.now(), actor):
        record = await _record(session, report_id)
        raise Conflict(f"The report is {record.status}; only a queued or running report can be cancelled.")
    await audit.record(session, ref.organization_id, ref.id, actor, "report.cancelled", new={"report": report_id})
    await session.commit()
    return await _view(session, report_id)


# --- the worker's side ----------------------------------------------------------------------------


async def claim(sessionmaker: async_sessionmaker[AsyncSession], report_id: int) -> ClaimedReport | None:
    """Take a queued report (None when it is not queued: taken, cancelled or finished), and bring the
    course's stale grades current, as every reader of stored grades does first: the report's snapshot
    is taken after this, so it never shows a grade older than the scores written before the request
    (the follow-up that refreshes them may still be waiting out its half second)."""
    async with sessionmaker() as session:
        claimed = await repository.claim(session, report_id, clock.now())
        await session.commit()
        if claimed is not None:
            await grades.bring_current(session, claimed.course_id)
    return claimed


class Cancelled(Exception):
    """The report was cancelled while it ran."""


async def progress(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: int, try_: int, percent: int, message: str
) -> None:
    """Record progress (and that the worker is alive); raises Cancelled if the report was cancelled,
    or taken over by another try after this worker fell silent past the lease."""
    async with sessionmaker() as session:
        alive = await repository.record_progress(
            session, report_id, try_, max(0, min(99, percent)), message, clock.now()
        )
        await session.commit()
    if not alive:
        raise Cancelled


async def succeed(
    sessionmaker: async_sessionmaker[AsyncSession],
    report_id: int,
    try_: int,
    *,
    object_key: str,
    file_name: str,
    content_type: str,
    rows: int,
    size: int,
    sha256: str,
    retention_days: int,
) -> bool:
    """Mark the report succeeded (False when it was cancelled meanwhile: the caller deletes the file)."""
    now = clock.now()
    async with sessionmaker() as session:
        done = await repository.succeed(
            session,
            report_id,
            try_,
            now=now,
            object_key=object_key,
            file_name=file_name,
            content_type=content_type,
            rows=rows,
            size=size,
            sha256=sha256,
            expires=now + timedelta(days=retention_days),
        )
        if done is not None:
            await events.emit(
                session,
                done.organization_id,
                "report.succeeded",
                {
                    "course": done.external_id,
                    "report": report_id,
                    "kind": done.kind,
                    "file_name": file_name,
                    "rows": rows,
                    "bytes": size,
                },
            )
        await session.commit()
    return done is not None


async def retry_or_fail(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: int, tries: int, error: str
) -> timedelta | None:
    """After a transient error: back to queued with the delay before the next try, or failed for good
    (None) after MAX_TRIES."""
    async with sessionmaker() as session:
        if tries < MAX_TRIES:
            await repository.requeue(session, report_id, f"try {tries} failed ({error[:200]}); retrying")
            await session.commit()
            return RETRY_AFTER[tries - 1]
        await _fail(session, report_id, f"failed {tries} times; last error: {error}")
        return None


async def fail(sessionmaker: async_sessionmaker[AsyncSession], report_id: int, error: str) -> None:
    async with sessionmaker() as session:
        await _fail(session, report_id, error)


async def _fail(session: AsyncSession, report_id: int, error: str) -> None:
    failed = await repository.fail(session, report_id, error[:2000], clock.now())
    await _announce_failures(session, [failed] if failed else [])
    await session.commit()


async def recover_abandoned(session: AsyncSession, lease: timedelta) -> list[tuple[int, int]]:
    """Running reports whose worker fell silent past `lease` (worker lost): back to queued for another
    try, or failed once they have had MAX_TRIES. Returns (report id, tries) of those to enqueue."""
    now = clock.now()
    again = await repository.requeue_silent(session, now - lease, MAX_TRIES)
    failed = await repository.fail_silent(session, now - lease, MAX_TRIES, now)
    await _announce_failures(session, failed)
    return [(r.id, r.tries) for r in again]


async def _announce_failures(session: AsyncSession, failed: Sequence[Finished]) -> None:
    """`report.failed` for each."""
    for r in failed:
        data = {"course": r.external_id, "report": r.id, "kind": r.kind, "error": r.error}
        await events.emit(session, r.organization_id, "report.failed", data)


async def expire(session: AsyncSession, store: ObjectStore) -> int:
    """Delete the files of reports past their retention (one request a thousand files); the records
    stay, marked expired. A file the store could not delete keeps its record for the next round."""
    due = await repository.expiring(session, clock.now())
    if not due:
        return 0
    kept = set(await store.delete_many([r.object_key for r in due]))
    deleted = [r.id for r in due if r.object_key not in kept]
    if deleted:
        await repository.mark_expired(session, deleted)
        await session.commit()
    return len(deleted)


def object_key(report: ReportRecord, extension: str) -> str:
    """Known before the file is built (the upload starts while it is written); one per try, so a try
    that lost its lease never overwrites or deletes the file of the try that replaced it. The
    download's file name is given when the link is minted."""
    return f"reports/{report.course_id}/{report.id}/{report.tries}/report.{extension}"


def page_url(template: str, course: str, report_id: int) -> str:
    return template.format(course=quote(course, safe=""), report=report_id)
