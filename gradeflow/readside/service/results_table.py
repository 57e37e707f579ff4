"""The results table: one row per attempt (learner x assessment) with its status, its result, the grader
while it waits for grading, and its publication state, under a planner's filters.

`COLUMNS` (readside/repository/results_table.py) is the table's one column list: the API's rows have
its fields in its order, and the results XLSX has its columns in the same order under its headers. The
last ones are what the test platform's Excel export adds to the visible columns ("the candidate's email
address and the administration comments"); the learner's id, the LMS's own, is its "external
identifier".

One filter serves the API's pages, its counts per status and the results XLSX (COPY in chunks); what it
names (an assessment, a session) is resolved once, by `resolve`. Rows come in learner order, then
assessment; pages and chunks are keyed by (enrollment, assessment), which the attempts' indexes give in
order with or without an assessment filter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.core.errors import NotFound
from gradeflow.core.paging import BIGINT, Page, encode_cursor, not_ours, pair_after
from gradeflow.core.time_zones import UTC, zone
from gradeflow.courses.repository import assessments as course_assessments
from gradeflow.courses.service import sessions
from gradeflow.readside.repository import results_table as repository
from gradeflow.readside.repository.results_table import COLUMNS, SEARCHED, Column, Kind, ResultRecord, Selection

__all__ = ["COLUMNS", "SEARCHED", "Column", "ResultRecord", "ResultsFilter", "Selection"]


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


async def resolve(session: AsyncSession, course_id: int, f: ResultsFilter) -> Selection:
    """The filter with its assessment and session resolved to their ids (404 naming an unknown one), so
    attempts are read by their own index."""
    assessment_id = None
    if f.assessment is not None:
        assessment_id = await course_assessments.assessment_id(session, course_id, f.assessment)
        if assessment_id is None:
            raise NotFound(f"Assessment {f.assessment!r} not found in this course.")
    session_id = None if f.session is None else await sessions.session_id(session, course_id, f.session)
    return selection(f, assessment_id, session_id)


def selection(f: ResultsFilter, assessment_id: int | None, session_id: int | None) -> Selection:
    """The filter with its assessment and session as resolved by the caller."""
    return Selection(
        status=f.status,
        assessment_id=assessment_id,
        group=f.group,
        cohort=f.cohort,
        search=f.search,
        since=f.since,
        until=f.until,
        scope=f.scope,
        session_id=session_id,
        include_archived=f.include_archived,
        hide_anonymous=f.hide_anonymous,
    )


# --- the columns ----------------------------------------------------------------------------------

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


# --- the API's pages ------------------------------------------------------------------------------

_TIMES = (*(c.field for c in COLUMNS if c.kind == "time"), "due_at")


async def results(
    session: AsyncSession, ref: CourseRef, f: ResultsFilter, limit: int, cursor: str | None, time_zone: str = UTC
) -> tuple[Page[ResultRecord], dict[str, int]]:
    """A page of the results table (times in `time_zone`) and the attempts per status under every filter
    but the status one (the dashboard's tabs); the filter resolved once for both."""
    s = await resolve(session, ref.id, f)
    return await page(session, ref, s, limit, cursor, time_zone), await repository.status_counts(session, ref.id, s)


async def page(
    session: AsyncSession, ref: CourseRef, s: Selection, limit: int, cursor: str | None, time_zone: str = UTC
) -> Page[ResultRecord]:
    """A page of the results table, times in `time_zone`."""
    rows = await repository.page_rows(session, ref.id, s, _cursor(cursor), limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    tz = zone(time_zone)
    items = [_row(r, tz) for r in rows]
    next_cursor = encode_cursor([rows[-1].enrollment_id, rows[-1].assessment_id]) if more else None
    return Page(items, next_cursor)


def _row(r: ResultRecord, tz: tzinfo) -> ResultRecord:
    local: dict[str, Any] = {f: None if (at := getattr(r, f)) is None else at.astimezone(tz) for f in _TIMES}
    return replace(r, **local)


def _cursor(cursor: str | None) -> tuple[int, int]:
    after = pair_after(cursor)
    if after is None:
        return 0, 0
    if not (type(after[0]) is int and after[0] in BIGINT):
        raise not_ours()
    return after


# --- the results XLSX -----------------------------------------------------------------------------


async def total(session: AsyncSession, course_id: int, s: Selection) -> int:
    return await repository.total(session, course_id, s)


async def frames(
    session: AsyncSession, course_id: int, s: Selection, chunk: int, time_zone: str = UTC
) -> AsyncIterator[pl.DataFrame]:
    """The whole table in frames of `chunk` rows with the XLSX's columns (numbers as numbers, times as
    date-times of the wall clock in `time_zone`) and each "... text" column beside a column that has
    one."""
    times = [c.title(time_zone) for c in COLUMNS if c.kind == "time"]
    async for frame in repository.frames(session, course_id, s, chunk, time_zone):
        yield frame.drop("enrollment", "assessment").with_columns(
            pl.from_epoch(pl.col(c), time_unit="s") for c in times
        )
