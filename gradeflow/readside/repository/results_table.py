"""The results table's SQL: its columns, its filter, its pages, counts and the XLSX's chunks.

`COLUMNS` is the table's one column list (field, XLSX header, SQL, kind); the use cases in
readside/service/results_table.py decide what to read and shape it. Others read the same attempts
through `FROM` and `where` (the dashboard, the skills file), so a filter means the same everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.anonymity.repository import HIDDEN
from gradeflow.core.statuses import ATTEMPT_STATUSES, AttemptStatus, LateStatus
from gradeflow.courses.repository import groups
from gradeflow.db.conditions import Params, contains
from gradeflow.db.copy import copy_frame, fetch
from gradeflow.deadlines.repository import due_dates
from gradeflow.publishing.repository.visibility import CHANGED

# What the Result column says where there is no score (the document: "No result yet" until finished).
NO_RESULT = "No result yet"
EXCUSED = "Excused"
CANCELLED = "Cancelled"
# What the search looks in: the learner's id, username, names and e-mail.
SEARCHED = ("e.external_id", "e.username", "e.full_name", "e.given_name", "e.family_name", "e.email")


# --- the columns ----------------------------------------------------------------------------------


def _staff_name(user: str) -> str:
    """SQL: a staff user's username from the organization's directory, else their id (never nothing)."""
    where = f"s.organization_id = c.organization_id AND s.user_id = {user}"
    return f"coalesce((SELECT s.username FROM staff s WHERE {where}), {user})"  # noqa: S608 (column names)


_GRADED = "(t.status = 'graded' AND NOT t.excused AND t.earned IS NOT NULL)"
# The document: "For tests pending manual grading, this column becomes Grader" (whoever is allocated).
_GRADER = f"""CASE WHEN t.status = 'pending_grading' THEN
      (SELECT string_agg(g.name, ', ' ORDER BY g.name)
       FROM (SELECT DISTINCT {_staff_name("l.grader")} AS name FROM allocations l WHERE l.attempt_id = t.id) g) END"""  # noqa: S608
# Every grader's comment, attributed: "g1: text | g2: text". Staff only: learners never see marks' comments.
_COMMENTS = f"""(SELECT string_agg({_staff_name("m.grader")} || ': ' || m.comment, ' | ' ORDER BY m.id)
      FROM marks m WHERE m.attempt_id = t.id AND m.comment IS NOT NULL)"""  # noqa: S608
_RESULT_TEXT = f"""CASE WHEN t.excused THEN '{EXCUSED}' WHEN t.status = 'cancelled' THEN '{CANCELLED}'
      WHEN NOT {_GRADED} THEN '{NO_RESULT}' END"""
_PERCENT = "round(t.earned / t.possible * 100, 2)"
_PUBLICATION = f"""CASE WHEN pr.published_at IS NULL THEN 'unpublished' WHEN {CHANGED} THEN 'changed'
      ELSE 'published' END"""

Kind = Literal["text", "list", "number", "percent", "time"]


@dataclass(frozen=True, slots=True)
class Column:
    field: str  # in the API's rows
    header: str  # in the XLSX (a time's header names its zone)
    sql: str
    kind: Kind = "text"
    text: str | None = None  # SQL: what the cell says where `sql` gives no number

    def title(self, time_zone: str) -> str:
        return f"{self.header} ({time_zone})" if self.kind == "time" else self.header


COLUMNS = (
    Column("learner", "Learner ID", "e.external_id"),
    Column("groups", "Groups", "e.groups", "list"),
    Column("cohort", "Cohort", "e.cohort"),
    Column("family_name", "Last name", "e.family_name"),
    Column("given_name", "First name", "e.given_name"),
    Column("full_name", "Full name", "e.full_name"),
    Column("username", "Username", "e.username"),
    Column("assessment", "Assessment ID", "a.external_id"),
    Column("assessment_title", "Assessment", "a.title"),
    Column("status", "Status", "t.status"),
    Column("result", "Result", f"CASE WHEN {_GRADED} THEN t.earned END", "number", text=_RESULT_TEXT),
    Column("possible", "Possible", "t.possible", "number"),
    Column("percent", "Percent", f"CASE WHEN {_GRADED} AND t.possible > 0 THEN {_PERCENT} END", "percent"),
    Column("grader", "Grader", _GRADER),
    Column("publication", "Published", _PUBLICATION),
    Column("published_at", "Published at", "pr.published_at", "time"),
    Column("submitted_at", "Submitted", "t.submitted_at", "time"),
    Column("updated_at", "Last change", "t.updated_at", "time"),
    # The export's "extra information": the e-mail address and the administration comments.
    Column("email", "E-mail", "e.email"),
    Column("comments", "Comments", _COMMENTS),
)
# The table's Percent cell (graded, not excused, with points possible; rounded as the table shows it).
PERCENT = next(c.sql for c in COLUMNS if c.field == "percent")


# --- the filter -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """The results filter with what it names resolved to ids (see readside/service/results_table.py)."""

    status: Sequence[str] | None
    assessment_id: int | None
    group: str | None
    cohort: str | None
    search: str | None
    since: datetime | None
    until: datetime | None
    scope: list[str] | None  # a grader's names: only the attempts allocated to them
    session_id: int | None
    include_archived: bool
    hide_anonymous: bool


_ALLOCATED = "EXISTS (SELECT 1 FROM allocations l WHERE l.attempt_id = t.id AND l.grader = ANY(CAST({g} AS text[])))"


def where(course_id: int, s: Selection, with_status: bool = True) -> tuple[str, list[Any]]:
    """The selection as SQL over attempts `t`, enrollments `e`, assessments `a` ($1, $2, ... in the
    values; $1 is the course). Attempts are read by their own index (an assessment or a session by
    its id). Learners whose every group is archived are left out unless asked."""
    arg = Params(course_id)
    conditions = ["a.course_id = $1"]
    if s.status and with_status:
        conditions.append(f"t.status = ANY(CAST({arg(list(s.status))} AS text[]))")
    if s.assessment_id is not None:
        conditions.append(f"t.assessment_id = {arg(s.assessment_id)}")
    if s.group is not None:
        conditions.append(f"CAST({arg(s.group)} AS text) = ANY(e.groups)")
    if s.cohort is not None:
        conditions.append(f"e.cohort = {arg(s.cohort)}")
    if s.search is not None:
        conditions.append(contains(SEARCHED, s.search, arg))
    if s.since is not None:
        conditions.append(f"t.updated_at >= {arg(s.since)}")
    if s.until is not None:
        conditions.append(f"t.updated_at < {arg(s.until)}")
    if s.scope is not None:
        conditions.append(_ALLOCATED.format(g=arg(s.scope)))
    if s.session_id is not None:
        conditions.append(f"t.session_id = {arg(s.session_id)}")
    if not s.include_archived:
        conditions.append(groups.not_archived("$1"))
    if s.hide_anonymous:
        conditions.append(f"NOT {HIDDEN}")
    return " AND ".join(conditions), arg.values


FROM = """
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id JOIN assessments a ON a.id = t.assessment_id
    JOIN courses c ON c.id = a.course_id
    LEFT JOIN published_results pr ON pr.enrollment_id = t.enrollment_id AND pr.assessment_id = t.assessment_id
