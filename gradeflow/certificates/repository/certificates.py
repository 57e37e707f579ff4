"""The SQL of certificates: the allow list, generations, revoking and reinstating, and the list of a
certification's certificates under the results table's filters (`Selection`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit.repository import COLUMNS as AUDIT_COLUMNS
from gradeflow.certificates.repository.certifications import Scope
from gradeflow.certificates.repository.eligibility import ASSESSMENT_PASSED, course_rule_sql
from gradeflow.core import names
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.repository.sessions import attempt_at_in
from gradeflow.db.paging import newest_first
from gradeflow.readside.repository.learners import Who

# --- the allow list -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allowance:
    """A learner on the course's allow list."""

    id: int
    learner: str
    notes: str | None
    created_by: str
    created_at: datetime


_ALLOWANCE = """
    SELECT w.id, e.external_id AS learner, w.notes, w.created_by, w.created_at
    FROM certificate_allowlist w JOIN enrollments e ON e.id = w.enrollment_id
"""
_ALLOWANCES_OF_COURSE = text(_ALLOWANCE + " WHERE w.course_id = :c AND w.id > :after ORDER BY w.id LIMIT :lim")
_ALLOWANCE_OF_ENROLLMENT = text(_ALLOWANCE + " WHERE w.enrollment_id = :e")


async def allowances(session: AsyncSession, course_id: int, limit: int, cursor: str | None) -> Page[Allowance]:
    """The course's allow list in the order learners were added."""
    rows = await session.execute(
        _ALLOWANCES_OF_COURSE, {"c": course_id, "after": last_id_after(cursor), "lim": limit + 1}
    )
    return page_of([Allowance(*r) for r in rows], limit, lambda a: a.id)


async def allowance_of(session: AsyncSession, enrollment_id: int) -> Allowance:
    """The enrollment's entry on the allow list (it has one)."""
    return Allowance(*(await session.execute(_ALLOWANCE_OF_ENROLLMENT, {"e": enrollment_id})).one())


_LOCK_ALLOWANCE = text(
    "SELECT jsonb_build_object('notes', notes) FROM certificate_allowlist WHERE enrollment_id = :e FOR UPDATE"
)


async def lock_allowance(session: AsyncSession, enrollment_id: int) -> dict[str, Any] | None:
    """The enrollment's entry on the allow list as the audit trail keeps it (`{"notes": ...}`), locked;
    None when they are not on it."""
    found: dict[str, Any] | None = await session.scalar(_LOCK_ALLOWANCE, {"e": enrollment_id})
    return found


_ALLOW = text(
    """
    INSERT INTO certificate_allowlist (course_id, enrollment_id, notes, created_by, created_at)
    VALUES (:c, :e, :notes, :actor, :now)
    ON CONFLICT (enrollment_id) DO UPDATE SET notes = excluded.notes
    """
)


async def allow(
    session: AsyncSession, course_id: int, enrollment_id: int, notes: str | None, actor: str, now: datetime
) -> None:
    """Put the enrollment on the allow list, or change its notes."""
    await session.execute(_ALLOW, {"c": course_id, "e": enrollment_id, "notes": notes, "actor": actor, "now": now})


_DISALLOW = text(
    "DELETE FROM certificate_allowlist WHERE enrollment_id = :e RETURNING jsonb_build_object('notes', notes)"
)


async def disallow(session: AsyncSession, enrollment_id: int) -> dict[str, Any] | None:
    """Take the enrollment off the allow list: what its entry was, as the audit trail keeps it (None:
    it was not on it)."""
    removed: dict[str, Any] | None = await session.scalar(_DISALLOW, {"e": enrollment_id})
    return removed


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
# disjoint rows. `{mine}` is the certification's certificates (alias k).
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
      INSERT INTO audit_log ({AUDIT_COLUMNS})
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


@dataclass(frozen=True, slots=True)
class Generated:
    """What a generation did: its row (and its certification's assessment), how many certificates it
    issued (new, or changed type or reason) and removed, and the first learners of each
    (`issued_learners`: learner, type, reason)."""

    assessment: str | None
    id: int
    policy_version: int | None
    eligible: int
    created_by: str
    created_at: datetime
    issued: int
    removed: int
    issued_learners: list[dict[str, Any]]
    removed_learners: list[str]


async def generate(
    session: AsyncSession,
    stamp: dict[str, Any],
    course_id: int,
    scope: Scope,
    threshold: Decimal | None,
    listed: int,
) -> Generated:
    """Record who is eligible under the scope's certification now (the course's rule as its stored
    certification says; an assessment's result against `threshold`) as a generation, make its
    certificates agree, and audit each learner's change (`stamp`: audit.stamp's parameters). At most
    `listed` learners are named in each list."""
    if scope.assessment_id is None:
        eligible = _ELIGIBLE_COURSE.format(rule=await course_rule_sql(session, course_id))
    else:
        eligible = _ELIGIBLE_ASSESSMENT
    statement = _GENERATE.format(eligible=eligible, mine=scope.holds())
    params = {
        **stamp,
        **scope.params(),
        "c": course_id,
        "max": listed,
        "assessment": scope.assessment_id,
        "assessment_name": scope.assessment,
        "threshold": threshold,
    }
    return Generated(scope.assessment, *(await session.execute(text(statement), params)).one())


@dataclass(frozen=True, slots=True)
class Generation:
    """A generation as the list shows it."""

    id: int
    assessment: str | None
    policy_version: int | None
    eligible: int
    created_by: str
    created_at: datetime


