"""Learners' attempts as the grading engine's dense sheet: attempt statuses as codes, the attempt
rows (`repository/sheets.py`) placed in learner x assessment arrays."""

from __future__ import annotations

import asyncio

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.statuses import ATTEMPT_STATUSES
from gradeflow.grades.repository import sheets as repository
from gradeflow.grades.repository.sheets import AttemptFrames
from gradeflow.grading.policy import Policy
from gradeflow.grading.sheet import EXCUSED, GRADED, UNGRADED, Sheet

# Attempt statuses as codes. UNCONFIRMED: graded, but the assessment has manual items and its results
# are not confirmed yet, so the result is not final (it does not count as graded). EXCUSED_STATUS: the
# learner is excused (the attempt's flag), whatever its status and scores.
STATUSES = ATTEMPT_STATUSES
STATUS = {s: i for i, s in enumerate(STATUSES)}
GRADED_STATUS, CANCELLED_STATUS, UNCONFIRMED = STATUS["graded"], STATUS["cancelled"], len(STATUSES)
EXCUSED_STATUS = UNCONFIRMED + 1
WAITING = (STATUS["submitted"], STATUS["pending_grading"], UNCONFIRMED)


def status_name(code: int) -> str:
    return STATUSES[code] if code < len(STATUSES) else "unconfirmed" if code == UNCONFIRMED else "excused"


# Per attempt row: the learner's position in the ids asked for, the assessment's column, status code,
# earned, possible.
AttemptColumns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


async def load_sheet(session: AsyncSession, course_id: int, policy: Policy, enrollment_ids: np.ndarray) -> Sheet:
    """The chunk's attempts as dense arrays (COPY out, parsed by polars; a plain query for a few)."""
    column_of = {a.id: j for j, a in enumerate(policy.assessments)}
    return sheet_of(policy, enrollment_ids, *await attempt_columns(session, course_id, enrollment_ids, column_of))


async def attempt_columns(
    session: AsyncSession, course_id: int, enrollment_ids: np.ndarray, column_of: dict[str, int]
) -> AttemptColumns:
    """These learners' attempts (ids ascending), column-wise; `column_of` maps assessment external ids
    to columns (others get -1)."""
    frames = await repository.attempts_of(session, course_id, enrollment_ids)
    if len(enrollment_ids) <= 100:
        return _attempt_columns(frames, enrollment_ids, column_of)
    # numpy and polars work on whole columns: off the event loop, which keeps receiving other reads
    return await asyncio.to_thread(_attempt_columns, frames, enrollment_ids, column_of)


def _attempt_columns(frames: AttemptFrames, enrollment_ids: np.ndarray, column_of: dict[str, int]) -> AttemptColumns:
    to_column = {a.id: column_of.get(a.external_id, -1) for a in frames.assessments}
    frame = frames.attempts

    def columns(f: pl.DataFrame) -> np.ndarray:
        return f["assessment"].replace_strict(to_column, default=-1, return_dtype=pl.Int64).to_numpy()

    at, mine = _positions(enrollment_ids, frame["enrollment"].to_numpy())
    cols = columns(frame)

    def among(pairs: pl.DataFrame) -> np.ndarray:
        """Per attempt row: whether it is one of these (learner, assessment) pairs."""
        p_at, p_mine = _positions(enrollment_ids, pairs["enrollment"].to_numpy())
        # one more column than `column_of` has, where the assessments without a column (-1) land
        grid = np.zeros((len(enrollment_ids), max(column_of.values(), default=-1) + 2), dtype=bool)
        grid[p_at[p_mine], columns(pairs)[p_mine]] = True
        found: np.ndarray = grid[at, cols]
        return found

    status = frame["status"].replace_strict(STATUS, return_dtype=pl.Int8).to_numpy()
    unconfirmed, excused = frames.unconfirmed, frames.excused
    if unconfirmed is not None and unconfirmed.height:
        status = np.where((status == GRADED_STATUS) & among(unconfirmed), UNCONFIRMED, status).astype(np.int8)
    if excused is not None and excused.height:
        status = np.where(among(excused), EXCUSED_STATUS, status).astype(np.int8)
    keep = mine & (cols >= 0)
    return (
        at[keep],
        cols[keep],
        status[keep],
        frame["earned"].to_numpy()[keep],
        frame["possible"].to_numpy()[keep],
    )


def _positions(enrollment_ids: np.ndarray, enrollment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each attempt row's learner position in `enrollment_ids` (ascending), and whether it is one of
    them. Consecutive ids (a course's learners, usually) need a subtraction, not a search."""
    if not len(enrollment_ids):
        return np.zeros(len(enrollment), np.int64), np.zeros(len(enrollment), bool)
    first, n = int(enrollment_ids[0]), len(enrollment_ids)
    if int(enrollment_ids[-1]) - first == n - 1:
        at = enrollment - first
        mine = (at >= 0) & (at < n)
        return np.clip(at, 0, n - 1), mine
    at = np.minimum(np.searchsorted(enrollment_ids, enrollment), n - 1)
    return at, enrollment_ids[at] == enrollment


def sheet_of(
    policy: Policy,
    enrollment_ids: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    status: np.ndarray,
    e: np.ndarray,
    p: np.ndarray,
) -> Sheet:
    """Dense learner x assessment arrays from attempt rows (given column-wise: learner position,
    assessment column, status code, earned, possible). An excused result is EXCUSED for every preset;
    a cancelled attempt is left out, so it counts as not attempted, as a missing row does."""
    ids = [a.id for a in policy.assessments]
    n_l, n_a = len(enrollment_ids), len(ids)
    catalogue_possible = np.array([a.possible for a in policy.assessments], dtype=np.float64)
    earned = np.full((n_l, n_a), np.nan)
    possible = np.broadcast_to(catalogue_possible, (n_l, n_a)).copy()
    state = np.zeros((n_l, n_a), dtype=np.int8)
    cancelled = status == CANCELLED_STATUS
    if cancelled.any():
        rows, cols, status, e, p = (x[~cancelled] for x in (rows, cols, status, e, p))
    if len(rows):
        graded = (status == GRADED_STATUS) & ~np.isnan(e)
        state[rows, cols] = np.where(graded, GRADED, np.where(status == EXCUSED_STATUS, EXCUSED, UNGRADED))
        earned[rows, cols] = np.where(graded, e, np.nan)
        possible[rows, cols] = np.where(np.isnan(p), possible[rows, cols], p)
    return Sheet(
        learner_ids=[str(i) for i in enrollment_ids.tolist()],
        assessment_ids=ids,
        categories=[a.category for a in policy.assessments],
        omit=np.array([a.omit_from_final for a in policy.assessments], dtype=bool),
        earned=earned,
        possible=possible,
        state=state,
    )
