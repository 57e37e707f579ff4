"""Statistics of a course's grades or of one assessment's results, for everyone or a cohort or group:
count, mean, median, sample standard deviation, min, max, quartiles, pass rate, a histogram and the
letter distribution; per item, facility (mean score / max) and discrimination (item-rest correlation).

Values are read with COPY into numpy; only final results count (graded, and confirmed where marking is
manual); excused results and course team members are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.core.errors import NotFound
from gradeflow.courses.service import sessions
from gradeflow.grades.service import grades
from gradeflow.grading import stats
from gradeflow.readside.repository import statistics as repository
from gradeflow.readside.repository.statistics import Whose
from gradeflow.readside.service.course_data import AssessmentInfo, CourseInfo, ItemInfo, load_course


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


@dataclass(frozen=True, slots=True)
class Histogram:
    edges: list[float]
    counts: list[int]


@dataclass(frozen=True, slots=True)
class AssessmentFigures:
    """An assessment's line in the course grade's statistics: how many final results, and their mean percent."""

    assessment: str
    title: str
    category: str
    count: int
    mean: float | None


@dataclass(frozen=True, slots=True)
class ItemFigures:
    """An item's mean score, facility (mean score / points possible) and discrimination (item-rest correlation)."""

    item: str
    number: str | None
    title: str | None
    points_possible: float
    count: int
    mean: float | None
    facility: float | None
    discrimination: float | None


@dataclass(frozen=True, slots=True)
class Statistics:
    """The distribution of the course grade's percents (with a line per assessment) or of one assessment's (with
    its items): count, mean, median, sample standard deviation, min, max, quartiles, a histogram over 0-100 %, the
    pass rate and how many got each letter."""

    of: str  # "course grade" or the assessment
    title: str | None
    count: int
    mean: float | None
    median: float | None
    std: float | None
    min: float | None
    max: float | None
    q1: float | None
    q3: float | None
    histogram: Histogram
    pass_rate: float | None
    letters: dict[str, int]
    assessments: list[AssessmentFigures] | None = None
    items: list[ItemFigures] | None = None


async def statistics(session: AsyncSession, ref: CourseRef, scope: Scope) -> Statistics:
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


async def _course(session: AsyncSession, course: CourseInfo, scope: Scope) -> Statistics:
    frame = await repository.course_grades(session, course.id, _whose(scope))
    percent = frame["percent"].drop_nulls().to_numpy()
    passed = frame["passed"].drop_nulls()
    summary = await repository.assessment_figures(session, course.id, _manual(course), _whose(scope))
    per_assessment = [
        AssessmentFigures(
            assessment=a.external_id,
            title=a.title,
            category=a.category,
            count=summary[a.id].count if a.id in summary else 0,
            mean=summary[a.id].mean if a.id in summary else None,
        )
        for a in course.assessments
    ]
    return _described(
        "course grade",
        None,
        percent,
        scope.bins,
        pass_rate=float(passed.mean()) if len(passed) else None,  # type: ignore[arg-type]
        letters=_letters(course, frame["letter"].drop_nulls().to_list()),
        assessments=per_assessment,
    )


async def _assessment(session: AsyncSession, course: CourseInfo, a: AssessmentInfo, scope: Scope) -> Statistics:
    whose = _whose(scope)
    attempts, percent = await repository.assessment_percents(session, a.id, course.id, _manual(course), whose)
    pass_mark = course.rules.pass_mark() if course.rules else None
    return _described(
        a.external_id,
        a.title,
        percent,
        scope.bins,
        pass_rate=float(np.mean(percent >= pass_mark * 100)) if pass_mark is not None and len(percent) else None,
        letters=_letters(course, [course.letter(p / 100) for p in percent]),
        items=await _items(session, a, attempts),
    )


async def _items(session: AsyncSession, a: AssessmentInfo, attempts: np.ndarray) -> list[ItemFigures]:
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


def _item(item: ItemInfo, scores: np.ndarray, rest: np.ndarray) -> ItemFigures:
    facility = float(scores.mean() / item.points) if len(scores) and item.points else None
    discrimination = None
    if len(scores) > 2 and scores.std() > 0 and rest.std() > 0:
        discrimination = float(np.corrcoef(scores, rest)[0, 1])
    return ItemFigures(
        item=item.external_id,
        number=item.number,
        title=item.title,
        points_possible=item.points,
        count=len(scores),
        mean=float(scores.mean()) if len(scores) else None,
        facility=facility,
        discrimination=discrimination,
    )


def _described(
    of: str,
    title: str | None,
    values: np.ndarray,
    bins: int,
    *,
    pass_rate: float | None,
    letters: dict[str, int],
    assessments: list[AssessmentFigures] | None = None,
    items: list[ItemFigures] | None = None,
) -> Statistics:
    """The statistics of `values`: count, mean, median, sample standard deviation, min, max, quartiles
    (grading/stats.py) and a histogram of percents over [0, 100] (values above 100, extra credit, in the last
    bin)."""
    s = stats.summary(values, sample=True)
    return Statistics(
        of=of,
        title=title,
        count=s.count,
        mean=s.mean,
        median=s.median,
        std=s.stdev,
        min=s.min,
        max=s.max,
        q1=s.q1,
        q3=s.q3,
        histogram=Histogram([float(e) for e in stats.edges(bins)], stats.histogram(values, bins)),
        pass_rate=pass_rate,
        letters=letters,
        assessments=assessments,
        items=items,
    )


def _letters(course: CourseInfo, letters: list[str | None]) -> dict[str, int]:
    """How many got each letter of the policy's cutoffs (highest first)."""
    order = [c.grade for c in course.rules.cutoffs_high_first()] if course.rules else []
    found = {g: 0 for g in order}
    for letter in letters:
        if letter is not None:
            found[letter] = found.get(letter, 0) + 1
    return found
