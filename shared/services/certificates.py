"""Certificates: the allow list, generation runs per certification, revoking and reinstating, and the
eligibility rule the grade report shares.

A generation records who is eligible at that moment under a certification (the course's, or one
assessment's) and makes that certification's certificates agree with it: the latest generation is the
truth, so a learner no longer eligible loses their certificate. A revoked certificate is the exception:
staff took it back, so generations leave it as it is (never deleted, never issued again) until it is
reinstated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock, jobs
from shared.errors import Conflict, NotFound
from shared.notify import events
from shared.services import (
    audit,
    certifications,
    diplomas,
    enrollments,
    grades,
    published,
    report_data,
    report_records,
)
from shared.services.access import CourseRef
from shared.services.certifications import Scope, course_rule_sql
from shared.services.paging import Page, last_id_after, newest_first, page_of

# An assessment's certification: the learner's result at the assessment `a` (attempt `t`) is final -
# graded, not excused (an excused result never passes), with points, confirmed where it has manual
# items - and is at least the threshold (:threshold) percent, compared exactly (70 % of 10 is 7).
ASSESSMENT_PASSED = f"""(t.status = 'graded' AND NOT t.excused AND t.earned IS NOT NULL AND t.possible > 0
    AND NOT ({published.AWAITS_CONFIRMATION}) AND t.earned * 100 >= CAST(:threshold AS numeric) * t.possible)"""

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

# Who is eligible under a certification, as (enrollment_id, learner, type, reason): the course's rule
# (allow list, track, course grade) or an assessment's (its final result against the threshold).
# A learner whose certificate of it is revoked is not: staff took it back.
_ELIGIBLE_COURSE = """
      SELECT e.id AS enrollment_id, e.external_id AS learner, e.track AS type,
             CASE WHEN w.id IS NOT NULL THEN 'allowlist' ELSE 'passing' END AS reason
      FROM courses c
      JOIN enrollments e ON e.course_id = c.id
      LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
      LEFT JOIN certificate_allowlist w ON w.enrollment_id = e.id
      WHERE c.id = :course AND {rule} AND NOT EXISTS (
        SELECT 1 FROM certificates r
        WHERE r.enrollment_id = e.id AND r.assessment_id IS NULL AND r.revoked_at IS NOT NULL)
"""
_ELIGIBLE_ASSESSMENT = f"""
      SELECT e.id AS enrollment_id, e.external_id AS learner, e.track AS type, 'passing' AS reason
      FROM attempts t JOIN assessments a ON a.id = t.assessment_id JOIN enrollments e ON e.id = t.enrollment_id
      WHERE t.assessment_id = :assessment AND e.status = 'enrolled' AND {ASSESSMENT_PASSED} AND NOT EXISTS (
        SELECT 1 FROM certificates r
        WHERE r.enrollment_id = e.id AND r.assessment_id = :assessment AND r.revoked_at IS NOT NULL)
