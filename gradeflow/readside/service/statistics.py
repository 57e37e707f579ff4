"""Statistics of a course's grades or of one assessment's results, for everyone or a cohort or group:
count, mean, median, sample standard deviation, min, max, quartiles, pass rate, a histogram and the
letter distribution; per item, facility (mean score / max) and discrimination (item-rest correlation).

Values are read with COPY into numpy; only final results count (graded, and confirmed where marking is
manual); excused results and course team members are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import CourseRef
from gradeflow.core.errors import NotFound
from gradeflow.courses.service import groups, sessions
from gradeflow.db.conditions import Params
from gradeflow.db.copy import copy_frame, fetch
from gradeflow.grades.service import grades
from gradeflow.publishing.service import visibility as published
from gradeflow.reports.service.report_data import AssessmentInfo, CourseInfo, load_course


@dataclass(frozen=True)
class Scope:
    assessment: str | None = None
    cohort: str | None = None
    group: str | None = None
    bins: int = 10
    session: str | None = None  # a course session: see sessions' rule (learners here, attempts per assessment)
    include_archived: bool = False  # False: leave out learners whose every group is archived
    session_id: int | None = None  # `session` resolved (statistics() does it)


def _who(scope: Scope, arg: Params, course_id: int, attempt: bool = False) -> str:
    """Conditions on enrollment `e`, and with `attempt` on attempt `t` (their values added to `arg`). The
    session filters `t` where the figures are an assessment's, the learners where they are the course
    grade's (the rule in gradeflow/courses/service/sessions.py), so an assessment's figures are the results table's."""
    conditions = ["NOT e.is_course_team"]
    if scope.cohort is not None:
        conditions.append(f"e.cohort = {arg(scope.cohort)}")
    if scope.group is not None:
        conditions.append(f"CAST({arg(scope.group)} AS text) = ANY(e.groups)")
    if scope.session_id is not None and attempt:
        conditions.append(f"t.session_id = {arg(scope.session_id)}")
    elif scope.session_id is not None:
        conditions.append(sessions.with_attempt_in(arg(scope.session_id)))
    if not scope.include_archived:
        conditions.append(groups.not_archived(arg(course_id)))
    return " AND ".join(conditions)


# A final result: graded, with points, not excused, and confirmed where the assessment has manual items
# (their ids are the statement's parameter `manual`).
_FINAL = "t.status = 'graded' AND t.earned IS NOT NULL AND t.possible > 0 AND NOT t.excused AND " + (
    published.CONFIRMED_OR_AUTOMATIC.replace("{manual}", "CAST({manual} AS bigint[])")
)


def _manual(course: CourseInfo) -> list[int]:
    return [a.id for a in course.assessments if any(i.marking == "manual" for i in a.items)]


async def statistics(session: AsyncSession, ref: CourseRef, scope: Scope) -> dict[str, Any]:
    """The course grade's statistics (with a line per assessment), or one assessment's with its items."""
    await grades.bring_current(session, ref.id)
    course = await load_course(session, ref.id)
    if scope.session is not None:
        scope = replace(scope, session_id=await sessions.session_id(session, ref.id, scope.session))
    if scope.assessment is None:
        return await _course(session, course, scope)
    assessment = course.assessment(scope.assessment)
    if assessment is None:
        raise NotFound(f"Assessment {scope.assessment!r} not found in this course.")
    return await _assessment(session, course, assessment, scope)


