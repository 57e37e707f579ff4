"""The results table: one row per attempt (learner x assessment) with its status, result, the grader
while it waits for grading, and its publication state, under a planner's filters.

One filter serves the API's pages, its counts per status and the results XLSX (COPY in chunks). Rows
come in learner order, then assessment; pages and chunks are keyed by (enrollment, assessment), which
the attempts' indexes give in order with or without an assessment filter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.conditions import Params, contains
from shared.db.copy import copy_frame, fetch
from shared.errors import NotFound
from shared.services import published
from shared.services.access import CourseRef
from shared.services.paging import BIGINT, Page, encode_cursor, not_ours, pair_after

NO_RESULT = "No result yet"
EXCUSED = "Excused"
STATUSES = ("to_be_taken", "in_progress", "submitted", "pending_grading", "graded", "cancelled")


@dataclass(frozen=True)
class ResultsFilter:
    status: Sequence[str] | None = None
    assessment: str | None = None
    group: str | None = None
    cohort: str | None = None
    search: str | None = None  # case-insensitive, in learner id, username, name and e-mail
    since: datetime | None = None  # attempts last changed at or after
    until: datetime | None = None  # ... and before
    scope: list[str] | None = None  # a grader's names: only the attempts allocated to them


_ALLOCATED = "EXISTS (SELECT 1 FROM allocations l WHERE l.attempt_id = t.id AND l.grader = ANY(CAST({g} AS text[])))"


async def _where(
    session: AsyncSession, course_id: int, f: ResultsFilter, with_status: bool = True
) -> tuple[str, list[Any]]:
    """The filter as SQL over attempts `t`, enrollments `e`, assessments `a` ($1, $2, ... in `args`).
    An assessment is resolved to its id first, so its attempts are read by their own index."""
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
        conditions.append(contains(("e.external_id", "e.username", "e.full_name", "e.email"), f.search, arg))
    if f.since is not None:
        conditions.append(f"t.updated_at >= {arg(f.since)}")
    if f.until is not None:
        conditions.append(f"t.updated_at < {arg(f.until)}")
    if f.scope is not None:
        conditions.append(_ALLOCATED.format(g=arg(f.scope)))
    return " AND ".join(conditions), arg.values


_FROM = """
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id JOIN assessments a ON a.id = t.assessment_id
    LEFT JOIN published_results pr ON pr.enrollment_id = t.enrollment_id AND pr.assessment_id = t.assessment_id
