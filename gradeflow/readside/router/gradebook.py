"""The gradebook for LMS screens: one row per learner with each assessment's score, the category averages
and the course grade; as a page, or the same view as a CSV file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from gradeflow.anonymity import service as anonymity
from gradeflow.core import csv_cells
from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import Cursor, GradeRead, Limit, PrincipalDep, SessionDep, SessionFactoryDep
from gradeflow.http.streaming import primed
from gradeflow.readside.router.common import Assessment, IncludeArchived, Search, Text
from gradeflow.readside.schemas.gradebook import GradebookPage
from gradeflow.readside.service import gradebook

router = APIRouter(prefix="/v1/courses/{course}", tags=["results"])

Percent = Annotated[float | None, Query(ge=0, le=100)]


@dataclass
class GradebookFilters:
    """What the gradebook shows: percent or absolute scores; one category's columns; learners whose
    score on one assessment, or whose course grade, is in a range (percent); by enrollment track,
    cohort, group or enrollment status; course team members only when asked; a case-insensitive search
    in username, e-mail and name; sorted by name, course grade or an assessment (`-` for descending).
    Only a course session's learners when asked; learners whose every group is archived only when
    include_archived."""

    view: Annotated[Literal["percent", "absolute"], Query()] = "percent"
    category: Text = None
    assessment: Assessment = None
    score_min: Percent = None
    score_max: Percent = None
    grade_min: Percent = None
    grade_max: Percent = None
    track: Text = None
    cohort: Text = None
    group: Text = None
    status: Annotated[Literal["enrolled", "unenrolled"] | None, Query()] = None
    include_course_team: bool = False
    search: Search = None
    session: Annotated[ExternalId | None, Query(description="A course session: its learners only.")] = None
    include_archived: IncludeArchived = False
    sort: Annotated[str, Query(max_length=300, pattern=r"^-?(name|grade|assessment:.+)$")] = "name"

    def query(self, hide_anonymous: bool) -> gradebook.GradebookQuery:
        return gradebook.GradebookQuery(**vars(self), hide_anonymous=hide_anonymous)


@router.get("/gradebook", response_model=GradebookPage)
async def get_gradebook(
    session: SessionDep,
    principal: PrincipalDep,
    ref: GradeRead,
    filters: Annotated[GradebookFilters, Depends()],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """The gradebook: one row per learner with each assessment's score (dropped ones marked), each
    category's average and the course grade (current and final, letter, passed), from the stored grades.
    A caller who also marks (grader or moderator, not planner) gets no anonymous assessment's column, and
    no average for its category, while its anonymity holds."""
    query = filters.query(anonymity.concealed(principal, ref))
    course, page = await gradebook.page(session, ref, query, limit, cursor)
    shown = gradebook.columns(course, query)
    body = {
        "items": page.items,
        "next_cursor": page.next_cursor,
        "columns": [
            {"assessment": a.external_id, "title": a.title, "category": a.category, "points_possible": a.points}
            for a in shown
        ],
    }
    # Written straight to JSON: validating and dumping a page's cells through the models costs more than
    # reading them (the shape is the documented GradebookPage; the tests hold it to it).
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/gradebook.csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def export_gradebook(
    sessions: SessionFactoryDep,
    principal: PrincipalDep,
    ref: GradeRead,
    filters: Annotated[GradebookFilters, Depends()],
) -> StreamingResponse:
    """The same view as a CSV file, streamed (formula-like cells neutralised)."""
    query = filters.query(anonymity.concealed(principal, ref))
    rows = await primed(csv_cells.stream(gradebook.csv_rows(sessions, ref, query)))
    return StreamingResponse(
        rows, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="gradebook.csv"'}
    )
