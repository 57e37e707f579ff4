"""The statistics' SQL: final results and stored course grades read with COPY, for everyone or a cohort,
group or session; course team members and excused results left out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.courses.repository import groups, sessions
from gradeflow.db.conditions import Params
from gradeflow.db.copy import copy_frame, fetch
from gradeflow.publishing.repository.visibility import CONFIRMED_OR_AUTOMATIC


@dataclass(frozen=True, slots=True)
class Whose:
    """Whose results: a cohort, a group, a course session's (by id), archived groups' learners or not."""

    cohort: str | None = None
    group: str | None = None
    session_id: int | None = None
    include_archived: bool = False


def _who(whose: Whose, arg: Params, course: str, attempt: bool = False) -> str:
    """Conditions on enrollment `e`, and with `attempt` on attempt `t` (their values added to `arg`;
    `course`: the placeholder already holding the course's id). The session filters `t` where the
    figures are an assessment's, the learners where they are the course grade's (the rule in
    gradeflow/courses/service/sessions.py), so an assessment's figures are the results table's."""
    conditions = ["NOT e.is_course_team"]
    if whose.cohort is not None:
        conditions.append(f"e.cohort = {arg(whose.cohort)}")
    if whose.group is not None:
        conditions.append(f"CAST({arg(whose.group)} AS text) = ANY(e.groups)")
    if whose.session_id is not None and attempt:
        conditions.append(f"t.session_id = {arg(whose.session_id)}")
    elif whose.session_id is not None:
        conditions.append(sessions.with_attempt_in(arg(whose.session_id)))
    if not whose.include_archived:
        conditions.append(groups.not_archived(course))
    return " AND ".join(conditions)


# A final result: graded, with points, not excused, and confirmed where the assessment has manual items
# (their ids are the statement's parameter `manual`).
_FINAL = "t.status = 'graded' AND t.earned IS NOT NULL AND t.possible > 0 AND NOT t.excused AND " + (
    CONFIRMED_OR_AUTOMATIC.replace("{manual}", "CAST({manual} AS bigint[])")
)


async def course_grades(session: AsyncSession, course_id: int, whose: Whose) -> pl.DataFrame:
    """The enrolled learners' stored final course grades: percent, letter, passed (0 or 1)."""
    arg = Params(course_id)
    who = _who(whose, arg, "$1")
    return await copy_frame(
        session,
        f"""
        SELECT CAST(g.final_percent AS float8), g.final_grade, CAST(g.final_passed AS int)
        FROM enrollments e JOIN courses c ON c.id = e.course_id
        JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
        WHERE e.course_id = $1 AND e.status = 'enrolled' AND {who}
        """,  # noqa: S608 (constant SQL pieces)
        arg.values,
        {"percent": pl.Float64, "letter": pl.String, "passed": pl.Int8},
    )


@dataclass(frozen=True, slots=True)
class AssessmentFigures:
    count: int
    mean: float | None


async def assessment_figures(
    session: AsyncSession, course_id: int, manual: list[int], whose: Whose
) -> dict[int, AssessmentFigures]:
    """Per assessment (by id) with a final result: how many, and their mean percent."""
    arg = Params(course_id, manual)
    rows = await fetch(
        session,
        f"""
        SELECT t.assessment_id, count(*) AS n, avg(CAST(t.earned / t.possible * 100 AS float8)) AS mean
        FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
        WHERE e.course_id = $1 AND {_FINAL.format(manual="$2")} AND {_who(whose, arg, "$1", attempt=True)}
        GROUP BY t.assessment_id
        """,  # noqa: S608 (constant SQL pieces)
        arg.values,
    )
    return {r["assessment_id"]: AssessmentFigures(int(r["n"]), r["mean"]) for r in rows}


async def assessment_percents(
    session: AsyncSession, assessment_id: int, course_id: int, manual: list[int], whose: Whose
) -> tuple[np.ndarray, np.ndarray]:
    """Attempt ids (ascending) and percents of the assessment's final results."""
    arg = Params(assessment_id, course_id, manual)
    who = _who(whose, arg, "$2", attempt=True)
    frame = await copy_frame(
        session,
        f"""
        SELECT t.id, CAST(t.earned / t.possible * 100 AS float8)
        FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
        WHERE t.assessment_id = $1 AND e.course_id = $2 AND {_FINAL.format(manual="$3")} AND {who}
        ORDER BY t.id
        """,  # noqa: S608 (constant SQL pieces)
        arg.values,
        {"attempt": pl.Int64, "percent": pl.Float64},
    )
    return frame["attempt"].to_numpy(), frame["percent"].to_numpy()


async def item_scores(session: AsyncSession, attempts: np.ndarray) -> pl.DataFrame:
    """The item scores of the attempts: attempt, item, earned."""
    return await copy_frame(
        session,
        "SELECT sc.attempt_id, sc.item_id, CAST(sc.earned AS float8) FROM item_scores sc"
        " WHERE sc.attempt_id = ANY(CAST($1 AS bigint[]))",
        [attempts.tolist()],
        {"attempt": pl.Int64, "item": pl.Int64, "earned": pl.Float64},
    )
