"""Report jobs: the record in PostgreSQL is the source of truth for every report.

The API commits a queued record, then enqueues the job with the report id as its job id. A worker
claims the record with a conditional update (a job delivered twice runs once), reports progress,
uploads the file and marks it succeeded. Download links are minted on every read, never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.service.access import Action, CourseRef, course_access
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core import clock, jsonutil
from gradeflow.core.errors import Conflict, NotFound
from gradeflow.core.paging import Page, newest_first
from gradeflow.grades.service import grades
from gradeflow.notify import events
from gradeflow.reports.commands import ReportRequest
from gradeflow.reports.service import report_references
from gradeflow.storage.s3 import ObjectStore

MAX_TRIES = 3
RETRY_AFTER = [timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2)]


def job_id(report_id: int, tries: int = 0) -> str:
    """One job per try: a job left in the queue by a worker that died does not hold up the next try."""
    return f"report-{report_id}" if tries == 0 else f"report-{report_id}-{tries}"


async def create(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, body: ReportRequest, actor: str
) -> dict[str, Any]:
    """Check what the request names (422 for anything the course lacks), record it (queued,
    audited), commit, then enqueue the job."""
    await report_references.check(session, ref.id, body.params)
    params = body.params.model_dump(mode="json", exclude_none=True)
    report_id: int = await session.scalar(
        text(
            """
            INSERT INTO reports (course_id, kind, params, requested_by, message)
            VALUES (:c, :kind, CAST(:params AS jsonb), :actor, 'waiting for a worker') RETURNING id
            """
        ),
        {
            "c": ref.id,
            "kind": body.kind,
            "params": jsonutil.dumps({**params, **({"notify_email": body.notify_email} if body.notify_email else {})}),
            "actor": actor,
        },
    )
    # A report holds every learner's results: who asked for which is on the record, like each link.
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "report.requested",
        new={"report": report_id, "kind": body.kind, "params": params},
    )
    await session.commit()
    await jobs.enqueue(queue, jobs.RUN_REPORT, job_id(report_id), report_id)
    return await _view(session, report_id)


_SELECT = """
    SELECT r.*, c.external_id AS course FROM reports r JOIN courses c ON c.id = r.course_id
"""


async def _row(session: AsyncSession, report_id: int) -> Any:
    row = (await session.execute(text(_SELECT + " WHERE r.id = :id"), {"id": report_id})).mappings().first()
    if row is None:
        raise NotFound(f"Report {report_id} not found.")
    return row


def _shape(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "course": row["course"],
        "kind": row["kind"],
        "params": {k: v for k, v in row["params"].items() if k != "notify_email"},
        "requested_by": row["requested_by"],
        "status": row["status"],
        "progress": row["progress"],
        "message": row["message"],
        "rows": row["rows"],
        "bytes": row["bytes"],
        "sha256": row["sha256"],
        "file_name": row["file_name"],
        "error": row["error"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "expires_at": row["expires_at"],
        "download_url": None,
        "download_expires_at": None,
    }


async def _view(session: AsyncSession, report_id: int) -> dict[str, Any]:
    return _shape(await _row(session, report_id))


async def report_access(session: AsyncSession, principal: Principal, report_id: int, action: Action) -> CourseRef:
    """The report's course, checked for `action` (a report of another organization is 404)."""
    course = await session.scalar(
        text(
            "SELECT c.external_id FROM reports r JOIN courses c ON c.id = r.course_id"
            " WHERE r.id = :id AND c.organization_id = :o"
        ),
        {"id": report_id, "o": principal.organization_id},
    )
    if course is None:
        raise NotFound(f"Report {report_id} not found.")
    return await course_access(session, principal, course, action)


async def get(
    session: AsyncSession, store: ObjectStore, ref: CourseRef, report_id: int, actor: str, link_seconds: int
) -> dict[str, Any]:
    """The record; once succeeded, with a download link minted now (valid `link_seconds`), whose
    issuance is audited. The link is never stored."""
    row = await _row(session, report_id)
    view = _shape(row)
    if row["status"] == "succeeded":
        view["download_url"], view["download_expires_at"] = await issue_link(
            session, store, ref, row, actor, link_seconds
        )
    return view


