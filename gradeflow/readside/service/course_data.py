"""What every report (and the gradebook and statistics) reads, in chunks of learners so memory does not grow
with the course: the course (its report columns named), the learners a report covers, and their results as
cells.

A report reads inside one read-only REPEATABLE READ transaction (`snapshot`), so its file is one
consistent picture even while scores keep changing. The reports themselves are in gradeflow/reports/service:
the Open edX CSV reports in openedx_reports.py (their cell texts in cells.py), the marks CSV in
marks_report.py, the XLSX files in skills_report.py (and the results table here, results_table.py), the PDFs'
records in report_records.py and progression_report.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.courses.service import sessions
from gradeflow.grades.service import sheets
from gradeflow.readside.repository import course as course_repository
from gradeflow.readside.repository import learners as learner_repository
from gradeflow.readside.repository.course import AssessmentInfo, CourseInfo, ItemInfo
from gradeflow.readside.repository.learners import EVERYONE, Bounds, Extra, Who

__all__ = ["EVERYONE", "AssessmentInfo", "Bounds", "CourseInfo", "Extra", "ItemInfo", "Who"]

CHUNK = 20_000
# Chunks read by two sessions at once are smaller, so the worker's peak memory stays within its
# budget at a million learners (bench/report.py measures it).
PARALLEL_CHUNK = 12_000
NOT_ATTEMPTED = "Not Attempted"
NOT_AVAILABLE = "Not Available"
EXCUSED_TEXT = "Excused"
# Cell states of a learner x assessment result.
EMPTY, FINAL, UNAVAILABLE, CANCELLED, EXCUSED = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Snapshot:
    """Sessions that all read one read-only REPEATABLE READ snapshot (the first exports it, the others
    import it), so a report can read several chunks at once and still show one consistent picture."""

    sessions: tuple[AsyncSession, ...]

    @property
    def session(self) -> AsyncSession:
        return self.sessions[0]


@contextlib.asynccontextmanager
async def snapshot(sessionmaker: async_sessionmaker[AsyncSession], readers: int = 1) -> AsyncIterator[Snapshot]:
    """`readers` sessions on one snapshot for the whole report (the settings each transaction reads
    under are the repository's: readside/repository/learners.py)."""
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(sessionmaker()) for _ in range(readers)]
        exported = None
        for session in sessions:
            exported = await learner_repository.begin_snapshot(session, exported)
        yield Snapshot(tuple(sessions))


async def load_course(session: AsyncSession, course_id: int) -> CourseInfo:
    """The course as the reports read it, its report columns named."""
    info = await course_repository.load_course(session, course_id)
    info.labels, info.columns = _labelled(info)
    return info


async def count_learners(session: AsyncSession, course_id: int, who: Who | None = None) -> int:
    """The learners a report covers: the course's, or those `who` selects."""
    return await learner_repository.count_learners(session, course_id, who or EVERYONE)


count_candidates = learner_repository.count_candidates
learners_in = learner_repository.learners_in


async def chunk_bounds(session: AsyncSession, course_id: int, who: Who = EVERYONE, size: int = CHUNK) -> list[Bounds]:
    """The course's learners (those `who` covers) cut into chunks of `size`, ascending."""
    return await learner_repository.chunk_bounds(session, course_id, who, size)


# The Open edX reports' own columns: no category label takes one of their names.
_OPEN_EDX_COLUMNS = (
    "Student ID", "Email", "Username", "Grade", "Cohort Name", "Team Name", "Enrollment Track", "Verification Status",
    "Certificate Eligible", "Certificate Delivered", "Certificate Type", "Enrollment Status",
)  # fmt: skip


def _labelled(course: CourseInfo) -> tuple[dict[str, str], list[tuple[str, AssessmentInfo]]]:
    """Open edX's columns: grouped by category in order of first appearance, "{label} {i}" ("HW 1"),
    or just "{label}" for a category with one assessment. A category's label is the policy's short label
    ("HW"), else its name, numbered where two categories would share one. Both Open edX reports name
    their columns from these."""
    by_category: dict[str, list[AssessmentInfo]] = {}
    for a in course.assessments:
        by_category.setdefault(a.category, []).append(a)
    wanted = [(r.short_label if (r := course.rule(c)) is not None and r.short_label else c) for c in by_category]
    labels = dict(zip(by_category, distinct(wanted, taken=_OPEN_EDX_COLUMNS), strict=True))
    out = []
    for category, members in by_category.items():
        label = labels[category]
        if len(members) == 1:
            out.append((label, members[0]))
        else:
            out += [(f"{label} {i}", a) for i, a in enumerate(members, start=1)]
    return labels, out


async def who_of(session: AsyncSession, course_id: int, params: Any) -> Who:
    """The learners a report's params select (see `Who.of`); an unknown session is a 404 naming it."""
    name = getattr(params, "session", None)
    return Who.of(params, None if name is None else await sessions.session_id(session, course_id, name))


async def learner_chunks(session: AsyncSession, course_id: int, who: Who = EVERYONE) -> AsyncIterator[pl.DataFrame]:
    """The course's learners (those `who` covers) chunk by chunk, in ascending order."""
    for bounds in await chunk_bounds(session, course_id, who):
        yield await learners_in(session, course_id, bounds, who)


async def result_cells(session: AsyncSession, course: CourseInfo, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per learner x assessment (course order): the result as a fraction (earned / possible) and its
    state: FINAL (graded and, with manual marking, confirmed), UNAVAILABLE (waiting for grading or
    confirmation), CANCELLED, EXCUSED (whatever the attempt's status), EMPTY (no attempt, or not yet
    taken)."""
    column_of = {a.external_id: j for j, a in enumerate(course.assessments)}
    rows, cols, status, earned, possible = await sheets.attempt_columns(session, course.id, ids, column_of)
    n_l, n_a = len(ids), len(course.assessments)
    value = np.full((n_l, n_a), np.nan)
    state = np.zeros((n_l, n_a), dtype=np.int8)
    final = (status == sheets.GRADED_STATUS) & ~np.isnan(earned)
    waiting = np.isin(status, sheets.WAITING)
    excused = status == sheets.EXCUSED_STATUS
    state[rows, cols] = np.select(
        [final, waiting, status == sheets.CANCELLED_STATUS, excused], [FINAL, UNAVAILABLE, CANCELLED, EXCUSED], EMPTY
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(possible > 0, earned / possible, np.nan)
    value[rows, cols] = np.where(final, fraction, np.nan)
    state[(state == FINAL) & np.isnan(value)] = EMPTY  # zero points possible: nothing to show (as Open edX)
    return value, state


def distinct(names: list[str], taken: Sequence[str]) -> list[str]:
    """Column names from clients' texts (category labels, titles), made distinct from each other and from
    the report's own columns (`taken`) by " (2)", " (3)", ...: a column is never lost to another of the
    same name (a category called "Grade", two items both titled "Essay")."""
    seen = set(taken)
    out = []
    for name in names:
        unique, k = name, 1
        while unique in seen:
            k += 1
            unique = f"{name} ({k})"
        seen.add(unique)
        out.append(unique)
    return out
