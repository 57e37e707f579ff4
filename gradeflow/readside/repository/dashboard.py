"""The dashboard's one statement: the attempts the results table selects, read once into `base`; the
total and the breakdown rows are aggregates over it (FILTER for the statuses and the bins,
percentile_cont for the medians)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.statuses import ATTEMPT_STATUSES
from gradeflow.courses.repository import groups
from gradeflow.db.conditions import Params
from gradeflow.db.copy import fetch
from gradeflow.readside.repository import results_table
from gradeflow.readside.repository.results_table import Selection

Breakdown = Literal["none", "assessment", "group", "cohort", "session"]

# The score distribution's bins in percent: [0, 10) ... [80, 90), then [90, 100] closed so a full mark
# falls in the top bin, then extra credit above 100. (label, lower bound, upper bound or None)
BINS: tuple[tuple[str, float, float | None], ...] = (
    *((f"[{k}, {k + 10})", float(k), float(k + 10)) for k in range(0, 90, 10)),
    ("[90, 100]", 90.0, 100.0),
    ("above 100", 100.0, None),
)

# The table's Percent cell (graded, not excused, with points possible; rounded as the table shows it).
_PERCENT = results_table.PERCENT
# A sitting's length in seconds, where both ends were recorded and in order (a submission before its
# start is a client's clock error, not a negative duration).
_DURATION = "CASE WHEN t.submitted_at >= t.started_at THEN date_part('epoch', t.submitted_at - t.started_at) END"


def _within(low: float, high: float | None) -> str:
    """SQL: percent `p` is in the bin [low, high) ([low, 100] for the top one, above `low` without `high`)."""
    if high is None:
        return f"p > {low}"
    return f"p >= {low} AND p {'<=' if high == 100 else '<'} {high}"


def _rounded(value: str) -> str:
    """SQL: a figure as the results table shows its percents, rounded to 2 decimals (half away from zero)."""
    return f"CAST(round(CAST({value} AS numeric), 2) AS float8)"


def _aggregates() -> str:
    """The figures of one row, over `base` rows (status, excused, p = percent, d = seconds). One
    sort a median: the percents' is taken in hundredths, whole numbers a float holds exactly, so it is
    exact (the mean of the two middle values where there are two)."""
    statuses = [f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in ATTEMPT_STATUSES]
    bins = [f"count(*) FILTER (WHERE {_within(low, high)}) AS bin_{k}" for k, (_, low, high) in enumerate(BINS)]
    return ",\n".join(
        [
            "count(*) AS attempts",
            *statuses,
            "count(*) FILTER (WHERE excused) AS excused",
            "count(d) AS timed",
            f"{_rounded('avg(d)')} AS duration_mean",
            f"{_rounded('percentile_cont(0.5) WITHIN GROUP (ORDER BY d)')} AS duration_median",
            "count(p) AS scored",
            f"{_rounded('avg(p)')} AS score_mean",
            f"{_rounded('CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(p * 100 AS float8)) AS numeric) / 100')}"
            " AS score_median",
            "CAST(min(p) AS float8) AS score_min",
            "CAST(max(p) AS float8) AS score_max",
            *bins,
        ]
    )


@dataclass(frozen=True)
class _By:
    """How a breakdown reads its rows: the columns (key, title, sort) and the join it adds to `base`; or,
    where one attempt falls in several rows, the lateral expansion of `base` that gives each row's key."""

    columns: str
    join: str = ""
    expand: str | None = None


def _by(by: Breakdown, f: Selection, arg: Params) -> _By | None:
    """The breakdown's rows: assessments in course order, the others by key; attempts without a cohort
    or session fall in a row of their own (key null), as the results table shows them with none."""
    if by == "none":
        return None
    if by == "assessment":
        return _By("a.external_id AS key, a.title AS title, a.position AS sort")
    if by == "cohort":
        return _By("e.cohort AS key, CAST(NULL AS text) AS title, CAST(NULL AS int) AS sort")
    if by == "session":
        return _By(
            "ds.external_id AS key, ds.title AS title, CAST(NULL AS int) AS sort",
            join="LEFT JOIN course_sessions ds ON ds.id = t.session_id",
        )
    return _groups(f, arg)


# An attempt's group keys, each once: an enrollment's `groups` is kept as sent, so it may name one twice.
_EACH_GROUP_ONCE = "CROSS JOIN LATERAL (SELECT DISTINCT u.key FROM unnest(base.keys) AS u(key)) AS k(key)"


