"""Learners enrolled in a course: single and bulk upserts, reads, lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Required, TypedDict

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core.errors import Forbidden, NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.commands import EnrollmentFields, EnrollmentIn, EnrollmentPatch
from gradeflow.courses.repository import enrollments as repository
from gradeflow.db.models import Enrollment
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import grades

_FIELDS = repository.FIELDS
# Fields that cannot be null: a PATCH with null for them leaves them as they are.
_NOT_NULL = ("track", "id_verified", "status", "groups", "experiment_groups", "is_course_team")
# Fields that decide whether the late policy applies to a learner and by which due date (their groups' overrides,
# deadlines/repository/due_dates.py; learners are enrolled and not on the course team): a change applies it again.
_LATE_POLICY_INPUTS = ("groups", "status", "is_course_team")


class _Change(TypedDict, total=False):
    """An enrollment's entry on the audit trail: the fields that changed, before and after (all of a new one's)."""

    action: Required[Literal["enrollment.created", "enrollment.changed", "enrollment.unenrolled"]]
    learner: Required[str]
    old: Mapping[str, object]
    new: Required[Mapping[str, object]]


def _entry(learner: str, old: dict[str, Any] | None, new: dict[str, Any]) -> _Change | None:
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
    before = await repository.lock_fields_of(session, ref.id, columns["external_id"])
    for json_column in ("groups", "experiment_groups"):
        columns[json_column] = [orjson.dumps(v).decode() for v in columns[json_column]]
    written = await repository.upsert_enrollments(session, ref.id, columns)
    ids = list(written)
    entries = [_entry(r["external_id"], before.get(r["external_id"]), {f: r[f] for f in _FIELDS}) for r in rows]
    await audit.record_many(session, ref.organization_id, ref.id, actor, [dict(e) for e in entries if e is not None])
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
    row = await repository.enrollment(session, ref.id, learner)
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
    rows = await repository.enrollments_page(session, ref.id, last_id_after(cursor), limit + 1, status, cohort)
    return page_of(rows, limit, lambda e: e.id)


async def learner_enrollment(session: AsyncSession, principal: Principal, course: str) -> int:
    """The enrollment of the learner calling with their own user token (their `sub` is its external id).
    An API key is refused (403); a course they are not enrolled in does not exist for them (404)."""
    if principal.is_key:
        raise Forbidden("This is a learner's view: call it with the learner's user token.")
    found = await repository.own_enrollment(session, principal.organization_id, course, principal.subject)
    if found is None:
        raise NotFound(f"Course {course!r} not found.")
    return found