"""
_GRADER = """CASE WHEN t.status = 'pending_grading' THEN
      (SELECT string_agg(DISTINCT l.grader, ', ') FROM allocations l WHERE l.attempt_id = t.id) END"""
_COMMENTS = """(SELECT string_agg(m.comment, ' | ' ORDER BY m.id) FROM marks m
      WHERE m.attempt_id = t.id AND m.comment IS NOT NULL)"""
_CHANGED = published.CHANGED
# The first condition is implied by the second; spelt out, it bounds the index scan of one assessment.
_AFTER = (
    "t.enrollment_id >= CAST({e} AS bigint)"
    " AND (t.enrollment_id, t.assessment_id) > (CAST({e} AS bigint), CAST({a} AS bigint))"
)


async def page(
    session: AsyncSession, ref: CourseRef, f: ResultsFilter, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """A page of the results table."""
    where, args = await _where(session, ref.id, f)
    after = _cursor(cursor)
    args += [after[0], after[1], limit + 1]
    n = len(args)
    sql = f"""
        SELECT t.enrollment_id, t.assessment_id, e.external_id AS learner, e.username, e.full_name, e.email,
               e.cohort, e.groups, a.external_id AS assessment, a.title AS assessment_title, t.status,
               t.earned, t.possible, t.excused, t.submitted_at, t.updated_at, {_GRADER} AS grader, pr.published_at,
               {_CHANGED} AS changed, {_COMMENTS} AS comments
        {_FROM}
        WHERE {where} AND {_AFTER.format(e=f"${n - 2}", a=f"${n - 1}")}
        ORDER BY t.enrollment_id, t.assessment_id LIMIT ${n}
    """
    rows = await fetch(session, sql, args)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_row(r) for r in rows]
    next_cursor = encode_cursor([rows[-1]["enrollment_id"], rows[-1]["assessment_id"]]) if more else None
    return Page(items, next_cursor)


def _row(r: Any) -> dict[str, Any]:
    graded = r["status"] == "graded" and r["earned"] is not None and not r["excused"]
    percent = round(float(r["earned"]) / float(r["possible"]) * 100, 2) if graded and r["possible"] else None
    return {
        "learner": r["learner"],
        "username": r["username"],
        "full_name": r["full_name"],
        "email": r["email"],
        "cohort": r["cohort"],
        "groups": list(r["groups"] or []),
        "assessment": r["assessment"],
        "assessment_title": r["assessment_title"],
        "status": r["status"],
        "earned": r["earned"] if graded else None,
        "possible": r["possible"],
        "percent": percent,
        "excused": r["excused"],
        "result": EXCUSED if r["excused"] else None if graded else NO_RESULT,
        "grader": r["grader"],
        "publication": published.state(r["published_at"], r["changed"]),
        "submitted_at": r["submitted_at"],
        "updated_at": r["updated_at"],
        "comments": r["comments"],
    }


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

HEADER = [
    "Learner ID",
    "Username",
    "Full name",
    "E-mail",
    "Cohort",
    "Groups",
    "Assessment ID",
    "Assessment",
    "Status",
    "Result",
    "Possible",
    "Percent",
    "Grader",
    "Published",
    "Submitted at",
    "Last change",
    "Comments",
]
_SCHEMA: dict[str, Any] = {
    **dict.fromkeys(HEADER[:9], pl.String),
    "Result": pl.Float64,
    "Possible": pl.Float64,
    "Percent": pl.Float64,
    "Grader": pl.String,
    "Published": pl.String,
    "Submitted at": pl.Float64,
    "Last change": pl.Float64,
    "Comments": pl.String,
    "Result text": pl.String,  # what the Result cell says where there is no number (the XLSX writer's)
    "enrollment": pl.Int64,
    "assessment": pl.Int64,
}


async def total(session: AsyncSession, course_id: int, f: ResultsFilter) -> int:
    where, args = await _where(session, course_id, f)
    return int((await fetch(session, f"SELECT count(*) AS n {_FROM} WHERE {where}", args))[0]["n"])


async def frames(session: AsyncSession, course_id: int, f: ResultsFilter, chunk: int) -> AsyncIterator[pl.DataFrame]:
    """The whole table in frames of `chunk` rows with the XLSX's columns (numbers as numbers, times as
    datetimes in UTC, a result only where graded, "Excused" in "Result text" where excused); one COPY a
    frame."""
    where, args = await _where(session, course_id, f)
    n = len(args)
    sql = f"""
        SELECT e.external_id, e.username, e.full_name, e.email, e.cohort, array_to_string(e.groups, ', '),
               a.external_id, a.title, t.status,
               CASE WHEN t.status = 'graded' AND NOT t.excused THEN CAST(t.earned AS float8) END,
               CAST(t.possible AS float8),
               CASE WHEN t.status = 'graded' AND NOT t.excused AND t.possible > 0
                    THEN round(t.earned / t.possible * 100, 2) END,
               {_GRADER},
               CASE WHEN pr.published_at IS NULL THEN 'unpublished' WHEN {_CHANGED} THEN 'changed'
                    ELSE 'published' END,
               extract(epoch FROM t.submitted_at), extract(epoch FROM t.updated_at), {_COMMENTS},
               CASE WHEN t.excused THEN '{EXCUSED}' END, t.enrollment_id, t.assessment_id
        {_FROM}
        WHERE {where} AND {_AFTER.format(e=f"${n + 1}", a=f"${n + 2}")}
        ORDER BY t.enrollment_id, t.assessment_id LIMIT ${n + 3}
    """  # noqa: S608 (constant SQL pieces; values are parameters)
    after = (0, 0)
    while True:
        frame = await copy_frame(session, sql, [*args, *after, chunk], _SCHEMA)
        if not frame.height:
            return
        after = (int(frame["enrollment"][-1]), int(frame["assessment"][-1]))
        yield frame.drop("enrollment", "assessment").with_columns(
            pl.from_epoch((pl.col(c) * 1_000_000).cast(pl.Int64), time_unit="us")
            for c in ("Submitted at", "Last change")
        )