"""  # noqa: S608 (constant SQL)

# One statement: who is eligible now, the generation row, certificates issued, kept or taken away, and an
# audit entry per learner whose certificate appeared, changed or went. Data-modifying CTEs all see the
# certificates as they were before the statement (`before`), and touch disjoint rows. `{mine}` is the
# certification's certificates (alias k).
_GENERATE = f"""
    WITH eligible AS ({{eligible}}),
    generation AS (
      INSERT INTO certificate_generations (course_id, assessment_id, policy_version, eligible, created_by, created_at)
      SELECT c.id, CAST(:assessment AS bigint), CASE WHEN CAST(:assessment AS bigint) IS NULL THEN c.grades_version END,
             (SELECT count(*) FROM eligible), :actor, :at
      FROM courses c WHERE c.id = :course
      RETURNING id, assessment_id, policy_version, eligible, created_by, created_at
    ),
    before AS (SELECT k.enrollment_id, k.type, k.reason FROM certificates k WHERE {{mine}} AND k.revoked_at IS NULL),
    written AS (
      INSERT INTO certificates AS k (course_id, enrollment_id, assessment_id, generation_id, type, reason, created_at)
      SELECT :course, el.enrollment_id, generation.assessment_id, generation.id, el.type, el.reason, :at
      FROM eligible el CROSS JOIN generation
      ON CONFLICT ON CONSTRAINT uq_certificates_enrollment_id_assessment_id DO UPDATE SET
        generation_id = excluded.generation_id, type = excluded.type, reason = excluded.reason,
        -- a certificate dates from when it was issued in its present form
        created_at = CASE WHEN (k.type, k.reason) = (excluded.type, excluded.reason) THEN k.created_at
                          ELSE excluded.created_at END
      WHERE k.revoked_at IS NULL
    ),
    issued AS (
      SELECT el.learner, el.type, el.reason, b.type AS old_type, b.reason AS old_reason
      FROM eligible el LEFT JOIN before b USING (enrollment_id)
      WHERE b.enrollment_id IS NULL OR (b.type, b.reason) <> (el.type, el.reason)
    ),
    revoked AS (
      DELETE FROM certificates k USING enrollments e
      WHERE {{mine}} AND k.revoked_at IS NULL AND e.id = k.enrollment_id
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
      SELECT :org, :course, :at, :actor, :rid, action, learner, CAST(:assessment_name AS text), NULL, old, new
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


def _mine(scope: Scope) -> str:
    """SQL: certificate `k` is of the scope's certification (spelt so each reads by an index)."""
    if scope.assessment_id is None:
        return "k.course_id = :course AND k.assessment_id IS NULL"
    return "k.course_id = :course AND k.assessment_id = :assessment"


async def generate(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str | None, actor: str
) -> dict[str, Any]:
    """Record who is eligible for a certification now (the course's, or the assessment `assessment`'s:
    404 when it has none) and make its certificates agree: eligible learners get (or keep) one of this
    generation, typed by their track; the others lose theirs; revoked ones are left alone. After the
    commit, the diplomas are queued for rendering."""
    scope = await certifications.scope_of(session, ref, assessment)
    rule, threshold = await certifications.rule_of(session, ref, scope)
    if scope.assessment_id is None:
        # The decision reads stored grades: bring the stale ones current first, as every grade reader does.
        await grades.bring_current(session, ref.id)
        eligible = _ELIGIBLE_COURSE.format(rule=await course_rule_sql(session, ref.id))
    else:
        eligible = _ELIGIBLE_ASSESSMENT
    # One generation of a course at a time: the second waits, then decides on what the first wrote.
    await session.execute(text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": ref.id})
    statement = _GENERATE.format(eligible=eligible, mine=_mine(scope))
    params = {
        **audit.stamp(ref.organization_id, ref.id, actor),
        "max": MAX_EVENT_LEARNERS,
        "assessment": scope.assessment_id,
        "assessment_name": scope.assessment,
        "threshold": threshold,
    }
    row = (await session.execute(text(statement), params)).mappings().one()
    summary = {
        "generation": row["id"],
        "assessment": scope.assessment,
        "rule": rule,
        "policy_version": row["policy_version"],
        "eligible": row["eligible"],
        "issued_count": row["issued"],
        "revoked_count": row["revoked"],
    }
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "certificates.generated",
        assessment=scope.assessment,
        new={k: v for k, v in summary.items() if k not in ("assessment", "rule")},
    )
    await events.emit(
        session,
        ref.organization_id,
        "certificates.generated",
        {
            "course": ref.external_id,
            **{k: v for k, v in summary.items() if k != "rule"},
            "issued": row["issued_learners"],
            "revoked": row["revoked_learners"],
        },
    )
    await session.commit()
    await diplomas.request_render(queue, ref.id)
    return {
        "assessment": scope.assessment,
        **{k: row[k] for k in ("id", "policy_version", "eligible", "created_by", "created_at", "issued", "revoked")},
    }


async def list_generations(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[Any]:
    """The course's generations (of every certification), latest first."""
    sql = """
        SELECT gn.id, a.external_id AS assessment, gn.policy_version, gn.eligible, gn.created_by, gn.created_at
        FROM certificate_generations gn LEFT JOIN assessments a ON a.id = gn.assessment_id
        WHERE gn.course_id = :c
    """
    return await newest_first(session, sql, {"c": ref.id}, limit, cursor)


# --- revoking and reinstating ---------------------------------------------------------------------

_HELD = """
    SELECT k.id, k.code, k.type, k.reason, k.created_at, k.revoked_at, k.revoked_by, k.revoke_reason
    FROM certificates k
    WHERE k.enrollment_id = :e AND {mine}
    FOR UPDATE
"""


async def _held(session: AsyncSession, ref: CourseRef, learner: str, scope: Scope) -> dict[str, Any]:
    """The learner's certificate of the certification, locked (404 when they hold none)."""
    enrollment_id = (await enrollments.get_enrollment(session, ref, learner)).id
    # Serialised with generations, which decide on every certificate of the course.
    await session.execute(text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": ref.id})
    sql = _HELD.format(mine=_mine(scope))
    row = (
        (await session.execute(text(sql), {"e": enrollment_id, "course": ref.id, "assessment": scope.assessment_id}))
        .mappings()
        .first()
    )
    if row is None:
        of = "the course" if scope.assessment is None else f"the assessment {scope.assessment!r}"
        raise NotFound(f"Learner {learner!r} holds no certificate of {of}.")
    return dict(row)


_SET_REVOKED = text(
    """
    UPDATE certificates SET revoked_at = :at, revoked_by = :by, revoke_reason = :reason WHERE id = :id
    RETURNING code, revoked_at, revoked_by, revoke_reason
    """
)


async def _change(
    session: AsyncSession,
    ref: CourseRef,
    learner: str,
    scope: Scope,
    action: str,
    held: dict[str, Any],
    changed: dict[str, Any],
    actor: str,
) -> dict[str, Any]:
    """Audit a revocation or reinstatement, announce it, commit; the certificate as it is now."""
    before = {k: held[k] for k in ("code", "revoked_at", "revoked_by", "revoke_reason")}
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        action,
        learner=learner,
        assessment=scope.assessment,
        old=before,
        new=changed,
    )
    reason = changed["revoke_reason"] if action == "certificate.revoked" else None
    data = {
        "course": ref.external_id,
        "learner": learner,
        "assessment": scope.assessment,
        "code": held["code"],
        "reason": reason,
        "actor": actor,
    }
    await events.emit(session, ref.organization_id, action, data)
    await session.commit()
    page = await list_certificates(
        session, ref, CertificateFilter(assessment=scope.assessment, learner=learner, revoked=None), 1, None
    )
    current: dict[str, Any] = page.items[0]
    return current


async def revoke(
    session: AsyncSession, ref: CourseRef, learner: str, assessment: str | None, reason: str, actor: str
) -> dict[str, Any]:
    """Revoke a learner's certificate (409 if it is revoked already): it stops being valid, shown or sent
    at once, and generations leave it revoked until it is reinstated. Audited and announced as
    `certificate.revoked`."""
    scope = await certifications.scope_of(session, ref, assessment)
    held = await _held(session, ref, learner, scope)
    if held["revoked_at"] is not None:
        raise Conflict(f"The certificate of {learner!r} is already revoked.")
    changed = (
        (await session.execute(_SET_REVOKED, {"id": held["id"], "at": clock.now(), "by": actor, "reason": reason}))
        .mappings()
        .one()
    )
    return await _change(session, ref, learner, scope, "certificate.revoked", held, dict(changed), actor)


async def reinstate(
    session: AsyncSession, ref: CourseRef, learner: str, assessment: str | None, actor: str
) -> dict[str, Any]:
    """Make a revoked certificate valid again at once (409 if it is not revoked); the next generation
    decides on it as on any other. Audited and announced as `certificate.reinstated`."""
    scope = await certifications.scope_of(session, ref, assessment)
    held = await _held(session, ref, learner, scope)
    if held["revoked_at"] is None:
        raise Conflict(f"The certificate of {learner!r} is not revoked.")
    changed = (
        (await session.execute(_SET_REVOKED, {"id": held["id"], "at": None, "by": None, "reason": None}))
        .mappings()
        .one()
    )
    return await _change(session, ref, learner, scope, "certificate.reinstated", held, dict(changed), actor)


# --- the list -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFilter:
    """Which certificates of one certification: the results table's learner filters, issued in a period,
    valid (revoked False), revoked (True) or both (None)."""

    assessment: str | None = None  # None: the course certificates
    group: str | None = None
    cohort: str | None = None
    session: str | None = None
    include_archived: bool = False
    search: str | None = None
    since: datetime | None = None  # issued at or after
    until: datetime | None = None  # ... and before
    revoked: bool | None = False
    learner: str | None = None  # one learner's


_LIST = """
    SELECT k.enrollment_id, e.external_id, e.full_name, e.username, e.email, k.code, k.type, k.reason,
           k.generation_id, k.created_at, k.revoked_at, k.revoked_by, k.revoke_reason
    FROM certificates k JOIN enrollments e ON e.id = k.enrollment_id
    WHERE {mine} AND {who}{more} AND k.enrollment_id > :after
    ORDER BY k.enrollment_id LIMIT :lim
"""


async def list_certificates(
    session: AsyncSession, ref: CourseRef, f: CertificateFilter, limit: int, cursor: str | None
) -> Page[Any]:
    """A certification's certificates under the filters, in enrollment order (404 naming an unknown
    assessment or session)."""
    scope = await certifications.scope_of(session, ref, f.assessment)
    who = await report_data.who_of(session, ref.id, f)
    condition, named = who.named()
    more = ""
    params: dict[str, Any] = {"c": ref.id, "course": ref.id, "assessment": scope.assessment_id, **named}
    for sql, name, value in (
        ("k.created_at >= :since", "since", f.since),
        ("k.created_at < :until", "until", f.until),
        ("e.external_id = :learner", "learner", f.learner),
    ):
        if value is not None:
            more += f" AND {sql}"
            params[name] = value
    if f.revoked is not None:
        more += " AND k.revoked_at IS NOT NULL" if f.revoked else " AND k.revoked_at IS NULL"
    sql = _LIST.format(mine=_mine(scope), who=condition, more=more)
    rows = await session.execute(text(sql), {**params, "after": last_id_after(cursor), "lim": limit + 1})
    items = [
        {
            "enrollment_id": r["enrollment_id"],
            "learner": r["external_id"],
            "name": report_records.display_name(dict(r)),
            "email": r["email"],
            "assessment": scope.assessment,
            "code": r["code"],
            "type": r["type"],
            "reason": r["reason"],
            "generation_id": r["generation_id"],
            "issued_at": r["created_at"],
            "created_at": r["created_at"],
            "revoked_at": r["revoked_at"],
            "revoked_by": r["revoked_by"],
            "revoke_reason": r["revoke_reason"],
        }
        for r in rows.mappings()
    ]
    return page_of(items, limit, lambda r: r["enrollment_id"])
