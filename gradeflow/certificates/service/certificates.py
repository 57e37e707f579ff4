"""Certificates: the allow list, generation runs per certification, revoking and reinstating, and the
eligibility rule the grade report shares.

A generation records who is eligible at that moment under a certification (the course's, or one
assessment's) and makes that certification's certificates agree with it: the latest generation is the
truth, so a learner no longer eligible loses their certificate. A revoked certificate is the exception:
staff took it back, so generations leave it as it is (never deleted, never issued again) until it is
reinstated. Two words keep the two apart: a generation *removes* a certificate (`certificate.removed`,
the row goes), staff *revoke* one (`certificate.revoked`, the row stays, marked).

Which certificates a reader means - one certification's, of the learners the results table's filters
select, issued in a period - is said once (`select`): the certificates list, the ZIP of diplomas and
the certificate mailing all read it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.service import access
from gradeflow.access.service.access import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.certificates.service import certifications, diplomas
from gradeflow.certificates.service.certifications import Scope, course_rule_sql, lock_course
from gradeflow.core import clock, names
from gradeflow.core.errors import Conflict, NotFound, ValidationFailed
from gradeflow.core.paging import Page, last_id_after, newest_first, page_of
from gradeflow.courses.service import enrollments, sessions
from gradeflow.grades.service import grades
from gradeflow.notify import events
from gradeflow.publishing.service import visibility as published
from gradeflow.reports.service import report_data
from gradeflow.storage.s3 import ObjectStore

# An assessment's certification: the learner's result at the assessment `a` (attempt `t`) is final -
# graded, not excused (an excused result never passes), with points, confirmed where it has manual
# items - and is at least the threshold (:threshold) percent, compared exactly (70 % of 10 is 7).
ASSESSMENT_PASSED = f"""(t.status = 'graded' AND NOT t.excused AND t.earned IS NOT NULL AND t.possible > 0
    AND NOT ({published.AWAITS_CONFIRMATION}) AND t.earned * 100 >= CAST(:threshold AS numeric) * t.possible)"""

# Learners listed by name in a `certificates.generated` event (the counts are always complete).
MAX_EVENT_LEARNERS = 1000


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

# One statement: who is eligible now, the generation row, certificates issued, kept or removed, and an
# audit entry per learner whose certificate appeared, changed or went (`certificate.removed`).
# Data-modifying CTEs all see the certificates as they were before the statement (`before`), and touch
# disjoint rows. `{mine}` is the
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
    removed AS (
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
      SELECT 'certificate.removed', r.learner, jsonb_build_object('type', r.type, 'reason', r.reason),
             jsonb_build_object('generation', g.id)
      FROM removed r CROSS JOIN generation g
    ),
    audited AS (
      INSERT INTO audit_log ({audit.COLUMNS})
      SELECT :org, :course, :at, :actor, :rid, action, learner, CAST(:assessment_name AS text), NULL, old, new
      FROM changes ORDER BY action, learner
    )
    SELECT g.id, g.policy_version, g.eligible, g.created_by, g.created_at,
           (SELECT count(*) FROM issued) AS issued, (SELECT count(*) FROM removed) AS removed,
           (SELECT coalesce(jsonb_agg(x ORDER BY x.learner), '[]') FROM (
              SELECT learner, type, reason FROM issued ORDER BY learner LIMIT :max) x) AS issued_learners,
           (SELECT coalesce(jsonb_agg(x.learner ORDER BY x.learner), '[]') FROM (
              SELECT learner FROM removed ORDER BY learner LIMIT :max) x) AS removed_learners
    FROM generation g
"""  # noqa: S608  (constant SQL)