async def issue_link(
    session: AsyncSession, store: ObjectStore, ref: CourseRef, row: Any, actor: str, link_seconds: int
) -> tuple[str, datetime]:
    if row["status"] != "succeeded":
        raise Conflict(f"The report is {row['status']}: there is no file to download.")
    issued = clock.now()
    url = await store.presign_get(row["object_key"], link_seconds, row["file_name"])
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "report.link_issued",
        new={"report": row["id"], "kind": row["kind"], "file_name": row["file_name"], "valid_seconds": link_seconds},
    )
    await session.commit()
    return url, issued + timedelta(seconds=link_seconds)


async def download_link(
    session: AsyncSession, store: ObjectStore, ref: CourseRef, report_id: int, actor: str, link_seconds: int
) -> str:
    url, _ = await issue_link(session, store, ref, await _row(session, report_id), actor, link_seconds)
    return url


async def list_reports(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[dict[str, Any]]:
    """Most recent first, pending and running ones with their progress."""
    page = await newest_first(session, _SELECT + " WHERE r.course_id = :c", {"c": ref.id}, limit, cursor)
    return Page([_shape(r) for r in page.items], page.next_cursor)


async def cancel(session: AsyncSession, ref: CourseRef, report_id: int, actor: str) -> dict[str, Any]:
    """Cancel a queued or running report (a running one stops at its next chunk)."""
    done = await session.scalar(
        text(
            """
            UPDATE reports SET status = 'cancelled', finished_at = :now, message = 'cancelled by ' || :actor
            WHERE id = :id AND course_id = :c AND status IN ('queued', 'running') RETURNING id
            """
        ),
        {"id": report_id, "c": ref.id, "now": clock.now(), "actor": actor},
    )
    if done is None:
        row = await _row(session, report_id)
        raise Conflict(f"The report is {row['status']}; only a queued or running report can be cancelled.")
    await audit.record(session, ref.organization_id, ref.id, actor, "report.cancelled", new={"report": report_id})
    await session.commit()
    return await _view(session, report_id)


# --- the worker's side ----------------------------------------------------------------------------


async def claim(sessionmaker: async_sessionmaker[AsyncSession], report_id: int) -> dict[str, Any] | None:
    """Take a queued report (None when it is not queued: taken, cancelled or finished), and bring the
    course's stale grades current, as every reader of stored grades does first: the report's snapshot
    is taken after this, so it never shows a grade older than the scores written before the request
    (the follow-up that refreshes them may still be waiting out its half second)."""
    async with sessionmaker() as session:
        row = (
            (
                await session.execute(
                    text(
                        """
                        UPDATE reports r SET status = 'running', started_at = :now, heartbeat_at = :now,
                               tries = tries + 1, progress = 0, message = 'starting', error = NULL
                        FROM courses c
                        WHERE r.id = :id AND r.status = 'queued' AND c.id = r.course_id
                        RETURNING r.*, c.external_id AS course, c.title AS course_title, c.organization_id
                        """
                    ),
                    {"id": report_id, "now": clock.now()},
                )
            )
            .mappings()
            .first()
        )
        await session.commit()
        if row:
            await grades.bring_current(session, row["course_id"])
    return dict(row) if row else None


class Cancelled(Exception):
    """The report was cancelled while it ran."""


async def progress(
    sessionmaker: async_sessionmaker[AsyncSession], report_id: int, try_: int, percent: int, message: str
) -> None:
    """Record progress (and that the worker is alive); raises Cancelled if the report was cancelled,
    or taken over by another try after this worker fell silent past the lease."""
    async with sessionmaker() as session:
        alive = await session.scalar(
            text(
                """
                UPDATE reports SET progress = :p, message = :m, heartbeat_at = :now
                WHERE id = :id AND status = 'running' AND tries = :t RETURNING id
                """
            ),
            {"id": report_id, "t": try_, "p": max(0, min(99, percent)), "m": message, "now": clock.now()},
        )
        await session.commit()
    if alive is None:
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
        done = (
            await session.execute(
                text(
                    """
                    UPDATE reports r SET status = 'succeeded', progress = 100, message = 'ready', finished_at = :now,
                           object_key = :key, file_name = :name, content_type = :type, rows = :rows, bytes = :size,
                           sha256 = :sha, expires_at = :expires
                    FROM courses c
                    WHERE r.id = :id AND r.status = 'running' AND r.tries = :t AND c.id = r.course_id
                    RETURNING c.organization_id, c.external_id, r.kind
                    """
                ),
                {
                    "id": report_id,
                    "t": try_,
                    "now": now,
                    "key": object_key,
                    "name": file_name,
                    "type": content_type,
                    "rows": rows,
                    "size": size,
                    "sha": sha256,
                    "expires": now + timedelta(days=retention_days),
                },
            )
        ).first()
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
            await session.execute(
                text("UPDATE reports SET status = 'queued', message = :m WHERE id = :id AND status = 'running'"),
                {"id": report_id, "m": f"try {tries} failed ({error[:200]}); retrying"},
            )
            await session.commit()
            return RETRY_AFTER[tries - 1]
        await _fail(session, report_id, f"failed {tries} times; last error: {error}")
        return None


async def fail(sessionmaker: async_sessionmaker[AsyncSession], report_id: int, error: str) -> None:
    async with sessionmaker() as session:
        await _fail(session, report_id, error)


async def _fail(session: AsyncSession, report_id: int, error: str) -> None:
    failed = (
        await session.execute(
            text(
                """
                UPDATE reports r SET status = 'failed', finished_at = :now, error = :e, message = 'failed'
                FROM courses c
                WHERE r.id = :id AND r.status IN ('running', 'queued') AND c.id = r.course_id
                RETURNING r.id, r.kind, r.error, c.organization_id, c.external_id
                """
            ),
            {"id": report_id, "now": clock.now(), "e": error[:2000]},
        )
    ).first()
    await _announce_failures(session, [failed] if failed else [])
    await session.commit()


async def recover_abandoned(session: AsyncSession, lease: timedelta) -> list[tuple[int, int]]:
    """Running reports whose worker fell silent past `lease` (worker lost): back to queued for another
    try, or failed once they have had MAX_TRIES. Returns (report id, tries) of those to enqueue."""
    now = clock.now()
    silent = {"t": now - lease, "max": MAX_TRIES, "now": now}
    again = (
        await session.execute(
            text(
                """
                UPDATE reports SET status = 'queued',
                  message = 'the worker was lost during try ' || tries || '; trying again'
                WHERE status = 'running' AND heartbeat_at < :t AND tries < :max
                RETURNING id, tries
                """
            ),
            silent,
        )
    ).all()
    failed = (
        await session.execute(
            text(
                """
                UPDATE reports r SET status = 'failed', finished_at = :now, message = 'failed',
                  error = 'the worker was lost during each of ' || r.tries || ' tries'
                FROM courses c
                WHERE r.status = 'running' AND r.heartbeat_at < :t AND r.tries >= :max AND c.id = r.course_id
                RETURNING r.id, r.kind, r.error, c.organization_id, c.external_id
                """
            ),
            silent,
        )
    ).all()
    await _announce_failures(session, failed)
    return [(row.id, row.tries) for row in again]


async def _announce_failures(session: AsyncSession, failed: Sequence[Any]) -> None:
    """`report.failed` for each (id, kind, error, organization_id, external_id) row."""
    for r in failed:
        data = {"course": r.external_id, "report": r.id, "kind": r.kind, "error": r.error}
        await events.emit(session, r.organization_id, "report.failed", data)


async def expire(session: AsyncSession, store: ObjectStore) -> int:
    """Delete the files of reports past their retention; the records stay, marked expired."""
    rows = (
        await session.execute(
            text("SELECT id, object_key FROM reports WHERE status = 'succeeded' AND expires_at <= :now LIMIT 1000"),
            {"now": clock.now()},
        )
    ).all()
    for report_id, key in rows:
        await store.delete(key)
        await session.execute(
            text(
                "UPDATE reports SET status = 'expired', message = 'file deleted after the retention period'"
                " WHERE id = :id"
            ),
            {"id": report_id},
        )
        await session.commit()
    return len(rows)


def object_key(report: dict[str, Any], extension: str) -> str:
    """Known before the file is built (the upload starts while it is written); one per try, so a try
    that lost its lease never overwrites or deletes the file of the try that replaced it. The
    download's file name is given when the link is minted."""
    return f"reports/{report['course_id']}/{report['id']}/{report['tries']}/report.{extension}"


def page_url(template: str, course: str, report_id: int) -> str:
    return template.format(course=quote(course, safe=""), report=report_id)
