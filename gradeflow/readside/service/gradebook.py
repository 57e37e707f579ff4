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
from typing import Any, Literal

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.access.service.access import CourseRef
from gradeflow.core.errors import NotFound, ValidationFailed
from gradeflow.core.paging import Page, encode_cursor, not_ours, pair_after
from gradeflow.courses.service import groups, sessions
from gradeflow.db.conditions import Params, contains
from gradeflow.db.copy import fetch
from gradeflow.grades.service import grades
from gradeflow.marking.service import anonymity
from gradeflow.reports.service.report_data import AssessmentInfo, CourseInfo, load_course

View = Literal["percent", "absolute"]


@dataclass(frozen=True)
class GradebookQuery:
    view: View = "percent"
    category: str | None = None  # only this category's assessments and average
    assessment: str | None = None  # with score_min / score_max: learners whose score on it is in range
    score_min: float | None = None  # percent
    score_max: float | None = None
    grade_min: float | None = None  # final course grade, percent
    grade_max: float | None = None
    track: str | None = None
    cohort: str | None = None
    group: str | None = None
    status: str | None = None  # enrollment status
    include_course_team: bool = False
    session: str | None = None  # only learners with an attempt in this course session
    include_archived: bool = False  # False: leave out learners whose every group is archived
    search: str | None = None  # case-insensitive, in username, e-mail and name
    sort: str = "name"  # name, grade, assessment:<id>; a leading "-" sorts descending
    # A concealed caller (anonymity.concealed): anonymous assessments are left out (no column, no filter or
    # sort by them) and the averages of their categories are withheld; the course grade stays.
    hide_anonymous: bool = False


# Sort keys: text or numbers; a learner with no value (no grade, no graded attempt, excused) counts as the
# lowest.
_NAME = "lower(coalesce(e.full_name, e.username, e.external_id))"
_GRADE = "coalesce(g.final_percent, -1)"
_SCORE = (
    "coalesce(CASE WHEN {s}.status = 'graded' AND NOT {s}.excused AND {s}.possible > 0"
    " THEN CAST({s}.earned AS float8) / CAST({s}.possible AS float8) * 100 END, -1)"
)


async def page(
    session: AsyncSession, ref: CourseRef, q: GradebookQuery, limit: int, cursor: str | None
) -> tuple[CourseInfo, Page[dict[str, Any]]]:
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
    next_cursor = encode_cursor([str(rows[-1]["k"]), rows[-1]["id"]]) if more else None
    return course, Page(items, next_cursor)


def columns(course: CourseInfo, q: GradebookQuery) -> list[AssessmentInfo]:
    return [a for a in course.assessments if q.category is None or a.category == q.category]


