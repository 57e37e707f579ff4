"""What the read side's routers share: the query parameters their filters declare, the learner and
result filters, and the chart responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import Response

from gradeflow.core.commands import ExternalId, Moment
from gradeflow.core.statuses import AttemptStatus
from gradeflow.core.validation import CleanStr
from gradeflow.readside import charts

# --- query parameters, declared once -------------------------------------------------------------

Text = Annotated[CleanStr | None, Query(max_length=255)]
Search = Annotated[CleanStr | None, Query(min_length=1, max_length=200)]
Assessment = Annotated[ExternalId | None, Query()]
AttemptsInSession = Annotated[ExternalId | None, Query(description="A course session: only the attempts in it.")]
IncludeArchived = Annotated[bool, Query(description="Also learners whose every group is archived (hidden by default).")]
Since = Annotated[Moment | None, Query()]
Until = Annotated[Moment | None, Query()]


@dataclass
class LearnerFilters:
    """The results table's learner filters (the certificates list takes them too): a group or cohort,
    a search in learner id, username, names and e-mail (case-insensitive), one course session, and
    learners whose every group is archived only when include_archived."""

    group: Text = None
    cohort: Text = None
    search: Search = None
    session: AttemptsInSession = None
    include_archived: IncludeArchived = False


@dataclass
class ResultFilters(LearnerFilters):
    """Which attempts: statuses, one assessment, the learner filters, and a range [since, until) of the
    attempt's last change. Learners whose every group is archived are left out unless include_archived."""

    status: Annotated[list[AttemptStatus] | None, Query(max_length=6)] = None
    assessment: Assessment = None
    since: Since = None
    until: Until = None


# --- charts ---------------------------------------------------------------------------------------

CHARTS: dict[int | str, dict[str, Any]] = {200: {"content": {"image/svg+xml": {}, "image/png": {}}}}
ChartFormat = Literal["svg", "png"]


def chart(data: bytes, fmt: ChartFormat) -> Response:
    return Response(data, media_type=charts.MEDIA_TYPES[fmt])
