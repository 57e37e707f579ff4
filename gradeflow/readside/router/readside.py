"""The read side for LMS screens: the results table, the gradebook, learner progress, statistics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from gradeflow.core import csv_cells
from gradeflow.core.commands import AttemptStatus, ExternalId, Moment
from gradeflow.core.errors import Forbidden
from gradeflow.core.time_zones import UTC, TimeZone
from gradeflow.core.validation import CleanStr
from gradeflow.http.deps import (
    Cursor,
    GradeRead,
    Limit,
    PrincipalDep,
    ResultScope,
    ScoreRead,
    SessionDep,
    SessionFactoryDep,
)
from gradeflow.http.streaming import primed
from gradeflow.marking.service import anonymity
from gradeflow.readside import charts
from gradeflow.readside.schemas.readside import GradebookPage, ProgressOut, ResultRow, ResultsPage, StatisticsOut
from gradeflow.readside.service import gradebook, progress, results_table, statistics

router = APIRouter(prefix="/v1/courses/{course}", tags=["results"])

Text = Annotated[CleanStr | None, Query(max_length=255)]


@dataclass
class LearnerFilters:
    """The results table's learner filters (the certificates list takes them too): a group or cohort,
    a search in learner id, username, names and e-mail (case-insensitive), one course session, and
    learners whose every group is archived only when include_archived."""

    group: Text = None
    cohort: Text = None
    search: Annotated[CleanStr | None, Query(min_length=1, max_length=200)] = None
    session: Annotated[ExternalId | None, Query(description="A course session: only the attempts in it.")] = None
    include_archived: Annotated[
        bool, Query(description="Also learners whose every group is archived (hidden by default).")
    ] = False


@dataclass
class ResultFilters(LearnerFilters):
    """Which attempts: statuses, one assessment, the learner filters, and a range [since, until) of the
    attempt's last change. Learners whose every group is archived are left out unless include_archived."""

    status: Annotated[list[AttemptStatus] | None, Query(max_length=6)] = None
    assessment: Annotated[ExternalId | None, Query()] = None
    since: Annotated[Moment | None, Query()] = None
    until: Annotated[Moment | None, Query()] = None


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
    page = await results_table.page(session, ref, f, limit, cursor, time_zone)
    counts = await results_table.counts(session, ref, f)
    return ResultsPage(
        items=[ResultRow.model_validate(r) for r in page.items], next_cursor=page.next_cursor, counts=counts
    )


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
    assessment: Annotated[ExternalId | None, Query()] = None
    score_min: Percent = None
    score_max: Percent = None
    grade_min: Percent = None
    grade_max: Percent = None
    track: Text = None
    cohort: Text = None
    group: Text = None
    status: Annotated[Literal["enrolled", "unenrolled"] | None, Query()] = None
    include_course_team: bool = False
    search: Annotated[CleanStr | None, Query(min_length=1, max_length=200)] = None
    session: Annotated[ExternalId | None, Query(description="A course session: its learners only.")] = None
    include_archived: Annotated[
        bool, Query(description="Also learners whose every group is archived (hidden by default).")
    ] = False
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
    # Written straight to JSON: validating and dumping 2,000 cells through the models cost 35 ms a page,
    # more than reading them (the shape is the documented GradebookPage; the tests hold it to it).
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


_CHARTS: dict[int | str, dict[str, Any]] = {200: {"content": {"image/svg+xml": {}, "image/png": {}}}}
ChartFormat = Literal["svg", "png"]


def _chart(data: bytes, fmt: ChartFormat) -> Response:
    return Response(data, media_type=charts.MEDIA_TYPES[fmt])


@router.get("/learners/{learner}/progress")
async def learner_progress(
    session: SessionDep, principal: PrincipalDep, course: ExternalId, learner: ExternalId
) -> ProgressOut:
    """A learner's progress: every assessment's score, the category averages with the dropped
    assessments marked, the total, the cutoffs and the pass mark, and for each cutoff not reached yet
    the share of the remaining points that would reach it. Staff with grade access see the current
    scores; the learner, with their own user token, sees only what has been published to them."""
    who = await progress.viewer(session, principal, course, learner)
    return ProgressOut.model_validate(await progress.progress(session, who))