async def _course(session: AsyncSession, course: CourseInfo, scope: Scope) -> dict[str, Any]:
    arg = Params(course.id)
    who = _who(scope, arg, course.id)
    frame = await copy_frame(
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
    percent = frame["percent"].drop_nulls().to_numpy()
    passed = frame["passed"].drop_nulls()
    arg = Params(course.id, _manual(course))
    summary = {
        r["assessment_id"]: r
        for r in await fetch(
            session,
            f"""
            SELECT t.assessment_id, count(*) AS n, avg(CAST(t.earned / t.possible * 100 AS float8)) AS mean
            FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id
            WHERE e.course_id = $1 AND {_FINAL.format(manual="$2")} AND {_who(scope, arg, course.id, attempt=True)}
            GROUP BY t.assessment_id
            """,  # noqa: S608 (constant SQL pieces)
            arg.values,
        )
    }
    per_assessment = [
        {
            "assessment": a.external_id,
            "title": a.title,
            "category": a.category,
            "count": int(summary[a.id]["n"]) if a.id in summary else 0,
            "mean": summary[a.id]["mean"] if a.id in summary else None,
        }
        for a in course.assessments
    ]
    return {
        "of": "course grade",
        **_describe(percent, scope.bins),
        "pass_rate": float(passed.mean()) if len(passed) else None,  # type: ignore[arg-type]
        "letters": _letters(course, frame["letter"].drop_nulls().to_list()),
        "assessments": per_assessment,
    }


async def _assessment_percents(
    session: AsyncSession, course: CourseInfo, a: AssessmentInfo, scope: Scope
) -> tuple[np.ndarray, np.ndarray]:
    """Attempt ids and percents of the assessment's final results."""
    arg = Params(a.id, course.id, _manual(course))
    who = _who(scope, arg, course.id, attempt=True)
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


async def _assessment(session: AsyncSession, course: CourseInfo, a: AssessmentInfo, scope: Scope) -> dict[str, Any]:
    attempts, percent = await _assessment_percents(session, course, a, scope)
    pass_mark = course.rules.pass_mark() if course.rules else None
    return {
        "of": a.external_id,
        "title": a.title,
        **_describe(percent, scope.bins),
        "pass_rate": float(np.mean(percent >= pass_mark * 100)) if pass_mark is not None and len(percent) else None,
        "letters": _letters(course, [course.letter(p / 100) for p in percent]),
        "items": await _items(session, a, attempts),
    }


async def _items(session: AsyncSession, a: AssessmentInfo, attempts: np.ndarray) -> list[dict[str, Any]]:
    """Facility and discrimination of each item over the attempts given (their final results)."""
    if not a.items or not len(attempts):
        return [_item(i, np.zeros(0), np.zeros(0)) for i in a.items]
    frame = await copy_frame(
        session,
        "SELECT sc.attempt_id, sc.item_id, CAST(sc.earned AS float8) FROM item_scores sc"
        " WHERE sc.attempt_id = ANY(CAST($1 AS bigint[]))",
        [attempts.tolist()],
        {"attempt": pl.Int64, "item": pl.Int64, "earned": pl.Float64},
    )
    column = {i.id: k for k, i in enumerate(a.items)}
    scores = np.zeros((len(attempts), len(a.items)))  # an unscored item of a final result counts 0
    rows = np.searchsorted(attempts, frame["attempt"].to_numpy())
    cols = frame["item"].replace_strict(column, default=-1, return_dtype=pl.Int64).to_numpy()
    ok = cols >= 0
    scores[rows[ok], cols[ok]] = np.nan_to_num(frame["earned"].to_numpy()[ok])
    total = scores.sum(axis=1)
    return [_item(i, scores[:, k], total - scores[:, k]) for k, i in enumerate(a.items)]


def _item(item: Any, scores: np.ndarray, rest: np.ndarray) -> dict[str, Any]:
    facility = float(scores.mean() / item.points) if len(scores) and item.points else None
    discrimination = None
    if len(scores) > 2 and scores.std() > 0 and rest.std() > 0:
        discrimination = float(np.corrcoef(scores, rest)[0, 1])
    return {
        "item": item.external_id,
        "number": item.number,
        "title": item.title,
        "points_possible": item.points,
        "count": len(scores),
        "mean": float(scores.mean()) if len(scores) else None,
        "facility": facility,
        "discrimination": discrimination,
    }


def _describe(values: np.ndarray, bins: int) -> dict[str, Any]:
    """Count, mean, median, sample standard deviation, min, max, quartiles and a histogram of percents
    over [0, 100] (values above 100, extra credit, in the last bin)."""
    edges = np.linspace(0.0, 100.0, bins + 1)
    counts, _ = np.histogram(np.clip(values, 0.0, 100.0), bins=edges)
    if not len(values):
        stats: dict[str, Any] = dict.fromkeys(("mean", "median", "std", "min", "max", "q1", "q3"))
    else:
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        stats = {
            "mean": float(values.mean()),
            "median": float(median),
            "std": float(values.std(ddof=1)) if len(values) > 1 else None,
            "min": float(values.min()),
            "max": float(values.max()),
            "q1": float(q1),
            "q3": float(q3),
        }
    return {
        "count": len(values),
        **stats,
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def _letters(course: CourseInfo, letters: list[str | None]) -> dict[str, int]:
    """How many got each letter of the policy's cutoffs (highest first)."""
    order = [c.grade for c in course.rules.cutoffs_high_first()] if course.rules else []
    found = {g: 0 for g in order}
    for letter in letters:
        if letter is not None:
            found[letter] = found.get(letter, 0) + 1
    return found
