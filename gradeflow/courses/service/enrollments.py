"""Learners enrolled in a course: single and bulk upserts, reads, lists."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core.errors import Forbidden, NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.commands import EnrollmentFields, EnrollmentIn, EnrollmentPatch
from gradeflow.db.models import Enrollment
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import grades

_FIELDS = tuple(EnrollmentFields.model_fields)
# Fields that cannot be null: a PATCH with null for them leaves them as they are.
_NOT_NULL = ("track", "id_verified", "status", "groups", "experiment_groups", "is_course_team")
# Fields that decide whether the late policy applies to a learner and by which due date (their groups' overrides,
# deadlines/service/due_dates.py; learners are enrolled and not on the course team): a change applies it again.
_LATE_POLICY_INPUTS = ("groups", "status", "is_course_team")


_UPSERT = text(
    """
    INSERT INTO enrollments AS e (course_id, external_id, username, email, full_name, given_name, family_name, track,
                                  id_verified, status, cohort, team, groups, experiment_groups, is_course_team)
    SELECT :course, u.external_id, u.username, u.email, u.full_name, u.given_name, u.family_name, u.track,
           u.id_verified, u.status, u.cohort, u.team, ARRAY(SELECT jsonb_array_elements_text(CAST(u.groups AS jsonb))),
           CAST(u.experiment_groups AS jsonb), u.is_course_team
    FROM unnest(CAST(:external_id AS text[]), CAST(:username AS text[]), CAST(:email AS text[]),
                CAST(:full_name AS text[]), CAST(:given_name AS text[]), CAST(:family_name AS text[]),
                CAST(:track AS text[]), CAST(:id_verified AS bool[]), CAST(:status AS text[]), CAST(:cohort AS text[]),
                CAST(:team AS text[]), CAST(:groups AS text[]), CAST(:experiment_groups AS text[]),
                CAST(:is_course_team AS bool[]))
         AS u(external_id, username, email, full_name, given_name, family_name, track, id_verified, status, cohort,
              team, groups, experiment_groups, is_course_team)
    ON CONFLICT (course_id, external_id) DO UPDATE SET
      username = excluded.username, email = excluded.email, full_name = excluded.full_name,
      given_name = excluded.given_name, family_name = excluded.family_name, track = excluded.track,
      id_verified = excluded.id_verified, status = excluded.status, cohort = excluded.cohort, team = excluded.team,
      groups = excluded.groups, experiment_groups = excluded.experiment_groups,
      is_course_team = excluded.is_course_team, updated_at = now()
    RETURNING e.id, e.external_id
    """
)


_BEFORE = text(
    f"""
    SELECT external_id, {", ".join(_FIELDS)} FROM enrollments
    WHERE course_id = :course AND external_id = ANY(CAST(:external_id AS text[])) FOR UPDATE
    """  # noqa: S608  (constant columns)
)


def _entry(learner: str, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any] | None:
    """The audit entry of one enrollment's change (only the fields that changed), or None."""
    if old is None:
        return {"action": "enrollment.created", "learner": learner, "new": new}
    changed = [f for f in _FIELDS if old[f] != new[f]]
    if not changed:
        return None
    unenrolled = "status" in changed and new["status"] == "unenrolled"
    return {
        "action": "enrollment.unenrolled" if unenrolled else "enrollment.changed",
        "learner": learner,
        "old": {f: old[f] for f in changed},
        "new": {f: new[f] for f in changed},
    }


