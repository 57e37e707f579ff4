"""SQL of enrollments (ORM rows, and set-based upserts of many learners at once)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.courses.commands import EnrollmentFields
from gradeflow.db.models import Enrollment

FIELDS = tuple(EnrollmentFields.model_fields)


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
    SELECT external_id, {", ".join(FIELDS)} FROM enrollments
    WHERE course_id = :course AND external_id = ANY(CAST(:external_id AS text[])) FOR UPDATE
    """  # noqa: S608  (constant columns)
)


async def lock_fields_of(session: AsyncSession, course_id: int, external_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored fields (FIELDS) of those of these learners who are enrolled, by external id, locked."""
    rows = await session.execute(_BEFORE, {"course": course_id, "external_id": external_ids})
    return {r["external_id"]: {f: r[f] for f in FIELDS} for r in rows.mappings()}


async def upsert_enrollments(session: AsyncSession, course_id: int, columns: dict[str, list[Any]]) -> dict[int, str]:
    """Create or replace the enrollments given column-wise (external_id and FIELDS; `groups` and
    `experiment_groups` as JSON text) in one statement: external id by enrollment id."""
    rows = (await session.execute(_UPSERT, {"course": course_id, **columns})).all()
    return {int(r[0]): str(r[1]) for r in rows}


async def enrollment(session: AsyncSession, course_id: int, learner: str) -> Enrollment | None:
    found: Enrollment | None = await session.scalar(
        select(Enrollment).where(Enrollment.course_id == course_id, Enrollment.external_id == learner)
    )
    return found


async def enrollments_page(
    session: AsyncSession, course_id: int, after: int, limit: int, status: str | None, cohort: str | None
) -> list[Enrollment]:
    """Up to `limit` of the course's enrollments after id `after` (with this status and cohort, when given)."""
    stmt = (
        select(Enrollment)
        .where(Enrollment.course_id == course_id, Enrollment.id > after)
        .order_by(Enrollment.id)
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(Enrollment.status == status)
    if cohort is not None:
        stmt = stmt.where(Enrollment.cohort == cohort)
    return list((await session.scalars(stmt)).all())


async def own_enrollment(session: AsyncSession, organization_id: int, course: str, learner: str) -> int | None:
    """The id of `learner`'s enrollment in the organization's course `course` (external ids)."""
    found = await session.scalar(
        text(
            """
            SELECT e.id FROM enrollments e JOIN courses c ON c.id = e.course_id
            WHERE c.organization_id = :o AND c.external_id = :c AND e.external_id = :l
            """
        ),
        {"o": organization_id, "c": course, "l": learner},
    )
    return None if found is None else int(found)