async def _learners(
    session: AsyncSession, course: CourseInfo, q: GradebookQuery, limit: int, cursor: str | None
) -> tuple[list[Any], bool]:
    arg = Params(course.id)

    where = ["e.course_id = $1"]
    joined: dict[int, str] = {}  # assessment id -> the alias of its attempts (one join per assessment)

    def attempts_of(external_id: str) -> str:
        a = course.assessment(external_id)
        if a is None:
            raise NotFound(f"Assessment {external_id!r} not found in this course.")
        if a.id not in joined:
            joined[a.id] = f"s{len(joined)}"
        return joined[a.id]

    descending = q.sort.startswith("-")
    sort = q.sort.lstrip("-")
    sort_alias = None
    if sort == "name":
        key, key_type = _NAME, "text"
    elif sort == "grade":
        key, key_type = _GRADE, "numeric"
    elif sort.startswith("assessment:") and course.assessment(sort.split(":", 1)[1]):
        sort_alias = attempts_of(sort.split(":", 1)[1])
        key, key_type = _SCORE.format(s=sort_alias), "float8"
    else:
        raise ValidationFailed.one("sort", "Sort by name, grade or assessment:<id> of this course.", "query")
    required: set[str] = set()  # aliases whose attempt must exist (a score range asks for a graded one)
    if q.assessment is not None and (q.score_min is not None or q.score_max is not None):
        s = attempts_of(q.assessment)
        required.add(s)
        # On the sort key's own expression (no value = -1), so the attempts' index serves both.
        where.append(f"{_SCORE.format(s=s)} >= {arg(q.score_min or 0)}")
        if q.score_max is not None:
            where.append(f"{_SCORE.format(s=s)} <= {arg(q.score_max)}")
    elif q.assessment is not None:
        attempts_of(q.assessment)  # it must exist
    if q.grade_min is not None:
        where.append(f"g.final_percent >= {arg(q.grade_min)}")
    if q.grade_max is not None:
        where.append(f"g.final_percent <= {arg(q.grade_max)}")
    for column, value in (("e.track", q.track), ("e.cohort", q.cohort), ("e.status", q.status)):
        if value is not None:
            where.append(f"{column} = {arg(value)}")
    if q.group is not None:
        where.append(f"CAST({arg(q.group)} AS text) = ANY(e.groups)")
    if not q.include_course_team:
        where.append("NOT e.is_course_team")
    if q.session is not None:
        where.append(sessions.with_attempt_in(arg(await sessions.session_id(session, course.id, q.session))))
    if not q.include_archived:
        where.append(groups.not_archived("$1"))
    if q.search is not None:
        where.append(contains(("e.username", "e.email", "e.full_name"), q.search, arg))
    # The sort runs over narrow rows (id and key); only the page's rows are then read whole. Sorted by
    # grade, the walk starts from the stored grades (their index gives the order; every learner has a
    # stored grade once the course has a served policy); sorted by an assessment with a score range,
    # from its attempts. The tie-breaker is that index's own learner column, so it serves the order
    # and the row comparison that starts each page where the last one ended.
    grades_first = sort == "grade" and course.served_version is not None
    tie = "g.enrollment_id" if grades_first else f"{sort_alias}.enrollment_id" if sort_alias in required else "e.id"
    after = _cursor(cursor, key_type)
    if after is not None:
        k, i = f"CAST(CAST({arg(after[0])} AS text) AS {key_type})", f"CAST({arg(after[1])} AS bigint)"
        where.append(f"({key}, {tie}) {'<' if descending else '>'} ({k}, {i})")
    order = "DESC" if descending else "ASC"
    version = arg(course.served_version)
    source = (
        "course_grades g JOIN enrollments e ON e.id = g.enrollment_id"
        f" AND g.course_id = $1 AND g.policy_version = {version}"
        if grades_first
        else f"enrollments e LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = {version}"
    )
    joins = " ".join(
        f"{'' if alias in required else 'LEFT '}JOIN attempts {alias}"
        f" ON {alias}.enrollment_id = e.id AND {alias}.assessment_id = {arg(a)}"
        for a, alias in joined.items()
    )
    sql = f"""
        WITH page AS (
          SELECT e.id, {key} AS k FROM {source} {joins}
          WHERE {" AND ".join(where)}
          ORDER BY {key} {order}, {tie} {order} LIMIT {arg(limit + 1)})
        SELECT e.id, e.external_id, e.username, e.full_name, e.email, e.track, e.cohort, e.groups, e.status,
               e.is_course_team, g.current_percent, g.current_grade, g.current_passed, g.final_percent,
               g.final_grade, g.final_passed, g.explanation, page.k
        FROM page JOIN enrollments e ON e.id = page.id JOIN courses c ON c.id = e.course_id
        LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
        ORDER BY page.k {order}, e.id {order}
    """  # noqa: S608 (constant SQL pieces; values are parameters)
    rows = await fetch(session, sql, arg.values)
    return rows[:limit], len(rows) > limit


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


