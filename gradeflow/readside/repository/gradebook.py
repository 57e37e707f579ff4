"""The gradebook's SQL: a page of learners (filters and sort built from optional conditions, keyset by the
sort key and the enrollment id) with their stored grade, and the late policy's flags of their attempts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.statuses import EnrollmentStatus, LateStatus
from gradeflow.courses.repository import groups, sessions
from gradeflow.db.conditions import Params, contains
from gradeflow.db.copy import fetch

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


@dataclass(frozen=True, slots=True)
class Sort:
    """The page's order: by name, grade or one assessment's score (its id), descending or not."""

    by: Literal["name", "grade", "assessment"]
    descending: bool = False
    assessment_id: int | None = None

    @property
    def key_type(self) -> str:
        return {"name": "text", "grade": "numeric", "assessment": "float8"}[self.by]


@dataclass(frozen=True, slots=True)
class LearnerRow:
    """A learner of the page with their stored grade (`k`: the sort key)."""

    id: int
    external_id: str
    username: str | None
    full_name: str | None
    email: str | None
    track: str | None
    cohort: str | None
    groups: list[str] | None
    status: EnrollmentStatus
    is_course_team: bool
    current_percent: Decimal | None
    current_grade: str | None
    current_passed: bool | None
    final_percent: Decimal | None
    final_grade: str | None
    final_passed: bool | None
    explanation: dict[str, Any] | None
    k: Any


async def learners(
    session: AsyncSession,
    course_id: int,
    served_version: int | None,
    q: GradebookQuery,
    sort: Sort,
    score_of: int | None,
    session_id: int | None,
    after: tuple[str, int] | None,
    limit: int,
) -> list[LearnerRow]:
    """Up to `limit` learners in `sort` order after the key and id `after`, under `q`'s filters
    (`score_of`: the assessment whose score q's score range is about; `session_id`: q's session)."""
    arg = Params(course_id)

    where = ["e.course_id = $1"]
    joined: dict[int, str] = {}  # assessment id -> the alias of its attempts (one join per assessment)

    def attempts_of(assessment_id: int) -> str:
        if assessment_id not in joined:
            joined[assessment_id] = f"s{len(joined)}"
        return joined[assessment_id]

    sort_alias = None
    if sort.by == "name":
        key = _NAME
    elif sort.by == "grade":
        key = _GRADE
    else:
        assert sort.assessment_id is not None
        sort_alias = attempts_of(sort.assessment_id)
        key = _SCORE.format(s=sort_alias)
    key_type = sort.key_type
    required: set[str] = set()  # aliases whose attempt must exist (a score range asks for a graded one)
    if score_of is not None:
        s = attempts_of(score_of)
        if q.score_min is not None or q.score_max is not None:
            required.add(s)
            # On the sort key's own expression (no value = -1), so the attempts' index serves both.
            where.append(f"{_SCORE.format(s=s)} >= {arg(q.score_min or 0)}")
            if q.score_max is not None:
                where.append(f"{_SCORE.format(s=s)} <= {arg(q.score_max)}")
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
    if session_id is not None:
        where.append(sessions.with_attempt_in(arg(session_id)))
    if not q.include_archived:
        where.append(groups.not_archived("$1"))
    if q.search is not None:
        where.append(contains(("e.username", "e.email", "e.full_name"), q.search, arg))
    # The sort runs over narrow rows (id and key); only the page's rows are then read whole. Sorted by
    # grade, the walk starts from the stored grades (their index gives the order; every learner has a
    # stored grade once the course has a served policy); sorted by an assessment with a score range,
    # from its attempts. The tie-breaker is that index's own learner column, so it serves the order
    # and the row comparison that starts each page where the last one ended.
    grades_first = sort.by == "grade" and served_version is not None
    tie = "g.enrollment_id" if grades_first else f"{sort_alias}.enrollment_id" if sort_alias in required else "e.id"
    if after is not None:
        k, i = f"CAST(CAST({arg(after[0])} AS text) AS {key_type})", f"CAST({arg(after[1])} AS bigint)"
        where.append(f"({key}, {tie}) {'<' if sort.descending else '>'} ({k}, {i})")
    order = "DESC" if sort.descending else "ASC"
    version = arg(served_version)
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
          ORDER BY {key} {order}, {tie} {order} LIMIT {arg(limit)})
        SELECT e.id, e.external_id, e.username, e.full_name, e.email, e.track, e.cohort, e.groups, e.status,
               e.is_course_team, g.current_percent, g.current_grade, g.current_passed, g.final_percent,
               g.final_grade, g.final_passed, g.explanation, page.k
        FROM page JOIN enrollments e ON e.id = page.id JOIN courses c ON c.id = e.course_id
        LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
        ORDER BY page.k {order}, e.id {order}
    """  # noqa: S608 (constant SQL pieces; values are parameters)
    return [LearnerRow(*r.values()) for r in await fetch(session, sql, arg.values)]


async def late_statuses(session: AsyncSession, ids: np.ndarray) -> dict[tuple[int, str], LateStatus]:
    """The late policy's flags of the learners' attempts (few have one), by (enrollment, assessment)."""
    rows = await session.execute(
        text(
            "SELECT t.enrollment_id, a.external_id, t.late_status FROM attempts t"
            " JOIN assessments a ON a.id = t.assessment_id"
            " WHERE t.enrollment_id = ANY(CAST(:ids AS bigint[])) AND t.late_status IS NOT NULL"
        ),
        {"ids": ids.tolist()},
    )
    return {(int(e), str(a)): status for e, a, status in rows}
