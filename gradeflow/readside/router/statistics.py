"""Statistics for LMS screens: the course grade's or one assessment's distribution, with its items."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gradeflow.anonymity import service as anonymity
from gradeflow.core.commands import ExternalId
from gradeflow.core.errors import Forbidden
from gradeflow.http.deps import GradeRead, PrincipalDep, SessionDep
from gradeflow.readside import charts
from gradeflow.readside.router.common import CHARTS, Assessment, ChartFormat, IncludeArchived, Text, chart
from gradeflow.readside.schemas.statistics import StatisticsOut
from gradeflow.readside.service import statistics

router = APIRouter(prefix="/v1/courses/{course}", tags=["results"])


@dataclass
class StatisticsScope:
    """Whose results: everyone (course team excluded), or a cohort or group, or a course session's
    (learners whose every group is archived only when include_archived); one assessment or the course
    grade; the histogram's number of bins over 0-100 %."""

    assessment: Assessment = None
    cohort: Text = None
    group: Text = None
    bins: Annotated[int, Query(ge=1, le=100)] = 10
    session: Annotated[
        ExternalId | None,
        Query(description="A course session: an assessment's results in it, or its learners' course grades."),
    ] = None
    include_archived: IncludeArchived = False

    def scope(self) -> statistics.Scope:
        return statistics.Scope(**vars(self))


async def _statistics(
    session: SessionDep, principal: PrincipalDep, ref: GradeRead, scope: StatisticsScope
) -> statistics.Statistics:
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
    if hidden and stats.assessments is not None:
        stats = replace(stats, assessments=[a for a in stats.assessments if a.assessment not in hidden])
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
    return StatisticsOut.model_validate(await _statistics(session, principal, ref, scope), from_attributes=True)


@router.get("/statistics/histogram.{fmt}", response_class=Response, responses=CHARTS)
async def statistics_histogram(
    session: SessionDep,
    principal: PrincipalDep,
    ref: GradeRead,
    scope: Annotated[StatisticsScope, Depends()],
    fmt: ChartFormat,
) -> Response:
    """The distribution of the same statistics as a histogram chart (SVG or PNG)."""
    stats = await _statistics(session, principal, ref, scope)
    title = f"{stats.title or stats.of}: {stats.count} results"
    histogram = stats.histogram
    data = await asyncio.to_thread(charts.histogram_chart, title, histogram.edges, histogram.counts, fmt)
    return chart(data, fmt)