async def generate(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str | None, actor: str
) -> dict[str, Any]:
    """Record who is eligible for a certification now (the course's, or the assessment `assessment`'s:
    404 when it has none) and make its certificates agree: eligible learners get (or keep) one of this
    generation, typed by their track; the others lose theirs (removed); revoked ones are left alone.
    After the commit, the diplomas are queued for rendering."""
    scope = await certifications.scope_of(session, ref, assessment)
    if scope.assessment_id is None:
        # The decision reads stored grades: bring the stale ones current first, as every grade reader does.
        await grades.bring_current(session, ref.id)
    # One generation of a course at a time, and none while its certifications change: the second waits,
    # then decides on what the first wrote - the rule and threshold are read after the lock.
    await lock_course(session, ref.id)
    rule, threshold = await certifications.rule_of(session, ref, scope)
    if scope.assessment_id is None:
        eligible = _ELIGIBLE_COURSE.format(rule=await course_rule_sql(session, ref.id))
    else:
        eligible = _ELIGIBLE_ASSESSMENT
    statement = _GENERATE.format(eligible=eligible, mine=scope.holds())
    params = {
        **audit.stamp(ref.organization_id, ref.id, actor),
        **scope.params(),
        "c": ref.id,
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
        "removed_count": row["removed"],
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
            "removed": row["removed_learners"],
        },
    )
    await session.commit()
    await diplomas.request_render(queue, ref.id)
    return {
        "assessment": scope.assessment,
        **{k: row[k] for k in ("id", "policy_version", "eligible", "created_by", "created_at", "issued", "removed")},
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

_LOCK_CERTIFICATE = """
    SELECT k.id, k.code, k.type, k.reason, k.created_at, k.revoked_at, k.revoked_by, k.revoke_reason
    FROM certificates k
    WHERE k.enrollment_id = :e AND {mine}
    FOR UPDATE
"""


async def _lock_certificate(session: AsyncSession, ref: CourseRef, learner: str, scope: Scope) -> dict[str, Any]:
    """The learner's certificate of the certification, locked (404 when they hold none)."""
    enrollment_id = (await enrollments.get_enrollment(session, ref, learner)).id
    # Serialised with generations, which decide on every certificate of the course.
    await lock_course(session, ref.id)
    sql = _LOCK_CERTIFICATE.format(mine=scope.holds())
    row = (await session.execute(text(sql), {"e": enrollment_id, "c": ref.id, **scope.params()})).mappings().first()
    if row is None:
        raise NotFound(f"Learner {learner!r} holds no certificate of {scope.of()}.")
    return dict(row)


_SET_REVOKED = text(
    """
    UPDATE certificates SET revoked_at = :at, revoked_by = :by, revoke_reason = :reason WHERE id = :id
    RETURNING code, revoked_at, revoked_by, revoke_reason
    """
)


async def _record_status_change(
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
    # Whatever the learner's groups: the list's default hides those whose every group is archived.
    mine = CertificateFilter(assessment=scope.assessment, learner=learner, revoked=None, include_archived=True)
    page = await _list(session, ref, mine, 1, None)
    current: dict[str, Any] = page.items[0]
    return current


async def revoke(
    session: AsyncSession, ref: CourseRef, learner: str, assessment: str | None, reason: str, actor: str
) -> dict[str, Any]:
    """Revoke a learner's certificate (409 if it is revoked already): it stops being valid, shown or sent
    at once, and generations leave it revoked until it is reinstated. Audited and announced as
    `certificate.revoked`."""
    scope = await certifications.scope_of(session, ref, assessment)
    held = await _lock_certificate(session, ref, learner, scope)
    if held["revoked_at"] is not None:
        raise Conflict(f"The certificate of {learner!r} is already revoked.")
    changed = (
        (await session.execute(_SET_REVOKED, {"id": held["id"], "at": clock.now(), "by": actor, "reason": reason}))
        .mappings()
        .one()
    )
    return await _record_status_change(session, ref, learner, scope, "certificate.revoked", held, dict(changed), actor)


async def reinstate(
    session: AsyncSession, ref: CourseRef, learner: str, assessment: str | None, actor: str
) -> dict[str, Any]:
    """Make a revoked certificate valid again at once (409 if it is not revoked); the next generation
    decides on it as on any other. Audited and announced as `certificate.reinstated`."""
    scope = await certifications.scope_of(session, ref, assessment)
    held = await _lock_certificate(session, ref, learner, scope)
    if held["revoked_at"] is None:
        raise Conflict(f"The certificate of {learner!r} is not revoked.")
    changed = (
        (await session.execute(_SET_REVOKED, {"id": held["id"], "at": None, "by": None, "reason": None}))
        .mappings()
        .one()
    )
    return await _record_status_change(
        session, ref, learner, scope, "certificate.reinstated", held, dict(changed), actor
    )


# --- the selection and the list ------------------------------------------------------------------


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


@dataclass(frozen=True)
class Selection:
    """The certificates of one certification the results table's filters select, issued in a period, as
    SQL over certificate `k` and its enrollment `e`, in three parts so a reader may also ask for the
    learners without one (LEFT JOIN): `certification` (on k), `learners` (on e), `issued` (on k), with
    their `params` (`:c` the course). A course session keeps, for the course's certificates, the learners
    with an attempt in it; for an assessment's, those whose attempt at that assessment is in it (the
    certificate comes from that attempt: sessions' per-assessment rule)."""

    scope: Scope
    certification: str
    learners: str
    issued: str
    params: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.certification} AND {self.learners} AND {self.issued}"


async def select(session: AsyncSession, course_id: int, params: Any) -> Selection:
    """The selection `params` asks for (a CertificateFilter, a certificates_zip report's params, a
    certificate mailing's request: assessment, group, cohort, learners, session, include_archived,
    search, since, until - whichever it has). 404 naming an unknown assessment or session."""
    scope = await certifications.scope_in(session, course_id, getattr(params, "assessment", None))
    who = await report_data.who_of(session, course_id, params)
    values: dict[str, Any] = {"c": course_id, **scope.params()}
    per_assessment = []
    if scope.assessment_id is not None and who.session_id is not None:
        per_assessment.append(sessions.attempt_at_in(":cert_a", ":cert_session"))
        values["cert_session"] = who.session_id
        who = dataclasses.replace(who, session_id=None)
    condition, named = who.named()
    issued = []
    for sql, name in (("k.created_at >= :since", "since"), ("k.created_at < :until", "until")):
        value = getattr(params, name, None)
        if value is not None:
            issued.append(sql)
            values[name] = value
    return Selection(
        scope, scope.holds(), " AND ".join([condition, *per_assessment]), " AND ".join(issued) or "TRUE", values | named
    )


_LIST = """
    SELECT k.enrollment_id, e.external_id, {name} AS name, e.email, k.code, k.type, k.reason,
           k.generation_id, k.created_at, k.revoked_at, k.revoked_by, k.revoke_reason
    FROM certificates k JOIN enrollments e ON e.id = k.enrollment_id
    WHERE {where}{more} AND k.enrollment_id > :after
    ORDER BY k.enrollment_id LIMIT :lim
"""


# Staff who oversee results see every certificate; a publisher whose only overseeing role is theirs,
# limited to some assessments, sees those assessments' certificates only (never the course's), as they
# may send only those (access.check_publisher_scope).
_UNLIMITED = frozenset({"planner", "viewer"})


async def check_reader(session: AsyncSession, ref: CourseRef, principal: Principal, assessment: str | None) -> None:
    """403 for a publisher limited to some assessments reading certificates outside them."""
    if principal.is_key or ref.roles & _UNLIMITED:
        return
    await access.check_publisher_scope(
        session, ref.id, principal, [assessment] if assessment else [], assessment is None
    )


async def list_certificates(
    session: AsyncSession, ref: CourseRef, principal: Principal, f: CertificateFilter, limit: int, cursor: str | None
) -> Page[Any]:
    """A certification's certificates under the filters, in enrollment order (404 naming an unknown
    assessment or session; 422 when `until` is not after `since`; 403 outside a limited publisher's
    assessments)."""
    if f.since is not None and f.until is not None and f.until <= f.since:
        raise ValidationFailed.one("until", "Must be later than since.", "query")
    await check_reader(session, ref, principal, f.assessment)
    return await _list(session, ref, f, limit, cursor)


async def _list(
    session: AsyncSession, ref: CourseRef, f: CertificateFilter, limit: int, cursor: str | None
) -> Page[Any]:
    chosen = await select(session, ref.id, f)
    more = ""
    params = dict(chosen.params)
    if f.learner is not None:
        more += " AND e.external_id = :learner"
        params["learner"] = f.learner
    if f.revoked is not None:
        more += " AND k.revoked_at IS NOT NULL" if f.revoked else " AND k.revoked_at IS NULL"
    sql = _LIST.format(name=names.learner_name_sql("e"), where=chosen.where, more=more)
    rows = await session.execute(text(sql), {**params, "after": last_id_after(cursor), "lim": limit + 1})
    items = [
        {
            "enrollment_id": r["enrollment_id"],
            "learner": r["external_id"],
            "name": r["name"],
            "email": r["email"],
            "assessment": chosen.scope.assessment,
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


# --- diplomas ---------------------------------------------------------------------------------------


async def diploma_link(
    session: AsyncSession,
    store: ObjectStore,
    queue: jobs.Queue,
    ref: CourseRef,
    principal: Principal,
    learner: str,
    assessment: str | None,
    actor: str,
    link_seconds: int,
) -> dict[str, Any]:
    """A learner's diploma of the course's (or the assessment's) certificate for staff: a link minted
    now, or `rendering` (diplomas.staff_link). 404 naming an unknown assessment; 403 outside a limited
    publisher's assessments."""
    scope = await certifications.scope_of(session, ref, assessment)
    await check_reader(session, ref, principal, assessment)
    return await diplomas.staff_link(session, store, queue, ref, learner, scope, actor, link_seconds)
