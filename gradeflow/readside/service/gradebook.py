"""The gradebook: one row per learner with each assessment's score, each category's average and the
course grade, as the Open edX gradebook shows them, read from the stored grades.

A page is one statement over the enrollments and their stored grade (filters and sort built from
optional conditions, keyset by the sort key and the enrollment id), then one read of the page's
attempts; nothing is graded on read.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.access.identity import CourseRef
from gradeflow.anonymity import service as anonymity
from gradeflow.core.errors import NotFound, ValidationFailed
from gradeflow.core.paging import Page, encode_cursor, not_ours, pair_after
from gradeflow.core.statuses import EnrollmentStatus, LateStatus
from gradeflow.courses.service import sessions
from gradeflow.grades.service import grades, sheets
from gradeflow.readside.repository import gradebook as repository
from gradeflow.readside.repository.gradebook import GradebookQuery, LearnerRow, Sort, View

__all__ = ["GradebookQuery", "View"]
from gradeflow.readside.service.course_data import AssessmentInfo, CourseInfo, load_course

# An attempt's cell as read: (status code, earned, possible), NaN where there is none.
Cell = tuple[int, float, float]


@dataclass(frozen=True, slots=True)
class GradebookGrade:
    percent: float | None
    grade: str | None
    passed: bool | None


@dataclass(frozen=True, slots=True)
class GradebookCell:
    """An assessment's cell as a gradebook shows it (score in percent or points, by the view)."""

    assessment: str
    status: str
    score: float | None
    possible: float
    display: str
    dropped: bool
    late_status: LateStatus | None


@dataclass(frozen=True, slots=True)
class GradebookCategory:
    name: str
    current_percent: float | None
    final_percent: float | None
    dropped: list[str]


@dataclass(frozen=True, slots=True)
class GradebookRow:
    """A learner's row: each assessment's cell, each category's average and the course grade."""

    learner: str
    username: str | None
    full_name: str | None
    email: str | None
    track: str | None
    cohort: str | None
    groups: list[str]
    status: EnrollmentStatus
    course_team: bool
    assessments: list[GradebookCell]
    categories: list[GradebookCategory]
    current: GradebookGrade
    final: GradebookGrade


async def page(
    session: AsyncSession, ref: CourseRef, q: GradebookQuery, limit: int, cursor: str | None
) -> tuple[CourseInfo, Page[GradebookRow]]:
    """One page of the gradebook and the course it shows (its assessment columns)."""
    await grades.bring_current(session, ref.id)
    course = await load_course(session, ref.id)
    withheld: frozenset[str] = frozenset()
    if q.hide_anonymous:
        hidden = await anonymity.hidden_assessments(session, ref.id)
        withheld = frozenset(a.category for a in course.assessments if a.external_id in hidden)
        course = replace(course, assessments=[a for a in course.assessments if a.external_id not in hidden])
    rows, more = await _learners(session, course, q, limit, cursor)
    items = await _rows(session, course, q, rows, withheld)
    next_cursor = encode_cursor([str(rows[-1].k), rows[-1].id]) if more else None
    return course, Page(items, next_cursor)


def columns(course: CourseInfo, q: GradebookQuery) -> list[AssessmentInfo]:
    return [a for a in course.assessments if q.category is None or a.category == q.category]


async def _learners(
    session: AsyncSession, course: CourseInfo, q: GradebookQuery, limit: int, cursor: str | None
) -> tuple[list[LearnerRow], bool]:
    sort = _sort(course, q.sort)
    score_of = None
    if q.assessment is not None:  # it must exist
        assessment = course.assessment(q.assessment)
        if assessment is None:
            raise NotFound(f"Assessment {q.assessment!r} not found in this course.")
        score_of = assessment.id
    session_id = None if q.session is None else await sessions.session_id(session, course.id, q.session)
    after = _cursor(cursor, sort.key_type)
    rows = await repository.learners(
        session, course.id, course.served_version, q, sort, score_of, session_id, after, limit + 1
    )
    return rows[:limit], len(rows) > limit


def _sort(course: CourseInfo, sort: str) -> Sort:
    """name, grade or assessment:<id> of the course, "-" first for descending."""
    descending = sort.startswith("-")
    by = sort.lstrip("-")
    if by in ("name", "grade"):
        return Sort("name" if by == "name" else "grade", descending)
    if by.startswith("assessment:") and (a := course.assessment(by.split(":", 1)[1])) is not None:
        return Sort("assessment", descending, a.id)
    raise ValidationFailed.one("sort", "Sort by name, grade or assessment:<id> of this course.", "query")


def _cursor(cursor: str | None, key_type: str) -> tuple[str, int] | None:
    """The last row's sort key (as text) and id; a cursor of another sort, or forged, is refused."""
    after = pair_after(cursor)
    if after is None:
        return None
    if not isinstance(after[0], str):
        raise not_ours()
    if key_type != "text":
        try:
            number = float(after[0])
        except ValueError:
            raise not_ours() from None
        if not math.isfinite(number):
            raise not_ours()
    return after