async def _rows(
    session: AsyncSession, course: CourseInfo, q: GradebookQuery, rows: list[Any], withheld: frozenset[str]
) -> list[dict[str, Any]]:
    shown = columns(course, q)
    column_of = {a.external_id: j for j, a in enumerate(shown)}
    ids = np.array(sorted(r["id"] for r in rows), dtype=np.int64)
    at, cols, status, earned, possible = await grades.attempt_columns(session, course.id, ids, column_of)
    cells: dict[tuple[int, int], tuple[int, float, float]] = {
        (int(ids[k]), int(j)): (int(s), float(x), float(p))
        for k, j, s, x, p in zip(at, cols, status, earned, possible, strict=True)
    }
    page = [_row(r, shown, cells, q, withheld) for r in rows]
    # The late policy's flags (few cells have one): read for the page's learners in one query.
    late = {
        (int(e), str(a)): str(status)
        for e, a, status in await session.execute(
            text(
                "SELECT t.enrollment_id, a.external_id, t.late_status FROM attempts t"
                " JOIN assessments a ON a.id = t.assessment_id"
                " WHERE t.enrollment_id = ANY(CAST(:ids AS bigint[])) AND t.late_status IS NOT NULL"
            ),
            {"ids": ids.tolist()},
        )
    }
    for r, row in zip(rows, page, strict=True):
        for cell in row["assessments"]:
            cell["late_status"] = None if cell["status"] == "excused" else late.get((r["id"], cell["assessment"]))
    return page


def _row(
    r: Any, shown: list[AssessmentInfo], cells: dict[tuple[int, int], Any], q: GradebookQuery, withheld: frozenset[str]
) -> dict[str, Any]:
    explanation = r["explanation"] or {}
    # A withheld category (it holds an assessment hidden from the caller) shows no average.
    final = {c["name"]: c for c in explanation.get("final", []) if c["name"] not in withheld}
    current = {c["name"]: c for c in explanation.get("current", []) if c["name"] not in withheld}
    dropped = {a for c in final.values() for a in c.get("dropped", [])}
    categories = [
        {
            "name": name,
            "current_percent": current.get(name, {}).get("percent"),
            "final_percent": final.get(name, {}).get("percent"),
            "dropped": final.get(name, {}).get("dropped", []),
        }
        for name in dict.fromkeys(a.category for a in shown)
    ]
    return {
        "learner": r["external_id"],
        "username": r["username"],
        "full_name": r["full_name"],
        "email": r["email"],
        "track": r["track"],
        "cohort": r["cohort"],
        "groups": list(r["groups"] or []),
        "status": r["status"],
        "course_team": r["is_course_team"],
        "assessments": [
            _cell(a, cells.get((r["id"], j)), a.external_id in dropped, q.view) for j, a in enumerate(shown)
        ],
        "categories": categories,
        "current": _grade(r["current_percent"], r["current_grade"], r["current_passed"]),
        "final": _grade(r["final_percent"], r["final_grade"], r["final_passed"]),
    }


def _grade(percent: Decimal | None, grade: str | None, passed: bool | None) -> dict[str, Any]:
    return {"percent": None if percent is None else float(percent), "grade": grade, "passed": passed}


def _cell(a: AssessmentInfo, cell: tuple[int, float, float] | None, dropped: bool, view: View) -> dict[str, Any]:
    if cell is None:
        status, earned, possible = "not_attempted", None, a.points
    elif cell[0] == grades.EXCUSED_STATUS:
        status, earned, possible = "excused", None, a.points if math.isnan(cell[2]) else cell[2]
    else:
        graded = cell[0] == grades.GRADED_STATUS and not math.isnan(cell[1])
        status, earned = grades.status_name(cell[0]), cell[1] if graded else None
        possible = a.points if math.isnan(cell[2]) else cell[2]
    percent = round(earned / possible * 100, 2) if earned is not None and possible else None
    if view == "absolute":
        score, display = earned, f"{_num(earned)} out of {_num(possible)}" if earned is not None else "-"
    else:
        score, display = percent, f"{_num(percent)}%" if percent is not None else "-"
    if status == "excused":
        display = "Excused"
    return {
        "assessment": a.external_id,
        "status": status,
        "score": score,
        "possible": possible if view == "absolute" else 100.0,
        "display": display,
        "dropped": dropped,
    }


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
                r["learner"],
                r["username"],
                r["email"],
                r["full_name"],
                r["track"],
                r["cohort"],
                r["status"],
                *(c["display"] for c in r["assessments"]),
                *(c["final_percent"] for c in r["categories"]),
                r["current"]["percent"],
                r["final"]["percent"],
                r["final"]["grade"],
                r["final"]["passed"],
            ]
        if p.next_cursor is None:
            return
        cursor = p.next_cursor
