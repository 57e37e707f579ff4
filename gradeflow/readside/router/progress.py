"""A learner's progress for LMS screens: scores, category averages, the course grade and what each cutoff
still needs; as data or as a chart."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import PrincipalDep, SessionDep
from gradeflow.readside import charts
from gradeflow.readside.router.common import CHARTS, ChartFormat, chart
from gradeflow.readside.schemas.progress import ProgressOut
from gradeflow.readside.service import progress

router = APIRouter(prefix="/v1/courses/{course}", tags=["results"])


@router.get("/learners/{learner}/progress")
async def learner_progress(
    session: SessionDep, principal: PrincipalDep, course: ExternalId, learner: ExternalId
) -> ProgressOut:
    """A learner's progress: every assessment's score, the category averages with the dropped
    assessments marked, the total, the cutoffs and the pass mark, and for each cutoff not reached yet
    the share of the remaining points that would reach it. Staff with grade access see the current
    scores; the learner, with their own user token, sees only what has been published to them."""
    who = await progress.viewer(session, principal, course, learner)
    return ProgressOut.model_validate(await progress.progress(session, who), from_attributes=True)


@router.get("/learners/{learner}/progress.{fmt}", response_class=Response, responses=CHARTS)
async def learner_progress_chart(
    session: SessionDep, principal: PrincipalDep, course: ExternalId, learner: ExternalId, fmt: ChartFormat
) -> Response:
    """The progress as a chart (SVG or PNG): bars per assessment grouped by category, an average bar per
    category, a total bar, and lines at the cutoffs labelled with their letters; dropped ones hatched."""
    who = await progress.viewer(session, principal, course, learner)
    data = await progress.progress(session, who)
    return chart(await asyncio.to_thread(charts.progress_chart, data, fmt), fmt)
