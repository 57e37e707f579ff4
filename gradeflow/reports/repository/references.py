"""What a report request names, looked up in the course: assessments, learners, groups and cohorts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Label = Literal["group", "cohort"]


async def has_assessment(session: AsyncSession, course_id: int, external_id: str) -> bool:
    found = await session.scalar(
        text("SELECT 1 FROM assessments WHERE course_id = :c AND external_id = :a"), {"c": course_id, "a": external_id}
    )
    return found is not None


@dataclass(frozen=True, slots=True)
class Unknown:
    """A learner named in a list who is not enrolled, and their place in it (from 0)."""

    index: int
    learner: str


async def unknown_learners(session: AsyncSession, course_id: int, learners: list[str]) -> list[Unknown]:
    """The listed learners not enrolled in the course, in the list's order."""
    rows = await session.execute(
        text(
            """
            SELECT l.i - 1, l.learner FROM unnest(CAST(:learners AS text[])) WITH ORDINALITY AS l(learner, i)
            WHERE NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.course_id = :c AND e.external_id = l.learner)
            ORDER BY l.i
            """
        ),
        {"c": course_id, "learners": learners},
    )
    return [Unknown(int(i), str(learner)) for i, learner in rows]


# Enrollments carry one cohort each, and a list of groups.
_MEMBERS = {"cohort": "e.cohort = :label", "group": "CAST(:label AS text) = ANY(e.groups)"}
_LABELS = {"cohort": "SELECT DISTINCT e.cohort", "group": "SELECT DISTINCT unnest(e.groups)"}


async def has_members(session: AsyncSession, course_id: int, field: Label, label: str) -> bool:
    """Whether a learner of the course is in the group or cohort `label`."""
    members = await session.scalar(
        text(f"SELECT 1 FROM enrollments e WHERE e.course_id = :c AND {_MEMBERS[field]} LIMIT 1"),  # noqa: S608
        {"c": course_id, "label": label},
    )
    return members is not None


async def labels(session: AsyncSession, course_id: int, field: Label, most: int) -> list[str]:
    """Up to `most` of the course's group or cohort names, sorted."""
    known = await session.scalars(
        text(
            f"SELECT x FROM ({_LABELS[field]} AS x FROM enrollments e WHERE e.course_id = :c) y"  # noqa: S608
            " WHERE x IS NOT NULL ORDER BY x LIMIT :n"
        ),
        {"c": course_id, "n": most},
    )
    return [str(x) for x in known]
