"""What the PDF reports read per chunk of learners besides their results: course team membership and
when they took a test, and what was published to them (results and course grades)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# When a learner took a test (attempt `t`): its submission, else its start, else when the result was
# first recorded; and whether that falls in the report's period (:since, :until).
_TAKEN = "coalesce(t.submitted_at, t.started_at, t.created_at)"
TAKEN_IN_PERIOD = f"""(CAST(:since AS timestamptz) IS NULL OR {_TAKEN} >= :since)
           AND (CAST(:until AS timestamptz) IS NULL OR {_TAKEN} < :until)"""


# Per learner of a chunk (ids ascending): a course team member?, and whether their attempt at the
# assessment was taken in the period. "Taken" is when the learner took the test: its submission,
# else its start, else when the result was first recorded (scores sent without an attempt's times).
# Never the last change: a re-mark in May does not move a test taken in March out of March. With a
# session, an attempt counts only if it is in that session.
_TEAM_AND_PERIOD = f"""
    SELECT e.is_course_team,
           t.id IS NOT NULL
           AND {TAKEN_IN_PERIOD}
           AND (CAST(:s AS bigint) IS NULL OR t.session_id = :s)
    FROM enrollments e LEFT JOIN attempts t ON t.enrollment_id = e.id AND t.assessment_id = :a
    WHERE e.id = ANY(CAST(:ids AS bigint[])) ORDER BY e.id
"""  # noqa: S608  (constant SQL)


async def team_and_period(
    session: AsyncSession,
    assessment_id: int,
    ids: np.ndarray,
    since: datetime | None,
    until: datetime | None,
    session_id: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per learner (`ids`, ascending): on the course team?; their attempt at the assessment taken in the
    period (and, with `session_id`, in that session)?"""
    rows = (
        await session.execute(
            text(_TEAM_AND_PERIOD),
            {"a": assessment_id, "ids": ids.tolist(), "since": since, "until": until, "s": session_id},
        )
    ).all()
    return np.array([bool(r[0]) for r in rows], dtype=bool), np.array([bool(r[1]) for r in rows], dtype=bool)


@dataclass(frozen=True, slots=True)
class PublishedResult:
    """A result as published to the learner."""

    enrollment_id: int
    assessment_id: int
    earned: Decimal | None
    possible: Decimal
    excused: bool
    items: list[dict[str, Any]] | None  # only when published with its items
    feedback: str | None


async def published_results(session: AsyncSession, ids: np.ndarray) -> dict[tuple[int, int], PublishedResult]:
    """The learners' published snapshots by (enrollment, assessment): what the learners see."""
    rows = await session.execute(
        text(
            """
            SELECT pr.enrollment_id, pr.assessment_id, pr.earned, pr.possible, pr.excused, pr.items, pr.feedback
            FROM published_results pr WHERE pr.enrollment_id = ANY(CAST(:ids AS bigint[]))
            """
        ),
        {"ids": ids.tolist()},
    )
    return {(r[0], r[1]): PublishedResult(*r) for r in rows}


@dataclass(frozen=True, slots=True)
class PublishedGrade:
    """A published course grade, with the stored grade's explanation while it is still the one published."""

    percent: float | None
    letter: str | None
    explained: list[dict[str, Any]] | None  # per category: percent, counted, dropped


async def published_grades(session: AsyncSession, ids: np.ndarray, version: int | None) -> dict[int, PublishedGrade]:
    """The learners' published course grades, each with the explanation of the stored grade of policy
    `version` while it still says what was published."""
    rows = await session.execute(
        text(
            """
            SELECT pg.enrollment_id, pg.percent, pg.grade,
                   CASE WHEN pg.percent IS NOT DISTINCT FROM g.final_percent
                         AND pg.grade IS NOT DISTINCT FROM g.final_grade THEN g.explanation -> 'final' END
            FROM published_grades pg
            LEFT JOIN course_grades g ON g.enrollment_id = pg.enrollment_id AND g.policy_version = :v
            WHERE pg.enrollment_id = ANY(CAST(:ids AS bigint[]))
            """
        ),
        {"ids": ids.tolist(), "v": version},
    )
    return {int(r[0]): PublishedGrade(None if r[1] is None else float(r[1]), r[2], r[3]) for r in rows}
