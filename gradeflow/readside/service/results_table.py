"""The results table: one row per attempt (learner x assessment) with its status, its result, the grader
while it waits for grading, and its publication state, under a planner's filters.

`COLUMNS` is the table's one column list: the API's rows have its fields in its order, and the results
XLSX has its columns in the same order under its headers. The last ones are what the test platform's
Excel export adds to the visible columns ("the candidate's email address and the administration
comments"); the learner's id, the LMS's own, is its "external identifier".

One filter serves the API's pages, its counts per status and the results XLSX (COPY in chunks). Rows
come in learner order, then assessment; pages and chunks are keyed by (enrollment, assessment), which
the attempts' indexes give in order with or without an assessment filter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import CourseRef
from gradeflow.core.errors import NotFound
from gradeflow.core.paging import BIGINT, Page, encode_cursor, not_ours, pair_after
from gradeflow.core.time_zones import UTC, zone
from gradeflow.courses.service import groups, sessions
from gradeflow.db.conditions import Params, contains
from gradeflow.db.copy import copy_frame, fetch
from gradeflow.deadlines.service import due_dates
from gradeflow.marking.service import anonymity
from gradeflow.publishing.service import visibility as published

# What the Result column says where there is no score (the document: "No result yet" until finished).
NO_RESULT = "No result yet"
EXCUSED = "Excused"
CANCELLED = "Cancelled"
STATUSES = ("to_be_taken", "in_progress", "submitted", "pending_grading", "graded", "cancelled")
# What the search looks in: the learner's id, username, names and e-mail.
SEARCHED = ("e.external_id", "e.username", "e.full_name", "e.given_name", "e.family_name", "e.email")


@dataclass(frozen=True)
class ResultsFilter:
    status: Sequence[str] | None = None
    assessment: str | None = None
    group: str | None = None
    cohort: str | None = None
    search: str | None = None  # case-insensitive, in learner id, username, names and e-mail
    since: datetime | None = None  # attempts last changed at or after
    until: datetime | None = None  # ... and before
    scope: list[str] | None = None  # a grader's names: only the attempts allocated to them
    session: str | None = None  # a course session's external id: only the attempts in it
    include_archived: bool = False  # False: hide learners whose every group is archived
    # A caller anonymous assessments hide learners from (anonymity.concealed): their attempts are left out
    # (a grader finds that work, by candidate label, in the marking queue, attempts and scores).
    hide_anonymous: bool = False


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
_PUBLICATION = f"""CASE WHEN pr.published_at IS NULL THEN 'unpublished' WHEN {published.CHANGED} THEN 'changed'
      ELSE 'published' END"""

Kind = Literal["text", "list", "number", "percent", "time"]


@dataclass(frozen=True)
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
# Excel number formats by kind (a number keeps Excel's General).
NUMBER_FORMATS: dict[Kind, str] = {"percent": "0.00", "time": "yyyy-mm-dd hh:mm"}


def headers(time_zone: str = UTC) -> list[str]:
    return [c.title(time_zone) for c in COLUMNS]


def number_formats(time_zone: str = UTC) -> dict[str, str]:
    """The XLSX's number format by header, where it is not General."""
    return {c.title(time_zone): NUMBER_FORMATS[c.kind] for c in COLUMNS if c.kind in NUMBER_FORMATS}


def text_columns(time_zone: str = UTC) -> dict[str, str]:
    """Header -> the frame's column saying what an empty cell of it says (not a column of the sheet)."""
    return {c.title(time_zone): f"{c.title(time_zone)} text" for c in COLUMNS if c.text is not None}


# --- the filter -----------------------------------------------------------------------------------

_ALLOCATED = "EXISTS (SELECT 1 FROM allocations l WHERE l.attempt_id = t.id AND l.grader = ANY(CAST({g} AS text[])))"