def _groups(f: Selection, arg: Params) -> _By:
    """A row per group: an attempt counts once in each of its learner's groups (so the rows may add up to
    more than the total), and in the "no group" row (key null) when the learner has none. Under a group filter
    only that group has a row; archived groups have none unless archived groups are asked for (their
    learners' attempts still count in their other groups' rows)."""
    keep = ["TRUE"]
    if f.group is not None:
        keep.append(f"k.key = CAST({arg(f.group)} AS text)")
    if not f.include_archived:
        # $1 is the course: the results table's filter binds it first.
        keep.append(f"k.key <> ALL ({groups.archived_names('$1')})")
    return _By(
        "CASE WHEN cardinality(e.groups) = 0 THEN ARRAY[CAST(NULL AS text)] ELSE e.groups END AS keys",
        expand=f"{_EACH_GROUP_ONCE} WHERE k.key IS NULL OR ({' AND '.join(keep)})",
    )


_TOTAL = "TRUE AS total, CAST(NULL AS text) AS key, CAST(NULL AS text) AS title, CAST(NULL AS int) AS sort"
_ORDER = "ORDER BY total DESC, sort NULLS LAST, key NULLS LAST"


def _rows(breakdown: _By | None) -> str:
    """The total first, then the breakdown's rows. One pass over `base` where each attempt falls in one
    row (grouping sets); where it may fall in several, the total is taken apart from the rows (it would
    count such an attempt once per row)."""
    aggregates = _aggregates()
    if breakdown is None:
        return f"SELECT {_TOTAL}, {aggregates} FROM base"  # noqa: S608 (constant SQL pieces)
    if breakdown.expand is None:
        return f"""SELECT GROUPING(key) = 1 AS total, key, title, sort, {aggregates}
            FROM base GROUP BY GROUPING SETS ((), (key, title, sort)) {_ORDER}"""  # noqa: S608
    return f"""SELECT {_TOTAL}, {aggregates} FROM base
        UNION ALL
        SELECT FALSE, k.key, NULL, NULL, {aggregates} FROM base {breakdown.expand} GROUP BY k.key
        {_ORDER}"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class Figures:
    """One row's figures: the total's (key None, first) or a breakdown value's."""

    key: str | None
    title: str | None
    attempts: int
    statuses: dict[str, int]  # every attempt status
    excused: int
    timed: int  # attempts with a duration
    duration_mean: float | None
    duration_median: float | None
    scored: int  # attempts with a percent
    score_mean: float | None
    score_median: float | None
    score_min: float | None
    score_max: float | None
    bins: list[int]  # attempts per bin of BINS


async def figures(session: AsyncSession, course_id: int, s: Selection, by: Breakdown) -> list[Figures]:
    """The total's figures over every attempt `s` selects (a grader's scope included), then one row per
    `by` value (none: no rows), in one statement."""
    where, args = results_table.where(course_id, s, with_status=False)
    arg = Params(*args)
    breakdown = _by(by, s, arg)
    extra, join = (f", {breakdown.columns}", breakdown.join) if breakdown else ("", "")
    # Materialized: each attempt's percent (a numeric division) is worked out once, not once for every
    # figure that reads it (an inlined `base` repeats the expression in each aggregate, several times slower).
    sql = f"""
        WITH base AS MATERIALIZED (
            SELECT t.status, t.excused, {_PERCENT} AS p, {_DURATION} AS d{extra}
            {results_table.FROM} {join}
            WHERE {where}
        )
        {_rows(breakdown)}
    """
    return [_figures(r) for r in await fetch(session, sql, arg.values)]


def _figures(r: Any) -> Figures:
    return Figures(
        key=r["key"],
        title=r["title"],
        attempts=int(r["attempts"]),
        statuses={s: int(r[s]) for s in ATTEMPT_STATUSES},
        excused=int(r["excused"]),
        timed=int(r["timed"]),
        duration_mean=r["duration_mean"],
        duration_median=r["duration_median"],
        scored=int(r["scored"]),
        score_mean=r["score_mean"],
        score_median=r["score_median"],
        score_min=r["score_min"],
        score_max=r["score_max"],
        bins=[int(r[f"bin_{k}"]) for k in range(len(BINS))],
    )
