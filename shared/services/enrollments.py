"""Learners enrolled in a course: single and bulk upserts, reads, lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Enrollment
from shared.errors import NotFound
from shared.services import grades
from shared.services.access import CourseRef
from shared.services.inputs import EnrollmentFields, EnrollmentIn, EnrollmentPatch
from shared.services.paging import Page, last_id_after, page_of

_FIELDS = tuple(EnrollmentFields.model_fields)


async def _upsert(session: AsyncSession, ref: CourseRef, rows: list[dict[str, Any]]) -> int:
    """Upsert and give the learners their stored grade rows (a new learner has one too)."""
    insert = pg_insert(Enrollment)
    stmt = insert.on_conflict_do_update(
        index_elements=["course_id", "external_id"],
        set_={**{f: insert.excluded[f] for f in _FIELDS}, "updated_at": func.now()},
    ).returning(Enrollment.id)
    ids: list[int] = []
    # One multi-row statement per chunk keeps within PostgreSQL's bind-parameter limit.
    for start in range(0, len(rows), 2000):
        chunk = [{"course_id": ref.id, **r} for r in rows[start : start + 2000]]
        ids += (await session.execute(stmt.values(chunk))).scalars().all()
    await grades.refresh_learners(session, ref.id, ids)
    return len(ids)


async def put_enrollment(session: AsyncSession, ref: CourseRef, learner: str, body: EnrollmentFields) -> Enrollment:
    """Create or replace one learner's enrollment."""
    await _upsert(session, ref, [{"external_id": learner, **body.model_dump()}])
    await session.commit()
    return await get_enrollment(session, ref, learner)


async def upsert_enrollments(session: AsyncSession, ref: CourseRef, items: list[EnrollmentIn]) -> int:
    """Bulk create-or-replace (all or nothing); returns how many rows were written."""
    count = await _upsert(session, ref, [e.model_dump() for e in items])
    await session.commit()
    return count


async def patch_enrollment(session: AsyncSession, ref: CourseRef, learner: str, body: EnrollmentPatch) -> Enrollment:
    enrollment = await get_enrollment(session, ref, learner)
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is None and field in ("track", "status", "groups", "is_course_team"):
            continue  # these have no "unset" state
        setattr(enrollment, field, value)
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
