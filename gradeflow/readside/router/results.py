"""The results table for LMS screens: one row per attempt, with the counts per status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gradeflow.anonymity import service as anonymity
from gradeflow.core.time_zones import UTC, TimeZone
from gradeflow.http.deps import Cursor, Limit, PrincipalDep, ResultScope, ScoreRead, SessionDep
from gradeflow.readside.router.common import ResultFilters
from gradeflow.readside.schemas.results import ResultRow, ResultsPage
from gradeflow.readside.service import results_table

router = APIRouter(prefix="/v1/courses/{course}", tags=["results"])


@router.get("/results")
async def list_results(
    session: SessionDep,
    principal: PrincipalDep,
    ref: ScoreRead,
    scope: ResultScope,
    filters: Annotated[ResultFilters, Depends()],
    limit: Limit = 100,
    cursor: Cursor = None,
    time_zone: Annotated[TimeZone, Query()] = UTC,
) -> ResultsPage:
    """The results table: one row per attempt (learner x assessment, in learner order) with its status,
    the score or "No result yet" / "Cancelled" / "Excused", the grader while it waits for grading,
    whether learners see it and the graders' comments, times in `time_zone` with its offset; with the
    counts per status for the dashboard. The results XLSX has the same columns in the same order.
    Graders see only the attempts allocated to them, and none at an anonymous assessment (they mark
    those by candidate label)."""
    hide = anonymity.concealed(principal, ref)
    f = results_table.ResultsFilter(**vars(filters), scope=scope, hide_anonymous=hide)
    page, counts = await results_table.results(session, ref, f, limit, cursor, time_zone)
    return ResultsPage(
        items=[ResultRow.model_validate(r, from_attributes=True) for r in page.items],
        next_cursor=page.next_cursor,
        counts=counts,
    )