@dataclass(frozen=True, slots=True)
class _PageCells:
    """What the page's rows are built from besides the learners: the columns shown, the attempts' cells by
    (enrollment, column), the late policy's flags by (enrollment, assessment), and the categories withheld."""

    shown: list[AssessmentInfo]
    cells: dict[tuple[int, int], Cell]
    late: dict[tuple[int, str], LateStatus]
    withheld: frozenset[str]
    view: View


async def _rows(
    session: AsyncSession, course: CourseInfo, q: GradebookQuery, rows: list[LearnerRow], withheld: frozenset[str]
) -> list[GradebookRow]:
    shown = columns(course, q)
    column_of = {a.external_id: j for j, a in enumerate(shown)}
    ids = np.array(sorted(r.id for r in rows), dtype=np.int64)
    at, cols, status, earned, possible = await sheets.attempt_columns(session, course.id, ids, column_of)
    cells: dict[tuple[int, int], Cell] = {
        (int(ids[k]), int(j)): (int(s), float(x), float(p))
        for k, j, s, x, p in zip(at, cols, status, earned, possible, strict=True)
    }
    # The late policy's flags (few cells have one): read for the page's learners in one query.
    late = await repository.late_statuses(session, ids)
    page = _PageCells(shown, cells, late, withheld, q.view)
    return [_row(r, page) for r in rows]


def _row(r: LearnerRow, page: _PageCells) -> GradebookRow:
    explanation = r.explanation or {}
    # A withheld category (it holds an assessment hidden from the caller) shows no average.
    final = {c["name"]: c for c in explanation.get("final", []) if c["name"] not in page.withheld}
    current = {c["name"]: c for c in explanation.get("current", []) if c["name"] not in page.withheld}
    dropped = {a for c in final.values() for a in c.get("dropped", [])}
    categories = [
        GradebookCategory(
            name=name,
            current_percent=current.get(name, {}).get("percent"),
            final_percent=final.get(name, {}).get("percent"),
            dropped=final.get(name, {}).get("dropped", []),
        )
        for name in dict.fromkeys(a.category for a in page.shown)
    ]
    return GradebookRow(
        learner=r.external_id,
        username=r.username,
        full_name=r.full_name,
        email=r.email,
        track=r.track,
        cohort=r.cohort,
        groups=list(r.groups or []),
        status=r.status,
        course_team=r.is_course_team,
        assessments=[
            _cell(
                a, page.cells.get((r.id, j)), a.external_id in dropped, page.view, page.late.get((r.id, a.external_id))
            )
            for j, a in enumerate(page.shown)
        ],
        categories=categories,
        current=_grade(r.current_percent, r.current_grade, r.current_passed),
        final=_grade(r.final_percent, r.final_grade, r.final_passed),
    )


def _grade(percent: Decimal | None, grade: str | None, passed: bool | None) -> GradebookGrade:
    return GradebookGrade(None if percent is None else float(percent), grade, passed)


def _cell(
    a: AssessmentInfo, cell: Cell | None, dropped: bool, view: View, late_status: LateStatus | None
) -> GradebookCell:
    if cell is None:
        status, earned, possible = "not_attempted", None, a.points
    elif cell[0] == sheets.EXCUSED_STATUS:
        status, earned, possible = "excused", None, a.points if math.isnan(cell[2]) else cell[2]
    else:
        graded = cell[0] == sheets.GRADED_STATUS and not math.isnan(cell[1])
        status, earned = sheets.status_name(cell[0]), cell[1] if graded else None
        possible = a.points if math.isnan(cell[2]) else cell[2]
    percent = round(earned / possible * 100, 2) if earned is not None and possible else None
    if view == "absolute":
        score, display = earned, f"{_num(earned)} out of {_num(possible)}" if earned is not None else "-"
    else:
        score, display = percent, f"{_num(percent)}%" if percent is not None else "-"
    if status == "excused":
        display, late_status = "Excused", None
    return GradebookCell(
        assessment=a.external_id,
        status=status,
        score=score,
        possible=possible if view == "absolute" else 100.0,
        display=display,
        dropped=dropped,
        late_status=late_status,
    )


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


# --- CSV ------------------------------------------------------------------------------------------


async def csv_rows(
    make_session: async_sessionmaker[AsyncSession], ref: CourseRef, q: GradebookQuery
) -> AsyncIterator[list[Any]]:
    """The same view as CSV rows (header first), read page by page in its own session."""
    cursor: str | None = None
    first = True
    while True:
        async with make_session() as session:
            course, p = await page(session, ref, q, 1000, cursor)
        if first:
            shown = columns(course, q)
            yield [
                "Student ID",
                "Username",
                "Email",
                "Name",
                "Track",
                "Cohort",
                "Enrollment Status",
                *(f"{a.title} ({a.external_id})" for a in shown),
                *(f"{c} (Avg)" for c in dict.fromkeys(a.category for a in shown)),
                "Current Grade",
                "Final Grade",
                "Letter",
                "Passed",
            ]
            first = False
        for r in p.items:
            yield [
                r.learner,
                r.username,
                r.email,
                r.full_name,
                r.track,
                r.cohort,
                r.status,
                *(c.display for c in r.assessments),
                *(c.final_percent for c in r.categories),
                r.current.percent,
                r.final.percent,
                r.final.grade,
                r.final.passed,
            ]
        if p.next_cursor is None:
            return
        cursor = p.next_cursor