async def _upsert(session: AsyncSession, ref: CourseRef, rows: list[dict[str, Any]], actor: str) -> int:
    """Upsert in one set-based statement, audit what changed and give the learners their stored grade rows."""
    columns: dict[str, list[Any]] = {f: [r[f] for r in rows] for f in ("external_id", *_FIELDS)}
    before = {
        r["external_id"]: {f: r[f] for f in _FIELDS}
        for r in (await session.execute(_BEFORE, {"course": ref.id, "external_id": columns["external_id"]})).mappings()
    }
    for json_column in ("groups", "experiment_groups"):
        columns[json_column] = [orjson.dumps(v).decode() for v in columns[json_column]]
    written = {int(r[0]): str(r[1]) for r in (await session.execute(_UPSERT, {"course": ref.id, **columns})).all()}
    ids = list(written)
    entries = [_entry(r["external_id"], before.get(r["external_id"]), {f: r[f] for f in _FIELDS}) for r in rows]
    await audit.record_many(session, ref.organization_id, ref.id, actor, [e for e in entries if e is not None])
    # A new learner, or one whose groups or standing changed, may now be late, missing or on time: the late policy
    # again for them (before their grades are refreshed below, which then count it).
    new = {r["external_id"]: r for r in rows}
    moved = [
        eid
        for eid, ext in written.items()
        if ext not in before or any(before[ext][f] != new[ext][f] for f in _LATE_POLICY_INPUTS)
    ]
    if moved:
        await late_results.apply(session, ref.id, enrollment_ids=sorted(moved), actor=actor)
    await grades.refresh_learners(session, ref.id, ids)
    return len(ids)


async def put_enrollment(
    session: AsyncSession, ref: CourseRef, learner: str, body: EnrollmentFields, actor: str
) -> Enrollment:
    """Create or replace one learner's enrollment."""
    await _upsert(session, ref, [{"external_id": learner, **body.model_dump()}], actor)
    await session.commit()
    return await get_enrollment(session, ref, learner)


async def upsert_enrollments(session: AsyncSession, ref: CourseRef, items: list[EnrollmentIn], actor: str) -> int:
    """Bulk create-or-replace (all or nothing); returns how many rows were written."""
    count = await _upsert(session, ref, [e.model_dump() for e in items], actor)
    await session.commit()
    return count


async def patch_enrollment(
    session: AsyncSession, ref: CourseRef, learner: str, body: EnrollmentPatch, actor: str
) -> Enrollment:
    """Change some fields of one learner's enrollment (`status: unenrolled` unenrols them)."""
    enrollment = await get_enrollment(session, ref, learner)
    current = {f: getattr(enrollment, f) for f in _FIELDS}
    changes = {f: v for f, v in body.model_dump(exclude_unset=True).items() if not (v is None and f in _NOT_NULL)}
    await _upsert(session, ref, [{"external_id": learner, **current, **changes}], actor)
    await session.commit()
    await session.refresh(enrollment)
    return enrollment


async def get_enrollment(session: AsyncSession, ref: CourseRef, learner: str) -> Enrollment:
    row = await session.scalar(
        select(Enrollment).where(Enrollment.course_id == ref.id, Enrollment.external_id == learner)
    )
    if row is None:
        raise NotFound(f"Learner {learner!r} is not enrolled in this course.")
    return row


async def list_enrollments(
    session: AsyncSession,
    ref: CourseRef,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    cohort: str | None = None,
) -> Page[Enrollment]:
    stmt = (
        select(Enrollment)
        .where(Enrollment.course_id == ref.id, Enrollment.id > last_id_after(cursor))
        .order_by(Enrollment.id)
        .limit(limit + 1)
    )
    if status is not None:
        stmt = stmt.where(Enrollment.status == status)
    if cohort is not None:
        stmt = stmt.where(Enrollment.cohort == cohort)
    rows = list((await session.scalars(stmt)).all())
    return page_of(rows, limit, lambda e: e.id)


async def learner_enrollment(session: AsyncSession, principal: Principal, course: str) -> int:
    """The enrollment of the learner calling with their own user token (their `sub` is its external id).
    An API key is refused (403); a course they are not enrolled in does not exist for them (404)."""
    if principal.is_key:
        raise Forbidden("This is a learner's view: call it with the learner's user token.")
    found = await session.scalar(
        text(
            """
            SELECT e.id FROM enrollments e JOIN courses c ON c.id = e.course_id
            WHERE c.organization_id = :o AND c.external_id = :c AND e.external_id = :l
            """
        ),
        {"o": principal.organization_id, "c": course, "l": principal.subject},
    )
    if found is None:
        raise NotFound(f"Course {course!r} not found.")
    return int(found)
