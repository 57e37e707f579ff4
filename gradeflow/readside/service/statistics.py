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

from gradeflow.access.identity import CourseRef
from gradeflow.core.errors import NotFound
from gradeflow.courses.service import sessions
from gradeflow.grades.service import grades
from gradeflow.readside import stats
from gradeflow.readside.repository import statistics as repository
from gradeflow.readside.repository.statistics import Whose
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


def _whose(scope: Scope) -> Whose:
    return Whose(scope.cohort, scope.group, scope.session_id, scope.include_archived)


async def _course(session: AsyncSession, course: CourseInfo, scope: Scope) -> dict[str, Any]:
    frame = await repository.course_grades(session, course.id, _whose(scope))
    percent = frame["percent"].drop_nulls().to_numpy()
    passed = frame["passed"].drop_nulls()
    summary = await repository.assessment_figures(session, course.id, _manual(course), _whose(scope))
    per_assessment = [
        {
            "assessment": a.external_id,
            "title": a.title,
            "category": a.category,
            "count": summary[a.id].count if a.id in summary else 0,
            "mean": summary[a.id].mean if a.id in summary else None,
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


async def _assessment(session: AsyncSession, course: CourseInfo, a: AssessmentInfo, scope: Scope) -> dict[str, Any]:
    whose = _whose(scope)
    attempts, percent = await repository.assessment_percents(session, a.id, course.id, _manual(course), whose)
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
    frame = await repository.item_scores(session, attempts)
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
    """Count, mean, median, sample standard deviation, min, max, quartiles (readside/stats.py) and a
    histogram of percents over [0, 100] (values above 100, extra credit, in the last bin)."""
    s = stats.summary(values, sample=True)
    return {
        "count": s.count,
        "mean": s.mean,
        "median": s.median,
        "std": s.stdev,
        "min": s.min,
        "max": s.max,
        "q1": s.q1,
        "q3": s.q3,
        "histogram": {"edges": [float(e) for e in stats.edges(bins)], "counts": stats.histogram(values, bins)},
    }


def _letters(course: CourseInfo, letters: list[str | None]) -> dict[str, int]:
    """How many got each letter of the policy's cutoffs (highest first)."""
    order = [c.grade for c in course.rules.cutoffs_high_first()] if course.rules else []
    found = {g: 0 for g in order}
    for letter in letters:
        if letter is not None:
            found[letter] = found.get(letter, 0) + 1
    return found