_GENERATIONS = """
    SELECT gn.id, a.external_id AS assessment, gn.policy_version, gn.eligible, gn.created_by, gn.created_at
    FROM certificate_generations gn LEFT JOIN assessments a ON a.id = gn.assessment_id
    WHERE gn.course_id = :c
"""


async def generations(session: AsyncSession, course_id: int, limit: int, cursor: str | None) -> Page[Generation]:
    """The course's generations (of every certification), latest first."""
    page = await newest_first(session, _GENERATIONS, {"c": course_id}, limit, cursor)
    return Page([Generation(**r) for r in page.items], page.next_cursor)


# --- revoking and reinstating ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Held:
    """A learner's certificate of a certification, as revoking and reinstating read it."""

    id: int
    code: str
    type: str
    reason: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None


_LOCK_CERTIFICATE = """
    SELECT k.id, k.code, k.type, k.reason, k.created_at, k.revoked_at, k.revoked_by, k.revoke_reason
    FROM certificates k
    WHERE k.enrollment_id = :e AND {mine}
    FOR UPDATE
"""


async def lock_certificate(session: AsyncSession, course_id: int, enrollment_id: int, scope: Scope) -> Held | None:
    """The enrollment's certificate of the scope's certification, locked (None: they hold none)."""
    sql = _LOCK_CERTIFICATE.format(mine=scope.holds())
    row = (await session.execute(text(sql), {"e": enrollment_id, "c": course_id, **scope.params()})).first()
    return None if row is None else Held(*row)


@dataclass(frozen=True, slots=True)
class Revocation:
    """A certificate's revocation as it stands (all None: valid)."""

    code: str
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None


_SET_REVOKED = text(
    """
    UPDATE certificates SET revoked_at = :at, revoked_by = :by, revoke_reason = :reason WHERE id = :id
    RETURNING code, revoked_at, revoked_by, revoke_reason
    """
)


async def set_revoked(
    session: AsyncSession, certificate_id: int, at: datetime | None, by: str | None, reason: str | None
) -> Revocation:
    """Mark the certificate revoked (at, by, why), or valid again (all None)."""
    row = (await session.execute(_SET_REVOKED, {"id": certificate_id, "at": at, "by": by, "reason": reason})).one()
    return Revocation(*row)


# --- the selection and the list ------------------------------------------------------------------


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


def selection(course_id: int, scope: Scope, who: Who, since: datetime | None, until: datetime | None) -> Selection:
    """The certificates of the scope's certification held by the learners `who` covers, issued in
    [since, until) (either may be None)."""
    values: dict[str, Any] = {"c": course_id, **scope.params()}
    per_assessment = []
    if scope.assessment_id is not None and who.session_id is not None:
        per_assessment.append(attempt_at_in(":cert_a", ":cert_session"))
        values["cert_session"] = who.session_id
        who = dataclasses.replace(who, session_id=None)
    condition, named = who.named()
    issued = []
    for sql, name, value in (("k.created_at >= :since", "since", since), ("k.created_at < :until", "until", until)):
        if value is not None:
            issued.append(sql)
            values[name] = value
    return Selection(
        scope, scope.holds(), " AND ".join([condition, *per_assessment]), " AND ".join(issued) or "TRUE", values | named
    )


@dataclass(frozen=True, slots=True)
class Certificate:
    """A learner's certificate as the list shows it."""

    enrollment_id: int
    learner: str
    name: str
    email: str | None
    assessment: str | None
    code: str
    type: str
    reason: str
    generation_id: int
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None

    @property
    def issued_at(self) -> datetime:
        return self.created_at


_COLUMNS = """k.enrollment_id, e.external_id, {name} AS name, e.email, k.code, k.type, k.reason,
           k.generation_id, k.created_at, k.revoked_at, k.revoked_by, k.revoke_reason"""
_LIST = f"""
    SELECT {_COLUMNS}
    FROM certificates k JOIN enrollments e ON e.id = k.enrollment_id
    WHERE {{where}}{{more}} AND k.enrollment_id > :after
    ORDER BY k.enrollment_id LIMIT :lim
"""  # noqa: S608  (constant SQL)
_ONE = text(
    f"""
    SELECT {_COLUMNS.format(name=names.learner_name_sql("e"))}
    FROM certificates k JOIN enrollments e ON e.id = k.enrollment_id
    WHERE k.id = :id
    """  # noqa: S608  (constant SQL)
)


def _certificate(row: Any, assessment: str | None) -> Certificate:
    enrollment_id, learner, name, email, *rest = row
    return Certificate(enrollment_id, learner, name, email, assessment, *rest)


async def certificates(
    session: AsyncSession,
    chosen: Selection,
    learner: str | None,
    revoked: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[Certificate]:
    """The selection's certificates in enrollment order: of one learner (`learner`), valid (revoked
    False), revoked (True) or both (None)."""
    more = ""
    params = dict(chosen.params)
    if learner is not None:
        more += " AND e.external_id = :learner"
        params["learner"] = learner
    if revoked is not None:
        more += " AND k.revoked_at IS NOT NULL" if revoked else " AND k.revoked_at IS NULL"
    sql = _LIST.format(name=names.learner_name_sql("e"), where=chosen.where, more=more)
    rows = await session.execute(text(sql), {**params, "after": last_id_after(cursor), "lim": limit + 1})
    items = [_certificate(r, chosen.scope.assessment) for r in rows]
    return page_of(items, limit, lambda c: c.enrollment_id)


async def certificate(session: AsyncSession, certificate_id: int, scope: Scope) -> Certificate:
    """One certificate (of the scope's certification) as the list shows it."""
    return _certificate((await session.execute(_ONE, {"id": certificate_id})).one(), scope.assessment)
