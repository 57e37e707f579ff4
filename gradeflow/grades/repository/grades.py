"""SQL of stored course grades: the multi-row upsert, the rows a change is announced against, the
stale marks single score writes leave, and the reads the API serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core import clock


@dataclass(frozen=True, slots=True)
class GradeRows:
    """Column-wise rows of one upsert: per learner (enrollment ids) the current and final percent,
    letter and pass, and the explanation as JSON text."""

    enrollment_ids: list[int]
    current_percent: list[Decimal | None]
    current_grade: list[str | None]
    current_passed: list[bool | None]
    final_percent: list[Decimal | None]
    final_grade: list[str | None]
    final_passed: list[bool | None]
    explanation: list[str]


_UPSERT = text(
    """
    INSERT INTO course_grades AS g (enrollment_id, policy_version, course_id, current_percent, current_grade,
        current_passed, final_percent, final_grade, final_passed, explanation, computed_at)
    SELECT u.e, :version, :course, u.cp, u.cg, u.cpass, u.fp, u.fg, u.fpass, u.x::jsonb, :now
    FROM unnest(CAST(:e AS bigint[]), CAST(:cp AS numeric[]), CAST(:cg AS text[]), CAST(:cpass AS bool[]),
                CAST(:fp AS numeric[]), CAST(:fg AS text[]), CAST(:fpass AS bool[]), CAST(:x AS text[]))
         AS u(e, cp, cg, cpass, fp, fg, fpass, x)
    ON CONFLICT (enrollment_id, policy_version) DO UPDATE SET
      current_percent = excluded.current_percent, current_grade = excluded.current_grade,
      current_passed = excluded.current_passed, final_percent = excluded.final_percent,
      final_grade = excluded.final_grade, final_passed = excluded.final_passed,
      explanation = excluded.explanation, computed_at = excluded.computed_at
    """
)


async def upsert_grades(session: AsyncSession, course_id: int, version: int, rows: GradeRows) -> None:
    """Store these learners' grades under policy `version` (one statement for the whole chunk)."""
    await session.execute(
        _UPSERT,
        {
            "version": version,
            "course": course_id,
            "now": clock.now(),
            "e": rows.enrollment_ids,
            "cp": rows.current_percent,
            "cg": rows.current_grade,
            "cpass": rows.current_passed,
            "fp": rows.final_percent,
            "fg": rows.final_grade,
            "fpass": rows.final_passed,
            "x": rows.explanation,
        },
    )


@dataclass(frozen=True, slots=True)
class StoredFinal:
    """A learner's stored final grade under one version (all None without a stored grade)."""

    learner: str
    percent: Decimal | None
    grade: str | None
    passed: bool | None


async def stored_finals(session: AsyncSession, version: int, enrollment_ids: list[int]) -> dict[int, StoredFinal]:
    """Per enrollment id: the learner and their stored final grade under `version`."""
    rows = await session.execute(
        text(
            """
            SELECT e.id, e.external_id, g.final_percent, g.final_grade, g.final_passed
            FROM enrollments e LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = :v
            WHERE e.id = ANY(:ids)
            """
        ),
        {"v": version, "ids": enrollment_ids},
    )
    return {r[0]: StoredFinal(*r[1:]) for r in rows}


async def course_names(session: AsyncSession, course_id: int) -> tuple[int, str]:
    """(organization id, the course's external id)."""
    row = (
        await session.execute(text("SELECT organization_id, external_id FROM courses WHERE id = :c"), {"c": course_id})
    ).one()
    return row[0], row[1]


async def lock_learners(session: AsyncSession, enrollment_ids: list[int]) -> None:
    """Lock the learners' rows in id order (a concurrent recompute chunk waits, or is overwritten)."""
    await session.execute(
        text("SELECT 1 FROM enrollments WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"), {"ids": enrollment_ids}
    )


