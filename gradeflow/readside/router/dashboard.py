"""The dashboard: aggregated metrics over the results table (completed, in progress, to be taken,
durations, the score distribution), for the whole course or a group, cohort or session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gradeflow.anonymity import service as anonymity
from gradeflow.http.deps import PrincipalDep, ResultScope, ScoreRead, SessionDep
from gradeflow.readside.router.common import (
    Assessment,
    AttemptsInSession,
    IncludeArchived,
    Since,
    Text,
    Until,
)
from gradeflow.readside.schemas.dashboard import DashboardOut
from gradeflow.readside.service import dashboard
from gradeflow.readside.service.results_table import ResultsFilter

router = APIRouter(prefix="/v1/courses/{course}", tags=["results"])


@dataclass
class DashboardFilters:
    """Which attempts, as the results table selects them: one assessment, a group or cohort, a session,
    archived groups' learners or not, and a range [since, until) of the attempt's last change; and the
    breakdown: a row per assessment, group, cohort or session (none: the total alone)."""

    assessment: Assessment = None
    group: Text = None
    cohort: Text = None
    session: AttemptsInSession = None
    include_archived: IncludeArchived = False
    since: Since = None
    until: Until = None
    by: Annotated[dashboard.Breakdown, Query(description="A row per value of this (none: the total alone).")] = "none"

    def results_filter(self, scope: list[str] | None, hide_anonymous: bool = False) -> ResultsFilter:
        chosen = {k: v for k, v in vars(self).items() if k != "by"}
        return ResultsFilter(**chosen, scope=scope, hide_anonymous=hide_anonymous)


@router.get("/dashboard")
async def get_dashboard(
    session: SessionDep,
    principal: PrincipalDep,
    ref: ScoreRead,
    scope: ResultScope,
    filters: Annotated[DashboardFilters, Depends()],
) -> DashboardOut:
    """Aggregated metrics over the attempts the results table lists under the same filters: how many are
    completed (graded), in progress and to be taken, and every status; how many learners are excused;
    the mean and median time between start and submission; and the distribution of the scores in
    percent (mean, median, min, max, ten bins of 10 points and one above 100 for extra credit).
    Optionally a row per assessment, group, cohort or session. Graders see only the attempts allocated
    to them, and none at an anonymous assessment."""
    f = filters.results_filter(scope, anonymity.concealed(principal, ref))
    return DashboardOut.model_validate(await dashboard.dashboard(session, ref, f, filters.by), from_attributes=True)