"""
# The first condition is implied by the second; spelt out, it bounds the index scan of one assessment.
_AFTER = (
    "t.enrollment_id >= CAST({e} AS bigint)"
    " AND (t.enrollment_id, t.assessment_id) > (CAST({e} AS bigint), CAST({a} AS bigint))"
)


def _select(value: Callable[[Column, str], str]) -> str:
    """The columns (and each one's text where it has no number) as `value(column, sql)` renders them."""
    parts = []
    for c in COLUMNS:
        parts.append(value(c, c.sql))
        if c.text is not None:
            parts.append(c.text)
    return ", ".join(parts)


# --- the API's pages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One row of the table as stored (times in UTC; a cell without a number holds its text)."""

    learner: str
    groups: list[str]
    cohort: str | None
    family_name: str | None
    given_name: str | None
    full_name: str | None
    username: str | None
    assessment: str
    assessment_title: str
    status: AttemptStatus
    result: Decimal | str | None
    possible: Decimal | None
    percent: Decimal | None
    grader: str | None
    publication: str
    published_at: datetime | None
    submitted_at: datetime | None
    updated_at: datetime
    email: str | None
    comments: str | None
    # The learner's own due date and attempts, and the late policy's figures: the API's rows only.
    due_at: datetime | None
    extra_attempts: int | None
    allowed_attempts: int
    attempt_number: int | None
    entered: Decimal | None
    points_deducted: Decimal | None
    late_status: LateStatus | None
    enrollment_id: int
    assessment_id: int


# The API's rows only (not the XLSX's columns): the learner's own due date and attempts (deadlines/).
_OWN = (
    f"{due_dates.due_at()} AS own_due_at, {due_dates.allowed_attempts()} AS own_allowed_attempts,"
    " ov.extra_attempts AS own_extra_attempts, t.attempt_number AS own_attempt_number,"
    # The late policy's figures beside the result (gradeflow/deadlines/service/late_results.py).
    " t.entered AS own_entered, t.points_deducted AS own_points_deducted, t.late_status AS own_late_status"
)


async def page_rows(
    session: AsyncSession, course_id: int, s: Selection, after: tuple[int, int], limit: int
) -> list[ResultRecord]:
    """Up to `limit` rows after (enrollment, assessment) `after`, in that order."""
    condition, args = where(course_id, s)
    args += [after[0], after[1], limit]
    n = len(args)
    sql = f"""
        SELECT {_select(lambda c, sql: sql)}, t.enrollment_id, t.assessment_id, {_OWN}
        {FROM} {due_dates.overrides_join("t.assessment_id", "t.enrollment_id")}
        WHERE {condition} AND {_AFTER.format(e=f"${n - 2}", a=f"${n - 1}")}
        ORDER BY t.enrollment_id, t.assessment_id LIMIT ${n}
    """
    return [_record(r) for r in await fetch(session, sql, args)]


def _record(record: Any) -> ResultRecord:
    values = iter(record.values())
    cells: dict[str, Any] = {}
    for c in COLUMNS:
        value = next(values)
        if c.text is not None:
            text = next(values)
            value = text if value is None else value
        elif c.kind == "list":
            value = list(value or [])
        cells[c.field] = value
    return ResultRecord(
        **cells,
        due_at=record["own_due_at"],
        extra_attempts=record["own_extra_attempts"],
        allowed_attempts=record["own_allowed_attempts"],
        attempt_number=record["own_attempt_number"],
        entered=record["own_entered"],
        points_deducted=record["own_points_deducted"],
        late_status=record["own_late_status"],
        enrollment_id=record["enrollment_id"],
        assessment_id=record["assessment_id"],
    )


async def status_counts(session: AsyncSession, course_id: int, s: Selection) -> dict[str, int]:
    """Attempts per status under every filter but the status one (every status, 0 where none)."""
    condition, args = where(course_id, s, with_status=False)
    sql = f"SELECT t.status, count(*) AS n {FROM} WHERE {condition} GROUP BY t.status"
    found = {r["status"]: int(r["n"]) for r in await fetch(session, sql, args)}
    return {status: found.get(status, 0) for status in ATTEMPT_STATUSES}


# --- the results XLSX -----------------------------------------------------------------------------


async def total(session: AsyncSession, course_id: int, s: Selection) -> int:
    condition, args = where(course_id, s)
    return int((await fetch(session, f"SELECT count(*) AS n {FROM} WHERE {condition}", args))[0]["n"])


def _cell(zone_sql: str) -> Callable[[Column, str], str]:
    def value(c: Column, sql: str) -> str:
        """A column as the XLSX's frame holds it: numbers as floats, times as whole seconds since 1970
        of the wall clock in the zone (Excel date-times have no zone: the header names it)."""
        if c.kind == "list":
            return f"array_to_string({sql}, ', ')"
        if c.kind in ("number", "percent"):
            return f"CAST({sql} AS float8)"
        if c.kind == "time":
            return f"floor(extract(epoch FROM ({sql}) AT TIME ZONE {zone_sql}))"
        return sql

    return value


def _schema(time_zone: str) -> dict[str, type[pl.DataType]]:
    schema: dict[str, type[pl.DataType]] = {}
    for c in COLUMNS:
        schema[c.title(time_zone)] = {"text": pl.String, "list": pl.String, "time": pl.Int64}.get(c.kind, pl.Float64)
        if c.text is not None:
            schema[f"{c.title(time_zone)} text"] = pl.String
    return schema | {"enrollment": pl.Int64, "assessment": pl.Int64}


async def frames(
    session: AsyncSession, course_id: int, s: Selection, chunk: int, time_zone: str
) -> AsyncIterator[pl.DataFrame]:
    """The whole table in frames of `chunk` rows, one COPY a frame: each column under its XLSX header
    (numbers as floats, times as seconds of the wall clock in `time_zone`), each "... text" column
    beside a column that has one, then the row's enrollment and assessment ids."""
    condition, args = where(course_id, s)
    n = len(args)
    sql = f"""
        SELECT {_select(_cell(f"CAST(${n + 1} AS text)"))}, t.enrollment_id, t.assessment_id
        {FROM}
        WHERE {condition} AND {_AFTER.format(e=f"${n + 2}", a=f"${n + 3}")}
        ORDER BY t.enrollment_id, t.assessment_id LIMIT ${n + 4}
    """
    schema = _schema(time_zone)
    after = (0, 0)
    while True:
        frame = await copy_frame(session, sql, [*args, time_zone, *after, chunk], schema)
        if not frame.height:
            return
        after = (int(frame["enrollment"][-1]), int(frame["assessment"][-1]))
        yield frame
