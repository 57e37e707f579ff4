"""The dashboard (the test platform's "aggregated metrics for a group or a session"): over the attempts the
results table lists under the same filter, how many are completed, in progress and to be taken (and every
other status), how long the sittings took, and how the scores are spread; for the whole selection and,
on request, per assessment, group, cohort or session.

It reads the results table's own filter (`results_table.where` over its `FROM`) and its own percent
column, so a dashboard and the table it sits above always agree: the counts are the table's tabs, the
scores are its Percent cells. "To be taken" counts the attempts registered and not started, as the table
lists them; a learner with no attempt at all is in neither.

Everything is one statement: the attempts are read once into `base`, the total and the breakdown rows
are aggregates over it (FILTER for the statuses and the bins, percentile_cont for the medians).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.readside.repository import dashboard as repository
from gradeflow.readside.repository.dashboard import BINS, Breakdown, Figures
from gradeflow.readside.service import results_table
from gradeflow.readside.service.results_table import ResultsFilter

__all__ = ["Breakdown", "dashboard"]


@dataclass(frozen=True, slots=True)
class Durations:
    """The sittings' lengths: how many have one, their mean and median in seconds."""

    count: int
    mean_seconds: float | None
    median_seconds: float | None


# One bin of the score distribution; a TypedDict because its lower bound is named `from`, a Python keyword.
ScoreBin = TypedDict("ScoreBin", {"label": str, "from": float, "to": float | None, "count": int})


@dataclass(frozen=True, slots=True)
class ScoreSpread:
    """The distribution of the results table's percents."""

    count: int
    mean: float | None
    median: float | None
    min: float | None
    max: float | None
    bins: list[ScoreBin]


@dataclass(frozen=True, slots=True)
class DashboardRow:
    """One row's figures as the API gives them; `completed` is the document's Completed (graded)."""

    key: str | None
    title: str | None
    attempts: int
    statuses: dict[str, int]
    completed: int
    in_progress: int
    to_be_taken: int
    excused: int
    duration: Durations
    scores: ScoreSpread


@dataclass(frozen=True, slots=True)
class Dashboard:
    by: Breakdown
    total: DashboardRow
    rows: list[DashboardRow]


async def dashboard(session: AsyncSession, ref: CourseRef, f: ResultsFilter, by: Breakdown) -> Dashboard:
    """The figures for every attempt the results table lists under `f` (a grader's scope included), and
    one row per `by` value (none: no rows), in one statement."""
    s = await results_table.resolve(session, ref.id, f)
    rows = [_row(r) for r in await repository.figures(session, ref.id, s, by)]
    return Dashboard(by, rows[0], rows[1:])


def _row(r: Figures) -> DashboardRow:
    return DashboardRow(
        key=r.key,
        title=r.title,
        attempts=r.attempts,
        statuses=r.statuses,
        completed=r.statuses["graded"],
        in_progress=r.statuses["in_progress"],
        to_be_taken=r.statuses["to_be_taken"],
        excused=r.excused,
        duration=Durations(r.timed, r.duration_mean, r.duration_median),
        scores=ScoreSpread(
            count=r.scored,
            mean=r.score_mean,
            median=r.score_median,
            min=r.score_min,
            max=r.score_max,
            bins=[
                {"label": label, "from": low, "to": high, "count": r.bins[k]}
                for k, (label, low, high) in enumerate(BINS)
            ],
        ),
    )