async def _where(
    session: AsyncSession, course_id: int, f: ResultsFilter, with_status: bool = True
) -> tuple[str, list[Any]]:
    """The filter as SQL over attempts `t`, enrollments `e`, assessments `a` ($1, $2, ... in `args`).
    An assessment or a session is resolved to its id first (404 naming an unknown one), so attempts
    are read by their own index. Learners whose every group is archived are left out unless asked."""
    arg = Params(course_id)
    conditions = ["a.course_id = $1"]
    if f.status and with_status:
        conditions.append(f"t.status = ANY(CAST({arg(list(f.status))} AS text[]))")
    if f.assessment is not None:
        conditions.append(f"t.assessment_id = {arg(await _assessment_id(session, course_id, f.assessment))}")
    if f.group is not None:
        conditions.append(f"CAST({arg(f.group)} AS text) = ANY(e.groups)")
    if f.cohort is not None:
        conditions.append(f"e.cohort = {arg(f.cohort)}")
    if f.search is not None:
        conditions.append(contains(SEARCHED, f.search, arg))
    if f.since is not None:
        conditions.append(f"t.updated_at >= {arg(f.since)}")
    if f.until is not None:
        conditions.append(f"t.updated_at < {arg(f.until)}")
    if f.scope is not None:
        conditions.append(_ALLOCATED.format(g=arg(f.scope)))
    if f.session is not None:
        conditions.append(f"t.session_id = {arg(await sessions.session_id(session, course_id, f.session))}")
    if not f.include_archived:
        conditions.append(groups.not_archived("$1"))
    if f.hide_anonymous:
        conditions.append(f"NOT {anonymity.HIDDEN}")
    return " AND ".join(conditions), arg.values


_FROM = """
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id JOIN assessments a ON a.id = t.assessment_id
    JOIN courses c ON c.id = a.course_id
    LEFT JOIN published_results pr ON pr.enrollment_id = t.enrollment_id AND pr.assessment_id = t.assessment_id
"""
# The first condition is implied by the second; spelt out, it bounds the index scan of one assessment.
_AFTER = (
    "t.enrollment_id >= CAST({e} AS bigint)"
    " AND (t.enrollment_id, t.assessment_id) > (CAST({e} AS bigint), CAST({a} AS bigint))"
)


def _select(value: Any) -> str:
    """The columns (and each one's text where it has no number) as `value(column, sql)` renders them."""
    parts = []
    for c in COLUMNS:
        parts.append(value(c, c.sql))
        if c.text is not None:
            parts.append(c.text)
    return ", ".join(parts)


# --- the API's pages ------------------------------------------------------------------------------


async def page(
    session: AsyncSession, ref: CourseRef, f: ResultsFilter, limit: int, cursor: str | None, time_zone: str = UTC
) -> Page[dict[str, Any]]:
    """A page of the results table, times in `time_zone`."""
    where, args = await _where(session, ref.id, f)
    after = _cursor(cursor)
    args += [after[0], after[1], limit + 1]
    n = len(args)
    sql = f"""
        SELECT {_select(lambda c, sql: sql)}, t.enrollment_id, t.assessment_id, {_OWN}
        {_FROM} {due_dates.overrides_join("t.assessment_id", "t.enrollment_id")}
        WHERE {where} AND {_AFTER.format(e=f"${n - 2}", a=f"${n - 1}")}
        ORDER BY t.enrollment_id, t.assessment_id LIMIT ${n}
    """
    rows = await fetch(session, sql, args)
    more = len(rows) > limit
    rows = rows[:limit]
    tz = zone(time_zone)
    items = [_row(r, tz) | _own(r, tz) for r in rows]
    next_cursor = encode_cursor([rows[-1]["enrollment_id"], rows[-1]["assessment_id"]]) if more else None
    return Page(items, next_cursor)


# The API's rows only (not the XLSX's columns): the learner's own due date and attempts (deadlines/).
_OWN = (
    f"{due_dates.due_at()} AS own_due_at, {due_dates.allowed_attempts()} AS own_allowed_attempts,"
    " ov.extra_attempts AS own_extra_attempts, t.attempt_number AS own_attempt_number,"
    # The late policy's figures beside the result (gradeflow/deadlines/service/late_results.py).
    " t.entered AS own_entered, t.points_deducted AS own_points_deducted, t.late_status AS own_late_status"
)


