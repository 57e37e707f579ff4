"""Course certificates: the allow list, generation runs, and the eligibility rule the grade report shares.

A generation records who is eligible at that moment and makes the certificates agree with it: the
latest generation is the truth, so a learner no longer eligible loses their certificate."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.notify import events
from shared.services import audit, enrollments, grades
from shared.services.access import CourseRef
from shared.services.paging import Page, last_id_after, newest_first, page_of

# Open edX marks these tracks "ID Verified" when the learner's identity was checked; other tracks say N/A.
ID_VERIFIED_TRACKS = ("verified", "professional", "masters", "executive-education")

# Who may have a certificate right now. Aliases: `e` enrollments, `g` course_grades of the served version
# (LEFT JOIN), `w` certificate_allowlist (LEFT JOIN on w.enrollment_id = e.id). The allow list wins over
# track and grade; otherwise an audit-track learner never gets one and anybody else needs a passing grade.
# Only enrolled learners: an unenrolled learner's row says N (as the document's example), never Y without
# a certificate to deliver.
ELIGIBLE_NOW = "(e.status = 'enrolled' AND (w.id IS NOT NULL OR (e.track <> 'audit' AND g.final_passed IS TRUE)))"

# Learners listed by name in a `certificates.generated` event (the counts are always complete).
MAX_EVENT_LEARNERS = 1000

_AUDIT_COLUMNS = "organization_id, course_id, at, actor, request_id, action, learner, assessment, item, old, new"


# --- the allow list -------------------------------------------------------------------------------


_ALLOWANCE = """
    SELECT w.id, e.external_id AS learner, w.notes, w.created_by, w.created_at
    FROM certificate_allowlist w JOIN enrollments e ON e.id = w.enrollment_id
"""


async def list_allowlist(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[Any]:
    """The course's allow list in the order learners were added."""
    rows = await session.execute(
        text(_ALLOWANCE + " WHERE w.course_id = :c AND w.id > :after ORDER BY w.id LIMIT :lim"),
        {"c": ref.id, "after": last_id_after(cursor), "lim": limit + 1},
    )
    return page_of(list(rows.mappings()), limit, lambda r: r["id"])


async def allow(session: AsyncSession, ref: CourseRef, learner: str, notes: str | None, actor: str) -> Any:
    """Put an enrolled learner on the allow list, or change the notes of one who is on it."""
    enrollment_id = (await enrollments.get_enrollment(session, ref, learner)).id
    old = await session.scalar(
        text(
            "SELECT jsonb_build_object('notes', notes) FROM certificate_allowlist WHERE enrollment_id = :e FOR UPDATE"
        ),
        {"e": enrollment_id},
    )
    await session.execute(
        text(
            """
            INSERT INTO certificate_allowlist (course_id, enrollment_id, notes, created_by, created_at)
            VALUES (:c, :e, :notes, :actor, :now)
            ON CONFLICT (enrollment_id) DO UPDATE SET notes = excluded.notes
            """
        ),
        {"c": ref.id, "e": enrollment_id, "notes": notes, "actor": actor, "now": clock.now()},
    )
    new = {"notes": notes}
    if old != new:
        await audit.record(
            session, ref.organization_id, ref.id, actor, "certificate.allowlisted", learner=learner, old=old, new=new
        )
    await session.commit()
    return (
        (await session.execute(text(_ALLOWANCE + " WHERE w.enrollment_id = :e"), {"e": enrollment_id})).mappings().one()
    )


async def disallow(session: AsyncSession, ref: CourseRef, learner: str, actor: str) -> None:
    """Take an enrolled learner off the allow list (nothing to do if they are not on it). A certificate
    they already hold stays until the next generation decides again."""
    enrollment_id = (await enrollments.get_enrollment(session, ref, learner)).id
    removed = await session.scalar(
        text("DELETE FROM certificate_allowlist WHERE enrollment_id = :e RETURNING jsonb_build_object('notes', notes)"),
        {"e": enrollment_id},
    )
    if removed is not None:
        await audit.record(
            session, ref.organization_id, ref.id, actor, "certificate.allowlist_removed", learner=learner, old=removed
        )
    await session.commit()


# --- generation -----------------------------------------------------------------------------------

