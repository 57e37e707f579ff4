"""Course sessions: the test platform's test sessions, sittings of a course's assessments (the morning
sitting, the resit) that attempts belong to. Attempts are put in a session and taken out in batches of
(assessment, learner) pairs, each batch one set-based statement; a learner without an attempt gets one
(`to_be_taken`), as excusing does, so a session can be planned before anyone sits it. An attempt is in
at most one session: putting it in another moves it. Taking attempts out of a session keeps them.

Every read that takes a `session` filter (a session's external id) follows one rule. Figures of
assessments keep the attempts in the session (`t.session_id = ...`): the results table and its counts,
the dashboard, `results_xlsx`, `skills_xlsx`, an assessment's statistics and the course statistics' line
per assessment, the group report's results. Views of learners keep the learners with an attempt in it
(`with_attempt_in`) and show all of theirs: gradebook rows, the course grade's statistics, individual
reports, progression; a view of one assessment's learners (its certificates) keeps those whose attempt
at that assessment is in it (`attempt_at_in`). So one assessment in one session counts the same attempts
everywhere.

Every change is audited: `session.created` / `updated` / `deleted`, and for a batch one
`session.attempts_added` / `session.attempts_removed` entry with its counts beside one
`session.attempt_added` / `session.attempt_removed` entry per attempt it changed (the learner's own
history shows it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import IN_SCOPE, CourseRef
from gradeflow.audit import service as audit
from gradeflow.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.commands import SessionAttempts, SessionCreate, SessionPatch
from gradeflow.db.models import CourseSession

_FIELDS = ("title", "starts_at", "ends_at")


async def session_id(session: AsyncSession, course_id: int, external_id: str, lock: bool = False) -> int:
    """The id of the course's session `external_id` (404 naming it, as an unknown assessment is); with
    `lock`, the row is held (FOR KEY SHARE) until the commit."""
    found = await _id(session, course_id, external_id, lock)
    if found is None:
        raise NotFound(f"Session {external_id!r} not found in this course.")
    return found


_FIND = "SELECT id FROM course_sessions WHERE course_id = :c AND external_id = :s"


async def _id(session: AsyncSession, course_id: int, external_id: str, lock: bool = False) -> int | None:
    sql = _FIND + " FOR KEY SHARE" if lock else _FIND
    found = await session.scalar(text(sql), {"c": course_id, "s": external_id})
    return None if found is None else int(found)


async def unknown(session: AsyncSession, course_id: int, external_id: str) -> bool:
    """Whether the course has no session `external_id` (for the reports' checks of what they name)."""
    return await _id(session, course_id, external_id) is None


def with_attempt_in(session_sql: str, enrollment: str = "e") -> str:
    """SQL: the learner of enrollment `enrollment` has an attempt in the session whose id `session_sql`
    gives (the learner-level side of the module's rule)."""
    attempts = f"SELECT 1 FROM attempts st WHERE st.enrollment_id = {enrollment}.id"  # noqa: S608 (an alias)
    return f"EXISTS ({attempts} AND st.session_id = {session_sql})"


def attempt_at_in(assessment_sql: str, session_sql: str, enrollment: str = "e") -> str:
    """SQL: the learner of enrollment `enrollment` sat the assessment whose id `assessment_sql` gives in
    the session whose id `session_sql` gives - the per-assessment side of the module's rule, for a view
    of one assessment's learners (its certificates: a certificate comes from that attempt)."""
    attempts = f"SELECT 1 FROM attempts st WHERE st.enrollment_id = {enrollment}.id"  # noqa: S608 (an alias)
    return f"EXISTS ({attempts} AND st.assessment_id = {assessment_sql} AND st.session_id = {session_sql})"


# --- the sessions ---------------------------------------------------------------------------------

# A grader's count is of the attempts allocated to them (IN_SCOPE, as in their results table).
_SELECT = f"""
    SELECT s.id, s.external_id, s.title, s.starts_at, s.ends_at, s.created_at, s.updated_at,
           (SELECT count(*) FROM attempts t WHERE t.session_id = s.id AND {IN_SCOPE}) AS attempts
    FROM course_sessions s WHERE s.course_id = :c
"""  # noqa: S608 (constant SQL)


async def list_sessions(
    session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None, scope: list[str] | None = None
) -> Page[Any]:
    """The course's sessions in the order they were made, each with its number of attempts (within a
    grader's `scope`)."""
    rows = await session.execute(
        text(_SELECT + " AND s.id > :after ORDER BY s.id LIMIT :lim"),
        {"c": ref.id, "after": last_id_after(cursor), "lim": limit + 1, "scope": scope},
    )
    return page_of([dict(r) for r in rows.mappings()], limit, lambda r: r["id"])


async def get(
    session: AsyncSession, ref: CourseRef, external_id: str, scope: list[str] | None = None
) -> dict[str, Any]:
    """One session with its number of attempts (within a grader's `scope`)."""
    params = {"c": ref.id, "s": external_id, "scope": scope}
    row = (await session.execute(text(_SELECT + " AND s.external_id = :s"), params)).mappings().first()
    if row is None:
        raise NotFound(f"Session {external_id!r} not found in this course.")
    return dict(row)


async def create(session: AsyncSession, ref: CourseRef, body: SessionCreate, actor: str) -> dict[str, Any]:
    """Create a session; its external id must be new in the course (409)."""
    stmt = (
        pg_insert(CourseSession)
        .values(course_id=ref.id, **body.model_dump())
        .on_conflict_do_nothing(index_elements=["course_id", "external_id"])
        .returning(CourseSession.id)
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        raise Conflict(f"Session {body.external_id!r} already exists in this course.")
    await audit.record(session, ref.organization_id, ref.id, actor, "session.created", new=body.model_dump())
    await session.commit()
    return await get(session, ref, body.external_id)


async def update(
    session: AsyncSession, ref: CourseRef, external_id: str, body: SessionPatch, actor: str
) -> dict[str, Any]:
    """Change a session's title or window (null clears one); the window stays ends_at > starts_at."""
    row = (
        (
            await session.execute(
                text(
                    "SELECT id, title, starts_at, ends_at FROM course_sessions"
                    " WHERE course_id = :c AND external_id = :s FOR UPDATE"
                ),
                {"c": ref.id, "s": external_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Session {external_id!r} not found in this course.")
    new = {**{f: row[f] for f in _FIELDS}, **body.model_dump(exclude_unset=True)}
    if new["starts_at"] is not None and new["ends_at"] is not None and new["ends_at"] <= new["starts_at"]:
        pointer = "/ends_at" if "ends_at" in body.model_fields_set else "/starts_at"
        raise ValidationFailed.one(pointer, "The session must end after it starts.")
    changed = {f: new[f] for f in _FIELDS if new[f] != row[f]}
    if changed:
        await session.execute(
            text(
                "UPDATE course_sessions SET title = :title, starts_at = :starts_at, ends_at = :ends_at,"
                " updated_at = now() WHERE id = :id"
            ),
            {**new, "id": row["id"]},
        )
        old = {f: row[f] for f in changed}
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "session.updated",
            old={"session": external_id, **old},
            new={"session": external_id, **changed},
        )
    await session.commit()
    return await get(session, ref, external_id)


async def delete(session: AsyncSession, ref: CourseRef, external_id: str, actor: str) -> None:
    """Delete a session; its attempts stay, in no session."""
    found = await get(session, ref, external_id)
    await session.execute(text("DELETE FROM course_sessions WHERE id = :id"), {"id": found["id"]})
    old = {k: found[k] for k in ("external_id", *_FIELDS, "attempts")}
    await audit.record(session, ref.organization_id, ref.id, actor, "session.deleted", old=old)
    await session.commit()


# --- attempts in and out --------------------------------------------------------------------------

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
_AUDIT = """
    audited AS (
      INSERT INTO audit_log (organization_id, course_id, at, actor, request_id, action, learner, assessment, old, new)
      SELECT :org, :course, :at, :actor, :rid, :action, learner, assessment, old, new
      FROM changes ORDER BY learner, assessment
    )
    SELECT (SELECT coalesce(jsonb_agg(jsonb_build_array(i, no_assessment, no_learner) ORDER BY i), '[]') FROM bad)
             AS bad,
           (SELECT count(*) FROM ok) AS asked, (SELECT count(*) FROM changes) AS changed,
           (SELECT count(*) FROM changes WHERE created) AS created
"""
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


async def add_attempts(
    session: AsyncSession, ref: CourseRef, external_id: str, body: SessionAttempts, actor: str
) -> dict[str, Any]:
    """Put the learners' attempts at the assessments in the session (creating the attempts that do not
    exist yet, `to_be_taken`); one statement. Unknown assessments and learners are a 422 naming each."""
    counts = await _write(session, ref, external_id, body, actor, _ADD, "session.attempt_added")
    summary = {
        "session": external_id,
        "asked": counts["asked"],
        "added": counts["changed"],
        "created": counts["created"],
        "unchanged": counts["asked"] - counts["changed"],
    }
    await audit.record(session, ref.organization_id, ref.id, actor, "session.attempts_added", new=summary)
    await session.commit()
    return summary


async def remove_attempts(
    session: AsyncSession, ref: CourseRef, external_id: str, body: SessionAttempts, actor: str
) -> dict[str, Any]:
    """Take the learners' attempts at the assessments out of the session (they stay, in no session);
    pairs whose attempt is not in it are counted as unchanged. One statement."""
    counts = await _write(session, ref, external_id, body, actor, _REMOVE, "session.attempt_removed")
    summary = {
        "session": external_id,
        "asked": counts["asked"],
        "removed": counts["changed"],
        "unchanged": counts["asked"] - counts["changed"],
    }
    await audit.record(session, ref.organization_id, ref.id, actor, "session.attempts_removed", new=summary)
    await session.commit()
    return summary


# The course's batches in and out of sessions, one at a time (until the commit): under READ COMMITTED the
# batch's statement then starts after the other's commit and sees its attempts, so an attempt is created
# once and its move names the session it left. A lock of its own rather than of the enrollments: score
# writes lock attempts and then enrollments (grades.refresh_learners), the other order would deadlock.
_SERIALISE = text("SELECT pg_advisory_xact_lock(hashtextextended('course_sessions', :c))")


async def _write(
    session: AsyncSession, ref: CourseRef, external_id: str, body: SessionAttempts, actor: str, sql: str, action: str
) -> dict[str, int]:
    await session.execute(_SERIALISE, {"c": ref.id})
    # Held until the commit: a concurrent delete of the session waits instead of failing our insert.
    target = await session_id(session, ref.id, external_id, lock=True)
    params = {
        **audit.stamp(ref.organization_id, ref.id, actor),
        "assessments": [p.assessment for p in body.attempts],
        "learners": [p.learner for p in body.attempts],
        "session": target,
        "name": external_id,
        "action": action,
    }
    row = (await session.execute(text(sql), params)).mappings().one()
    if row["bad"]:
        raise ValidationFailed(_unknown(body, row["bad"]))
    return {k: int(row[k]) for k in ("asked", "changed", "created")}


def _unknown(body: SessionAttempts, bad: list[list[Any]]) -> list[FieldError]:
    errors = []
    for i, no_assessment, no_learner in bad:
        pair = body.attempts[i]
        if no_assessment:
            errors.append(FieldError(f"/attempts/{i}/assessment", f"The course has no assessment {pair.assessment!r}."))
        if no_learner:
            errors.append(FieldError(f"/attempts/{i}/learner", f"{pair.learner!r} is not enrolled in this course."))
    return errors