def _own(record: Any, tz: Any) -> dict[str, Any]:
    due = record["own_due_at"]
    return {
        "due_at": None if due is None else due.astimezone(tz),
        "extra_attempts": record["own_extra_attempts"],
        "allowed_attempts": record["own_allowed_attempts"],
        "attempt_number": record["own_attempt_number"],
        "entered": record["own_entered"],
        "points_deducted": record["own_points_deducted"],
        "late_status": record["own_late_status"],
    }


def _row(record: Any, tz: Any) -> dict[str, Any]:
    values = iter(record.values())
    row: dict[str, Any] = {}
    for c in COLUMNS:
        value = next(values)
        if c.text is not None:
            text = next(values)
            value = text if value is None else value
        if c.kind == "time" and value is not None:
            value = value.astimezone(tz)
        elif c.kind == "list":
            value = list(value or [])
        row[c.field] = value
    return row


def _cursor(cursor: str | None) -> tuple[int, int]:
    after = pair_after(cursor)
    if after is None:
        return 0, 0
    if not (type(after[0]) is int and after[0] in BIGINT):
        raise not_ours()
    return after


async def counts(session: AsyncSession, ref: CourseRef, f: ResultsFilter) -> dict[str, int]:
    """Attempts per status under every filter but the status one (the dashboard's tabs)."""
    where, args = await _where(session, ref.id, f, with_status=False)
    sql = f"SELECT t.status, count(*) AS n {_FROM} WHERE {where} GROUP BY t.status"
    found = {r["status"]: int(r["n"]) for r in await fetch(session, sql, args)}
    return {s: found.get(s, 0) for s in STATUSES}


async def _assessment_id(session: AsyncSession, course_id: int, external_id: str) -> int:
    sql = "SELECT id FROM assessments WHERE course_id = $1 AND external_id = $2"
    found = await fetch(session, sql, [course_id, external_id])
    if not found:
        raise NotFound(f"Assessment {external_id!r} not found in this course.")
    return int(found[0]["id"])


# --- the results XLSX -----------------------------------------------------------------------------


async def total(session: AsyncSession, course_id: int, f: ResultsFilter) -> int:
    where, args = await _where(session, course_id, f)
    return int((await fetch(session, f"SELECT count(*) AS n {_FROM} WHERE {where}", args))[0]["n"])


def _cell(zone_sql: str) -> Any:
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


def _schema(time_zone: str) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    for c in COLUMNS:
        schema[c.title(time_zone)] = {"text": pl.String, "list": pl.String, "time": pl.Int64}.get(c.kind, pl.Float64)
        if c.text is not None:
            schema[f"{c.title(time_zone)} text"] = pl.String
    return schema | {"enrollment": pl.Int64, "assessment": pl.Int64}


async def frames(
    session: AsyncSession, course_id: int, f: ResultsFilter, chunk: int, time_zone: str = UTC
) -> AsyncIterator[pl.DataFrame]:
    """The whole table in frames of `chunk` rows with the XLSX's columns (numbers as numbers, times as
    date-times of the wall clock in `time_zone`) and each "... text" column beside a column that has
    one; one COPY a frame."""
    where, args = await _where(session, course_id, f)
    n = len(args)
    sql = f"""
        SELECT {_select(_cell(f"CAST(${n + 1} AS text)"))}, t.enrollment_id, t.assessment_id
        {_FROM}
        WHERE {where} AND {_AFTER.format(e=f"${n + 2}", a=f"${n + 3}")}
        ORDER BY t.enrollment_id, t.assessment_id LIMIT ${n + 4}
    """
    schema = _schema(time_zone)
    times = [c.title(time_zone) for c in COLUMNS if c.kind == "time"]
    after = (0, 0)
    while True:
        frame = await copy_frame(session, sql, [*args, time_zone, *after, chunk], schema)
        if not frame.height:
            return
        after = (int(frame["enrollment"][-1]), int(frame["assessment"][-1]))
        yield frame.drop("enrollment", "assessment").with_columns(
            pl.from_epoch(pl.col(c), time_unit="s") for c in times
        )
