"""SQL of course sessions: the sessions, their attempts put in and taken out in set-based batches,
and the SQL fragments other domains' reads use to follow the session rule (`service/sessions.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.repository.access import IN_SCOPE
from gradeflow.audit.repository import COLUMNS as AUDIT_COLUMNS
from gradeflow.db.models import CourseSession


def with_attempt_in(session_sql: str, enrollment: str = "e") -> str:
    """SQL: the learner of enrollment `enrollment` has an attempt in the session whose id `session_sql`
    gives (the learner-level side of the session rule)."""
    attempts = f"SELECT 1 FROM attempts st WHERE st.enrollment_id = {enrollment}.id"  # noqa: S608 (an alias)
    return f"EXISTS ({attempts} AND st.session_id = {session_sql})"


def attempt_at_in(assessment_sql: str, session_sql: str, enrollment: str = "e") -> str:
    """SQL: the learner of enrollment `enrollment` sat the assessment whose id `assessment_sql` gives in
    the session whose id `session_sql` gives - the per-assessment side of the session rule, for a view
    of one assessment's learners (its certificates: a certificate comes from that attempt)."""
    attempts = f"SELECT 1 FROM attempts st WHERE st.enrollment_id = {enrollment}.id"  # noqa: S608 (an alias)
    return f"EXISTS ({attempts} AND st.assessment_id = {assessment_sql} AND st.session_id = {session_sql})"


_FIND = "SELECT id FROM course_sessions WHERE course_id = :c AND external_id = :s"


async def find_id(session: AsyncSession, course_id: int, external_id: str, lock: bool = False) -> int | None:
    """The id of the course's session `external_id`; with `lock`, held (FOR KEY SHARE) until the commit."""
    sql = _FIND + " FOR KEY SHARE" if lock else _FIND
    found = await session.scalar(text(sql), {"c": course_id, "s": external_id})
    return None if found is None else int(found)


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    external_id: str
    title: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempts: int  # within the grader's scope


# A grader's count is of the attempts allocated to them (IN_SCOPE, as in their results table).
_SELECT = f"""
    SELECT s.id, s.external_id, s.title, s.starts_at, s.ends_at, s.created_at, s.updated_at,
           (SELECT count(*) FROM attempts t WHERE t.session_id = s.id AND {IN_SCOPE}) AS attempts
    FROM course_sessions s WHERE s.course_id = :c
"""  # noqa: S608 (constant SQL)


async def sessions_page(
    session: AsyncSession, course_id: int, after: int, limit: int, scope: list[str] | None
) -> list[SessionRow]:
    """Up to `limit` of the course's sessions after id `after`, in id order."""
    rows = await session.execute(
        text(_SELECT + " AND s.id > :after ORDER BY s.id LIMIT :lim"),
        {"c": course_id, "after": after, "lim": limit, "scope": scope},
    )
    return [SessionRow(*r) for r in rows]


async def session_row(
    session: AsyncSession, course_id: int, external_id: str, scope: list[str] | None
) -> SessionRow | None:
    params = {"c": course_id, "s": external_id, "scope": scope}
    row = (await session.execute(text(_SELECT + " AND s.external_id = :s"), params)).first()
    return None if row is None else SessionRow(*row)


