"""The report records (`reports`): queued by the API, claimed, advanced and finished by a worker.

Every statement that reads or changes a record is here; the use cases in service/reports.py decide
when, and commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.paging import Page
from gradeflow.db.paging import newest_first


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """A report record with its course's external id."""

    id: int
    course_id: int
    kind: str
    params: dict[str, Any]
    requested_by: str
    status: str
    progress: int
    message: str | None
    tries: int
    rows: int | None
    bytes: int | None
    sha256: str | None
    object_key: str | None
    file_name: str | None
    content_type: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    course: str


@dataclass(frozen=True, slots=True)
class ClaimedReport(ReportRecord):
    """A record a worker has just claimed, with what it tells the requester."""

    course_title: str
    organization_id: int


@dataclass(frozen=True, slots=True)
class Finished:
    """A report that reached an end, for its event: its id, kind, error and course."""

    id: int
    kind: str
    error: str | None
    organization_id: int
    external_id: str


@dataclass(frozen=True, slots=True)
class Retry:
    """A report to enqueue again: its id and the try it had reached."""

    id: int
    tries: int


@dataclass(frozen=True, slots=True)
class Expiring:
    id: int
    object_key: str


async def add_queued(session: AsyncSession, course_id: int, kind: str, params: str, actor: str) -> int:
    """A new queued record (`params`: JSON text); its id."""
    report_id: int = await session.scalar(
        text(
            """
            INSERT INTO reports (course_id, kind, params, requested_by, message)
            VALUES (:c, :kind, CAST(:params AS jsonb), :actor, 'waiting for a worker') RETURNING id
            """
        ),
        {"c": course_id, "kind": kind, "params": params, "actor": actor},
    )
    return report_id


_SELECT = """
    SELECT r.*, c.external_id AS course FROM reports r JOIN courses c ON c.id = r.course_id
"""


async def report(session: AsyncSession, report_id: int) -> ReportRecord | None:
    row = (await session.execute(text(_SELECT + " WHERE r.id = :id"), {"id": report_id})).mappings().first()
    return None if row is None else ReportRecord(**row)


async def course_of(session: AsyncSession, report_id: int, organization_id: int) -> str | None:
    """The external id of the report's course, if the report is the organization's."""
    course: str | None = await session.scalar(
        text(
            "SELECT c.external_id FROM reports r JOIN courses c ON c.id = r.course_id"
            " WHERE r.id = :id AND c.organization_id = :o"
        ),
        {"id": report_id, "o": organization_id},
    )
    return course


async def reports_of_course(
    session: AsyncSession, course_id: int, limit: int, cursor: str | None
) -> Page[ReportRecord]:
    """The course's records, most recent first."""
    page = await newest_first(session, _SELECT + " WHERE r.course_id = :c", {"c": course_id}, limit, cursor)
    return Page([ReportRecord(**r) for r in page.items], page.next_cursor)


async def cancel(session: AsyncSession, report_id: int, course_id: int, now: datetime, actor: str) -> bool:
    """Cancel the record if it is queued or running; whether it was."""
    done = await session.scalar(
        text(
            """
            UPDATE reports SET status = 'cancelled', finished_at = :now, message = 'cancelled by ' || :actor
            WHERE id = :id AND course_id = :c AND status IN ('queued', 'running') RETURNING id
            """
        ),
        {"id": report_id, "c": course_id, "now": now, "actor": actor},
    )
    return done is not None


async def claim(session: AsyncSession, report_id: int, now: datetime) -> ClaimedReport | None:
    """Mark a queued record running (one more try); None when it is not queued."""
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
                {"id": report_id, "now": now},
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else ClaimedReport(**row)


async def record_progress(
    session: AsyncSession, report_id: int, try_: int, percent: int, message: str, now: datetime
) -> bool:
    """Progress and heartbeat of try `try_`; False when the record is no longer that running try."""
    alive = await session.scalar(
        text(
            """
            UPDATE reports SET progress = :p, message = :m, heartbeat_at = :now
            WHERE id = :id AND status = 'running' AND tries = :t RETURNING id
            """
        ),
        {"id": report_id, "t": try_, "p": percent, "m": message, "now": now},
    )
    return alive is not None


@dataclass(frozen=True, slots=True)
class Succeeded:
    organization_id: int
    external_id: str
    kind: str


async def succeed(
    session: AsyncSession,
    report_id: int,
    try_: int,
    *,
    now: datetime,
    object_key: str,
    file_name: str,
    content_type: str,
    rows: int,
    size: int,
    sha256: str,
    expires: datetime,
) -> Succeeded | None:
    """Mark try `try_` succeeded with its file; None when the record is no longer that running try."""
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
                "expires": expires,
            },
        )
    ).first()
    return None if done is None else Succeeded(*done)


async def requeue(session: AsyncSession, report_id: int, message: str) -> None:
    """A running record back to queued, saying why."""
    await session.execute(
        text("UPDATE reports SET status = 'queued', message = :m WHERE id = :id AND status = 'running'"),
        {"id": report_id, "m": message},
    )


async def fail(session: AsyncSession, report_id: int, error: str, now: datetime) -> Finished | None:
    """Mark a running or queued record failed; None when it was neither."""
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
            {"id": report_id, "now": now, "e": error},
        )
    ).first()
    return None if failed is None else Finished(*failed)


async def requeue_silent(session: AsyncSession, silent_since: datetime, max_tries: int) -> list[Retry]:
    """Running records whose worker fell silent before `silent_since`, with tries left: back to queued."""
    rows = await session.execute(
        text(
            """
            UPDATE reports SET status = 'queued',
              message = 'the worker was lost during try ' || tries || '; trying again'
            WHERE status = 'running' AND heartbeat_at < :t AND tries < :max
            RETURNING id, tries
            """
        ),
        {"t": silent_since, "max": max_tries},
    )
    return [Retry(*r) for r in rows]


async def fail_silent(session: AsyncSession, silent_since: datetime, max_tries: int, now: datetime) -> list[Finished]:
    """Running records whose worker fell silent before `silent_since` after their last try: failed."""
    rows = await session.execute(
        text(
            """
            UPDATE reports r SET status = 'failed', finished_at = :now, message = 'failed',
              error = 'the worker was lost during each of ' || r.tries || ' tries'
            FROM courses c
            WHERE r.status = 'running' AND r.heartbeat_at < :t AND r.tries >= :max AND c.id = r.course_id
            RETURNING r.id, r.kind, r.error, c.organization_id, c.external_id
            """
        ),
        {"t": silent_since, "max": max_tries, "now": now},
    )
    return [Finished(*r) for r in rows]


async def expiring(session: AsyncSession, now: datetime) -> list[Expiring]:
    """Succeeded records past their retention, up to 1,000."""
    rows = await session.execute(
        text("SELECT id, object_key FROM reports WHERE status = 'succeeded' AND expires_at <= :now LIMIT 1000"),
        {"now": now},
    )
    return [Expiring(*r) for r in rows]


async def mark_expired(session: AsyncSession, report_ids: list[int]) -> None:
    """The records' files are deleted."""
    await session.execute(
        text(
            "UPDATE reports SET status = 'expired', message = 'file deleted after the retention period'"
            " WHERE id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": report_ids},
    )