@router.get("/learners/{learner}/progress.{fmt}", response_class=Response, responses=_CHARTS)
async def learner_progress_chart(
    session: SessionDep, principal: PrincipalDep, course: ExternalId, learner: ExternalId, fmt: ChartFormat
) -> Response:
    """The progress as a chart (SVG or PNG): bars per assessment grouped by category, an average bar per
    category, a total bar, and lines at the cutoffs labelled with their letters; dropped ones hatched."""
    who = await progress.viewer(session, principal, course, learner)
    data = await progress.progress(session, who)
    return _chart(await asyncio.to_thread(charts.progress_chart, data, fmt), fmt)


@dataclass
class StatisticsScope:
    """Whose results: everyone (course team excluded), or a cohort or group, or a course session's
    (learners whose every group is archived only when include_archived); one assessment or the course
    grade; the histogram's number of bins over 0-100 %."""

    assessment: Annotated[ExternalId | None, Query()] = None
    cohort: Text = None
    group: Text = None
    bins: Annotated[int, Query(ge=1, le=100)] = 10
    session: Annotated[
        ExternalId | None,
        Query(description="A course session: an assessment's results in it, or its learners' course grades."),
    ] = None
    include_archived: Annotated[
        bool, Query(description="Also learners whose every group is archived (hidden by default).")
    ] = False

    def scope(self) -> statistics.Scope:
        return statistics.Scope(**vars(self))


async def _statistics(session: SessionDep, principal: PrincipalDep, ref: GradeRead, scope: StatisticsScope) -> Any:
    """The statistics as the caller may see them: narrowed to a cohort, group or session (a handful of
    learners, maybe one), an anonymous assessment's figures would pair learners with their results, so one
    who also marks it (anonymity.concealed) is refused them (403) and does not get its line in the course's."""
    narrowed = scope.cohort is not None or scope.group is not None or scope.session is not None
    hidden = (
        await anonymity.hidden_assessments(session, ref.id) if narrowed and anonymity.concealed(principal, ref) else ()
    )
    if scope.assessment is not None and scope.assessment in hidden:
        raise Forbidden(
            f"Assessment {scope.assessment!r} is anonymous: its statistics by cohort, group or session are not"
            " shown to those who mark it until its anonymity is lifted."
        )
    stats = await statistics.statistics(session, ref, scope.scope())
    if hidden and "assessments" in stats:
        stats["assessments"] = [a for a in stats["assessments"] if a["assessment"] not in hidden]
    return stats


@router.get("/statistics")
async def course_statistics(
    session: SessionDep, principal: PrincipalDep, ref: GradeRead, scope: Annotated[StatisticsScope, Depends()]
) -> StatisticsOut:
    """Count, mean, median, standard deviation, min, max, quartiles, pass rate, a histogram and the
    letter distribution of the course grade (with each assessment's count and mean) or of one
    assessment's results (with facility and discrimination per item, so weak questions stand out).
    Narrowed to a cohort, group or session, an anonymous assessment's figures are refused (403) to those
    who mark it (grader or moderator, not planner) while its anonymity holds."""
    return StatisticsOut.model_validate(await _statistics(session, principal, ref, scope))


@router.get("/statistics/histogram.{fmt}", response_class=Response, responses=_CHARTS)
async def statistics_histogram(
    session: SessionDep,
    principal: PrincipalDep,
    ref: GradeRead,
    scope: Annotated[StatisticsScope, Depends()],
    fmt: ChartFormat,
) -> Response:
    """The distribution of the same statistics as a histogram chart (SVG or PNG)."""
    stats = await _statistics(session, principal, ref, scope)
    title = f"{stats.get('title') or stats['of']}: {stats['count']} results"
    histogram = stats["histogram"]
    data = await asyncio.to_thread(charts.histogram_chart, title, histogram["edges"], histogram["counts"], fmt)
    return _chart(data, fmt)