async def add_session(session: AsyncSession, course_id: int, fields: dict[str, Any]) -> bool:
    """False when the course has a session with its external id already."""
    stmt = (
        pg_insert(CourseSession)
        .values(course_id=course_id, **fields)
        .on_conflict_do_nothing(index_elements=["course_id", "external_id"])
        .returning(CourseSession.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


@dataclass(frozen=True, slots=True)
class SessionFields:
    id: int
    title: str | None
    starts_at: datetime | None
    ends_at: datetime | None


async def lock_session(session: AsyncSession, course_id: int, external_id: str) -> SessionFields | None:
    row = (
        await session.execute(
            text(
                "SELECT id, title, starts_at, ends_at FROM course_sessions"
                " WHERE course_id = :c AND external_id = :s FOR UPDATE"
            ),
            {"c": course_id, "s": external_id},
        )
    ).first()
    return None if row is None else SessionFields(*row)


async def update_session(
    session: AsyncSession, session_id: int, title: str | None, starts_at: datetime | None, ends_at: datetime | None
) -> None:
    await session.execute(
        text(
            "UPDATE course_sessions SET title = :title, starts_at = :starts_at, ends_at = :ends_at,"
            " updated_at = now() WHERE id = :id"
        ),
        {"title": title, "starts_at": starts_at, "ends_at": ends_at, "id": session_id},
    )


async def delete_session(session: AsyncSession, session_id: int) -> None:
    await session.execute(text("DELETE FROM course_sessions WHERE id = :id"), {"id": session_id})


# The batch's pairs resolved to ids; `bad` holds the unknown ones; `ok` is empty when there is any.
_PAIRS = """
    WITH pairs AS (
      SELECT p.i, p.assessment, p.learner, a.id AS assessment_id, e.id AS enrollment_id
      FROM unnest(CAST(:assessments AS text[]), CAST(:learners AS text[])) WITH ORDINALITY p(assessment, learner, i)
      LEFT JOIN assessments a ON a.course_id = :course AND a.external_id = p.assessment
      LEFT JOIN enrollments e ON e.course_id = :course AND e.external_id = p.learner
    ), bad AS (
      SELECT i - 1 AS i, assessment_id IS NULL AS no_assessment, enrollment_id IS NULL AS no_learner
      FROM pairs WHERE assessment_id IS NULL OR enrollment_id IS NULL
    ), ok AS (
      SELECT * FROM pairs WHERE NOT EXISTS (SELECT 1 FROM bad)
    ),
"""
_AUDIT = f"""
    audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT :org, :course, :at, :actor, :rid, :action, learner, assessment, NULL, old, new
      FROM changes ORDER BY learner, assessment
    )
    SELECT (SELECT coalesce(jsonb_agg(jsonb_build_array(i, no_assessment, no_learner) ORDER BY i), '[]') FROM bad)
             AS bad,
           (SELECT count(*) FROM ok) AS asked, (SELECT count(*) FROM changes) AS changed,
           (SELECT count(*) FROM changes WHERE created) AS created
"""  # noqa: S608 (constant SQL)
# Put in: new attempts (to_be_taken) where there are none; an attempt of another session moves.
_ADD = f"""{_PAIRS}
    before AS (  -- no FOR UPDATE: it would skip the rows `written` changes in the same statement
      SELECT t.id, t.session_id FROM ok JOIN attempts t
        ON t.assessment_id = ok.assessment_id AND t.enrollment_id = ok.enrollment_id
    ), written AS (
      INSERT INTO attempts (assessment_id, enrollment_id, status, session_id)
      SELECT assessment_id, enrollment_id, 'to_be_taken', :session FROM ok ORDER BY enrollment_id, assessment_id
      ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET session_id = excluded.session_id, updated_at = now()
      WHERE attempts.session_id IS DISTINCT FROM excluded.session_id
      RETURNING id, assessment_id, enrollment_id
    ), changes AS (
      SELECT ok.assessment, ok.learner, b.id IS NULL AS created,
             CASE WHEN b.id IS NOT NULL THEN jsonb_build_object('session', prev.external_id) END AS old,
             jsonb_build_object('session', CAST(:name AS text)) AS new
      FROM written w JOIN ok ON ok.assessment_id = w.assessment_id AND ok.enrollment_id = w.enrollment_id
      LEFT JOIN before b ON b.id = w.id LEFT JOIN course_sessions prev ON prev.id = b.session_id
    ),
{_AUDIT}"""  # noqa: S608 (constant SQL)
# Taken out: the attempts of the pairs that are in this session (the others are left as they are).
_REMOVE = f"""{_PAIRS}
    changes AS (
      UPDATE attempts t SET session_id = NULL, updated_at = now()
      FROM ok WHERE t.assessment_id = ok.assessment_id AND t.enrollment_id = ok.enrollment_id
        AND t.session_id = :session
      RETURNING ok.assessment, ok.learner, false AS created,
                jsonb_build_object('session', CAST(:name AS text)) AS old, jsonb_build_object('session', null) AS new
    ),
{_AUDIT}"""  # noqa: S608 (constant SQL)


# The course's batches in and out of sessions, one at a time (until the commit): under READ COMMITTED the
# batch's statement then starts after the other's commit and sees its attempts, so an attempt is created
# once and its move names the session it left. A lock of its own rather than of the enrollments: score
# writes lock attempts and then enrollments (grades.refresh_learners), the other order would deadlock.
_SERIALISE = text("SELECT pg_advisory_xact_lock(hashtextextended('course_sessions', :c))")


@dataclass(frozen=True, slots=True)
class BatchCounts:
    bad: list[list[Any]]  # [pair index, no such assessment, no such learner] of each unknown pair
    asked: int  # pairs (0 when any is unknown: nothing was changed)
    changed: int
    created: int  # attempts created (put in only)


async def move_attempts(
    session: AsyncSession, stamp: dict[str, Any], session_id: int, name: str, pairs: list[tuple[str, str]], into: bool
) -> BatchCounts:
    """Put the (assessment, learner) pairs' attempts in session `session_id` (`into`), or take those in
    it out, auditing each changed attempt (`stamp`: audit.stamp's columns); one statement."""
    params = {
        **stamp,
        "assessments": [a for a, _ in pairs],
        "learners": [learner for _, learner in pairs],
        "session": session_id,
        "name": name,
        "action": "session.attempt_added" if into else "session.attempt_removed",
    }
    row = (await session.execute(text(_ADD if into else _REMOVE), params)).one()
    return BatchCounts(row.bad, int(row.asked), int(row.changed), int(row.created))


async def serialise_batches(session: AsyncSession, course_id: int) -> None:
    """Wait for the course's other batches in or out of sessions (until the commit)."""
    await session.execute(_SERIALISE, {"c": course_id})
