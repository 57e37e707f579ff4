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

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.readside.repository import dashboard as repository
from gradeflow.readside.repository.dashboard import BINS, Breakdown, Figures
from gradeflow.readside.service import results_table
from gradeflow.readside.service.results_table import ResultsFilter

__all__ = ["Breakdown", "dashboard"]


async def dashboard(session: AsyncSession, ref: CourseRef, f: ResultsFilter, by: Breakdown) -> dict[str, Any]:
    """The figures for every attempt the results table lists under `f` (a grader's scope included), and
    one row per `by` value (none: no rows), in one statement."""
    s = await results_table.resolve(session, ref.id, f)
    rows = [_row(r) for r in await repository.figures(session, ref.id, s, by)]
    return {"by": by, "total": rows[0], "rows": rows[1:]}


def _row(r: Figures) -> dict[str, Any]:
    """One row's figures as the API gives them; `completed` is the document's Completed (graded)."""
    return {
        "key": r.key,
        "title": r.title,
        "attempts": r.attempts,
        "statuses": r.statuses,
        "completed": r.statuses["graded"],
        "in_progress": r.statuses["in_progress"],
        "to_be_taken": r.statuses["to_be_taken"],
        "excused": r.excused,
        "duration": {"count": r.timed, "mean_seconds": r.duration_mean, "median_seconds": r.duration_median},
        "scores": {
            "count": r.scored,
            "mean": r.score_mean,
            "median": r.score_median,
            "min": r.score_min,
            "max": r.score_max,
            "bins": [
                {"label": label, "from": low, "to": high, "count": r.bins[k]}
                for k, (label, low, high) in enumerate(BINS)
            ],
        },
    }
