"""The learners a report covers, read a chunk at a time inside the report's snapshot.

`Who` is the selection as SQL conditions on enrollment `e`; chunks are ranges of enrollment ids, so
each statement of a report reads one range by its index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.courses.repository import groups, sessions
from gradeflow.db.conditions import Params, contains
from gradeflow.db.copy import copy_frame
from gradeflow.readside.repository.results_table import SEARCHED


@dataclass(frozen=True, slots=True)
class Who:
    """Which learners a report covers: everyone, a group, a cohort or a list; of those, only the ones
    with an attempt in a course session (`session_id`), and without the learners whose every group is
    archived (`hide_archived`, the results filter's default, as `who_of` builds it from a request)."""

    group: str | None = None
    cohort: str | None = None
    learners: list[str] | None = None
    session_id: int | None = None
    hide_archived: bool = False
    search: str | None = None  # the results table's search (learner id, username, names, e-mail)

    def sql(self) -> tuple[str, list[Any]]:
        """The condition on enrollment `e` (the course id is $1; its values are the COPY arguments from
        the 4th on) and those values."""
        arg = Params(None, None, None)  # $1 the course, $2 and $3 the chunk's bounds
        conditions = []
        if self.learners is not None:
            conditions.append(f"e.external_id = ANY(CAST({arg(self.learners)} AS text[]))")
        elif self.group is not None:
            conditions.append(f"CAST({arg(self.group)} AS text) = ANY(e.groups)")
        elif self.cohort is not None:
            conditions.append(f"e.cohort = {arg(self.cohort)}")
        if self.session_id is not None:
            conditions.append(sessions.with_attempt_in(arg(self.session_id)))
        if self.hide_archived:
            conditions.append(groups.not_archived("$1"))
        if self.search is not None:
            conditions.append(contains(SEARCHED, self.search, arg))
        return " AND ".join(conditions) or "TRUE", arg.values[3:]

    def named(self) -> tuple[str, dict[str, Any]]:
        """The same condition for text() statements: the course as `:c`, the values as `:x0`, `:x1`..."""
        condition, values = self.sql()
        for i in reversed(range(len(values))):  # $10 before $1
            condition = condition.replace(f"${4 + i}", f":x{i}")
        return condition.replace("$1", ":c"), {f"x{i}": v for i, v in enumerate(values)}

    @classmethod
    def of(cls, params: Any, session_id: int | None) -> Who:
        """The learners a report's params select (group, cohort, learners, include_archived, search,
        whichever the kind has), `session_id` the params' session resolved. Learners named one by one
        are reported even when every group of theirs is archived: whoever names them asks for them."""
        learners = getattr(params, "learners", None)
        return cls(
            group=getattr(params, "group", None),
            cohort=getattr(params, "cohort", None),
            learners=learners,
            session_id=session_id,
            hide_archived=not learners and not getattr(params, "include_archived", True),
            search=getattr(params, "search", None),
        )


EVERYONE = Who()
Bounds = tuple[int, int]  # the first and the last learner id of a chunk


# --- the snapshot ---------------------------------------------------------------------------------

# Every query of a report reads one chunk of learners by an id range, a few thousand pages. In a large
# course the planner answers that range with a scan of every attempt, many times slower, so the
# report's transactions do without sequential scans, parallel workers (the report reads in parallel
# itself) and JIT (compiling costs more than it saves).
_SNAPSHOT_SETTINGS = ("enable_seqscan = off", "max_parallel_workers_per_gather = 0", "jit = off")


async def begin_snapshot(session: AsyncSession, exported: str | None) -> str:
    """Start the session's read-only REPEATABLE READ transaction on the snapshot `exported` (None: a new
    one, exported); the snapshot's name."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    if exported is None:
        exported = str(await session.scalar(text("SELECT pg_export_snapshot()")))
    else:
        await session.execute(text(f"SET TRANSACTION SNAPSHOT '{exported}'"))
    for setting in _SNAPSHOT_SETTINGS:
        await session.execute(text(f"SET LOCAL {setting}"))
    return exported


# --- counts and chunks ----------------------------------------------------------------------------


async def count_learners(session: AsyncSession, course_id: int, who: Who = EVERYONE) -> int:
    """The learners a report covers: the course's, or those `who` selects."""
    condition, named = who.named()
    return int(
        await session.scalar(
            text(f"SELECT count(*) FROM enrollments e WHERE e.course_id = :c AND {condition}"),  # noqa: S608
            {"c": course_id, **named},
        )
        or 0
    )


async def count_candidates(session: AsyncSession, assessment_id: int) -> int:
    """The learners with an attempt at the assessment that is not cancelled (the marks CSV's candidates)."""
    return int(
        await session.scalar(
            text(
                "SELECT count(DISTINCT enrollment_id) FROM attempts WHERE assessment_id = :a AND status <> 'cancelled'"
            ),
            {"a": assessment_id},
        )
        or 0
    )


async def chunk_bounds(session: AsyncSession, course_id: int, who: Who, size: int) -> list[Bounds]:
    """The course's learners (those `who` covers) cut into chunks of `size`, ascending: one pass over
    their ids, so the chunks can then be read in any order, several at once."""
    condition, named = who.named()
    rows = await session.execute(text(_BOUNDS.format(condition=condition)), {"c": course_id, "n": size, **named})
    return [(int(r[0]), int(r[1])) for r in rows]


_BOUNDS = """
    SELECT min(id), max(id) FROM (
      SELECT e.id, (row_number() OVER (ORDER BY e.id) - 1) / :n AS k
      FROM enrollments e WHERE e.course_id = :c AND {condition}) x
    GROUP BY k ORDER BY k
"""


# A report's own columns for the learners' COPY: columns (", a, b"), joins, their arguments (numbered after
# the chunk's and `who`'s) and the columns' schema.
Extra = tuple[str, str, list[Any], dict[str, Any]]
NO_EXTRA: Extra = ("", "", [], {})


async def learners_in(
    session: AsyncSession, course_id: int, bounds: Bounds, who: Who = EVERYONE, extra: Extra = NO_EXTRA
) -> pl.DataFrame:
    """One chunk of learners (ascending ids), each with its stored final course grade; one COPY."""
    condition, argument = who.sql()
    columns, joins, args, schema = extra
    return await copy_frame(
        session,
        _LEARNERS.format(condition=condition, extra=columns, joins=joins),
        [course_id, *bounds, *argument, *args],
        _LEARNER_SCHEMA | schema,
    )


_LEARNERS = """
    SELECT e.id, e.external_id, e.email, e.username, e.full_name, e.given_name, e.family_name, e.cohort, e.team,
           e.track, e.status,
           g.final_percent, g.final_grade{extra}
    FROM enrollments e
    LEFT JOIN course_grades g  -- by the same id range: one merge over both indexes (a lookup a learner cost 2x)
      ON g.enrollment_id = e.id AND g.enrollment_id BETWEEN $2 AND $3
     AND g.policy_version = (SELECT c.grades_version FROM courses c WHERE c.id = $1){joins}
    WHERE e.course_id = $1 AND e.id BETWEEN $2 AND $3 AND {condition} ORDER BY e.id
"""
_LEARNER_SCHEMA = {
    "id": pl.Int64,
    "external_id": pl.String,
    "email": pl.String,
    "username": pl.String,
    "full_name": pl.String,
    "given_name": pl.String,  # with full_name and username: how reports name a learner (gradeflow.core.names)
    "family_name": pl.String,
    "cohort": pl.String,
    "team": pl.String,
    "track": pl.String,
    "status": pl.String,
    "final_percent": pl.Float64,
    "final_grade": pl.String,
}