_MARK_STALE = text(
    """
    INSERT INTO stale_grades (enrollment_id, course_id)
    SELECT e, CAST(:c AS bigint) FROM unnest(CAST(:e AS bigint[])) AS e ON CONFLICT DO NOTHING
    """
)


async def mark_stale(session: AsyncSession, course_id: int, enrollment_ids: list[int]) -> None:
    await session.execute(_MARK_STALE, {"c": course_id, "e": enrollment_ids})


# Locks are taken in enrollment order, so concurrent refreshers queue up rather than deadlock; a write
# that marks a learner while the refresher holds the mark waits, and its mark outlives this refresh.
_TAKE_STALE = text(
    """
    DELETE FROM stale_grades WHERE enrollment_id IN (
      SELECT enrollment_id FROM stale_grades WHERE course_id = :c ORDER BY enrollment_id LIMIT :lim FOR UPDATE)
    RETURNING enrollment_id
    """
)


async def take_stale(session: AsyncSession, course_id: int, limit: int) -> list[int]:
    """Remove up to `limit` of the course's stale marks (lowest enrollment ids first): their learners."""
    return list((await session.scalars(_TAKE_STALE, {"c": course_id, "lim": limit})).all())


# --- reads ----------------------------------------------------------------------------------------

# With the course grade as published to the learner (`pg`), if it is.
_GRADE_COLUMNS = """
    pg.published_at, (pg.percent IS DISTINCT FROM g.final_percent OR pg.grade IS DISTINCT FROM g.final_grade)
      AS changed_since_published,
    e.external_id AS learner, g.policy_version, g.current_percent, g.current_grade, g.current_passed,
    g.final_percent, g.final_grade, g.final_passed, g.computed_at
"""


@dataclass(frozen=True, slots=True)
class StoredGrade:
    published_at: datetime | None
    changed_since_published: bool | None
    learner: str
    policy_version: int
    current_percent: Decimal | None
    current_grade: str | None
    current_passed: bool | None
    final_percent: Decimal | None
    final_grade: str | None
    final_passed: bool | None
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class ExplainedGrade:
    grade: StoredGrade
    explanation: dict[str, Any]
    rules: dict[str, Any]  # the body of the policy version that produced it


async def served_grades_page(
    session: AsyncSession, course_id: int, after: int, limit: int
) -> list[tuple[int, StoredGrade]]:
    """Up to `limit` stored grades of the served version after enrollment `after`: (enrollment id, grade)."""
    rows = await session.execute(
        text(
            f"""
            SELECT g.enrollment_id, {_GRADE_COLUMNS}
            FROM courses c
            JOIN course_grades g ON g.course_id = c.id AND g.policy_version = c.grades_version
            JOIN enrollments e ON e.id = g.enrollment_id
            LEFT JOIN published_grades pg ON pg.enrollment_id = g.enrollment_id
            WHERE c.id = :c AND g.enrollment_id > :after
            ORDER BY g.enrollment_id LIMIT :lim
            """  # noqa: S608  (constant columns, no input)
        ),
        {"c": course_id, "after": after, "lim": limit},
    )
    return [(r[0], StoredGrade(*r[1:])) for r in rows]


async def served_grade(session: AsyncSession, course_id: int, learner: str) -> ExplainedGrade | None:
    """The learner's stored grade of the served version, with its explanation and policy rules."""
    row = (
        await session.execute(
            text(
                f"""
                SELECT {_GRADE_COLUMNS}, g.explanation, p.body AS rules
                FROM enrollments e
                JOIN courses c ON c.id = e.course_id
                JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
                LEFT JOIN published_grades pg ON pg.enrollment_id = e.id
                JOIN grading_policies p ON p.course_id = c.id AND p.version = g.policy_version
                WHERE e.course_id = :c AND e.external_id = :l
                """  # noqa: S608
            ),
            {"c": course_id, "l": learner},
        )
    ).first()
    return None if row is None else ExplainedGrade(StoredGrade(*row[:-2]), row[-2], row[-1])