# One statement: who is eligible now, the generation row, certificates issued, kept or revoked, and an
# audit entry per learner whose certificate appeared, changed or went. Data-modifying CTEs all see the
# certificates as they were before the statement (`before`), and touch disjoint rows.
_GENERATE = text(
    f"""
    WITH eligible AS (
      SELECT e.id AS enrollment_id, e.external_id AS learner, e.track AS type,
             CASE WHEN w.id IS NOT NULL THEN 'allowlist' ELSE 'passing' END AS reason
      FROM courses c
      JOIN enrollments e ON e.course_id = c.id
      LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
      LEFT JOIN certificate_allowlist w ON w.enrollment_id = e.id
      WHERE c.id = :course AND {ELIGIBLE_NOW}
    ),
    generation AS (
      INSERT INTO certificate_generations (course_id, policy_version, eligible, created_by, created_at)
      SELECT c.id, c.grades_version, (SELECT count(*) FROM eligible), :actor, :at FROM courses c WHERE c.id = :course
      RETURNING id, policy_version, eligible, created_by, created_at
    ),
    before AS (SELECT enrollment_id, type, reason FROM certificates WHERE course_id = :course),
    written AS (
      INSERT INTO certificates AS k (course_id, enrollment_id, generation_id, type, reason, created_at)
      SELECT :course, el.enrollment_id, generation.id, el.type, el.reason, :at FROM eligible el CROSS JOIN generation
      ON CONFLICT (enrollment_id) DO UPDATE SET
        generation_id = excluded.generation_id, type = excluded.type, reason = excluded.reason,
        -- a certificate dates from when it was issued in its present form
        created_at = CASE WHEN (k.type, k.reason) = (excluded.type, excluded.reason) THEN k.created_at
                          ELSE excluded.created_at END
    ),
    issued AS (
      SELECT el.learner, el.type, el.reason, b.type AS old_type, b.reason AS old_reason
      FROM eligible el LEFT JOIN before b USING (enrollment_id)
      WHERE b.enrollment_id IS NULL OR (b.type, b.reason) <> (el.type, el.reason)
    ),
    revoked AS (
      DELETE FROM certificates k USING enrollments e
      WHERE k.course_id = :course AND e.id = k.enrollment_id
        AND NOT EXISTS (SELECT 1 FROM eligible el WHERE el.enrollment_id = k.enrollment_id)
      RETURNING e.external_id AS learner, k.type, k.reason
    ),
    changes AS (
      SELECT 'certificate.issued' AS action, i.learner,
             CASE WHEN i.old_type IS NOT NULL THEN jsonb_build_object('type', i.old_type, 'reason', i.old_reason) END
               AS old,
             jsonb_build_object('type', i.type, 'reason', i.reason, 'generation', g.id) AS new
      FROM issued i CROSS JOIN generation g
      UNION ALL
      SELECT 'certificate.revoked', r.learner, jsonb_build_object('type', r.type, 'reason', r.reason),
             jsonb_build_object('generation', g.id)
      FROM revoked r CROSS JOIN generation g
    ),
    audited AS (
      INSERT INTO audit_log ({_AUDIT_COLUMNS})
      SELECT :org, :course, :at, :actor, :rid, action, learner, NULL, NULL, old, new
      FROM changes ORDER BY action, learner
    )
    SELECT g.id, g.policy_version, g.eligible, g.created_by, g.created_at,
           (SELECT count(*) FROM issued) AS issued, (SELECT count(*) FROM revoked) AS revoked,
           (SELECT coalesce(jsonb_agg(x ORDER BY x.learner), '[]') FROM (
              SELECT learner, type, reason FROM issued ORDER BY learner LIMIT :max) x) AS issued_learners,
           (SELECT coalesce(jsonb_agg(x.learner ORDER BY x.learner), '[]') FROM (
              SELECT learner FROM revoked ORDER BY learner LIMIT :max) x) AS revoked_learners
    FROM generation g
    """  # noqa: S608  (constant SQL)
)


async def generate(session: AsyncSession, ref: CourseRef, actor: str) -> dict[str, Any]:
    """Record who is eligible for a certificate now and make the course's certificates agree: eligible
    learners get (or keep) one of this generation, typed by their track; the others lose theirs."""
    # The decision reads stored grades: bring the stale ones current first, as every grade reader does.
    await grades.bring_current(session, ref.id)
    # One generation of a course at a time: the second waits, then decides on what the first wrote.
    await session.execute(text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": ref.id})
    row = (
        (
            await session.execute(
                _GENERATE, {**audit.stamp(ref.organization_id, ref.id, actor), "max": MAX_EVENT_LEARNERS}
            )
        )
        .mappings()
        .one()
    )
    summary = {
        "generation": row["id"],
        "policy_version": row["policy_version"],
        "eligible": row["eligible"],
        "issued_count": row["issued"],
        "revoked_count": row["revoked"],
    }
    await audit.record(session, ref.organization_id, ref.id, actor, "certificates.generated", new=summary)
    await events.emit(
        session,
        ref.organization_id,
        "certificates.generated",
        {
            "course": ref.external_id,
            **summary,
            "issued": row["issued_learners"],
            "revoked": row["revoked_learners"],
        },
    )
    await session.commit()
    return {k: row[k] for k in ("id", "policy_version", "eligible", "created_by", "created_at", "issued", "revoked")}


async def list_generations(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[Any]:
    """The course's generations, latest first."""
    sql = (
        "SELECT id, policy_version, eligible, created_by, created_at FROM certificate_generations WHERE course_id = :c"
    )
    return await newest_first(session, sql, {"c": ref.id}, limit, cursor)


async def list_certificates(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[Any]:
    """The course's certificates (as the latest generation left them), in enrollment order."""
    rows = await session.execute(
        text(
            """
            SELECT k.enrollment_id, e.external_id AS learner, k.type, k.reason, k.generation_id, k.created_at
            FROM certificates k JOIN enrollments e ON e.id = k.enrollment_id
            WHERE k.course_id = :c AND k.enrollment_id > :after ORDER BY k.enrollment_id LIMIT :lim
            """
        ),
        {"c": ref.id, "after": last_id_after(cursor), "lim": limit + 1},
    )
    return page_of(list(rows.mappings()), limit, lambda r: r["enrollment_id"])
