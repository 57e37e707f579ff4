"""Reads of learners' attempts for grading: COPY out into polars for a chunk, a plain query for a few.

Plain columns of one table, numbers as PostgreSQL's own text: the cheapest rows it can send (casts to
float8, a join to the assessments or the confirmation CASE in the read make it slower). The course's
assessments are applied in numpy by the caller; the unconfirmed results of manual assessments, and the
excused results, come from narrow reads of their own, only for the assessments that have any (the
excused ones by their partial index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.db.copy import copy_frame


@dataclass(frozen=True, slots=True)
class CourseAssessment:
    id: int
    external_id: str
    manual: bool  # has manually marked items
    excused: bool  # some learner is excused from it


@dataclass(frozen=True, slots=True)
class AttemptFrames:
    """The learners' attempt rows (enrollment, assessment, status, earned, possible) and the
    (enrollment, assessment) pairs that are graded but unconfirmed, and excused (None: none can be)."""

    assessments: list[CourseAssessment]
    attempts: pl.DataFrame
    unconfirmed: pl.DataFrame | None
    excused: pl.DataFrame | None


_COURSE_ASSESSMENTS = """
    SELECT a.id, a.external_id, EXISTS (SELECT 1 FROM items i WHERE i.assessment_id = a.id AND i.marking = 'manual'),
           EXISTS (SELECT 1 FROM attempts t WHERE t.assessment_id = a.id AND t.excused)
    FROM assessments a WHERE a.course_id = :c
"""
_ATTEMPTS = """
    SELECT t.enrollment_id, t.assessment_id, t.status, t.earned, t.possible FROM attempts t WHERE {learners}
"""
_UNCONFIRMED = """
    SELECT t.enrollment_id, t.assessment_id FROM attempts t
    WHERE {learners} AND t.assessment_id = ANY(CAST({manual} AS bigint[])) AND t.status = 'graded'
      AND t.confirmed_at IS NULL
"""
_EXCUSED = """
    SELECT t.enrollment_id, t.assessment_id FROM attempts t
    WHERE {learners} AND t.assessment_id = ANY(CAST({excused} AS bigint[])) AND t.excused
"""
_LEARNER_LIST = "t.enrollment_id = ANY(CAST($1 AS bigint[]))"
# Consecutive learners (a report's or a recompute's chunk) are read by one index range; rows of other
# courses' learners in the range are dropped by the caller.
_LEARNER_RANGE = "t.enrollment_id BETWEEN $1 AND $2"
_ATTEMPT_SCHEMA = {
    "enrollment": pl.Int64,
    "assessment": pl.Int64,
    "status": pl.String,
    "earned": pl.Float64,
    "possible": pl.Float64,
}
_PAIR_SCHEMA = {"enrollment": pl.Int64, "assessment": pl.Int64}


async def attempts_of(session: AsyncSession, course_id: int, enrollment_ids: np.ndarray) -> AttemptFrames:
    """These learners' (ids ascending) attempt rows, column-wise."""
    assessments = [
        CourseAssessment(*row) for row in (await session.execute(text(_COURSE_ASSESSMENTS), {"c": course_id})).all()
    ]
    manual = [a.id for a in assessments if a.manual]
    excused = [a.id for a in assessments if a.excused]
    unconfirmed = flagged = None
    if len(enrollment_ids) <= 100:
        learners = _LEARNER_LIST.replace("$1", ":ids")
        params = {"ids": enrollment_ids.tolist(), "manual": manual, "excused": excused}
        frame = await _plain(session, _ATTEMPTS.format(learners=learners), params, _ATTEMPT_SCHEMA)
        if manual:
            sql = _UNCONFIRMED.format(learners=learners, manual=":manual")
            unconfirmed = await _plain(session, sql, params, _PAIR_SCHEMA)
        if excused:
            sql = _EXCUSED.format(learners=learners, excused=":excused")
            flagged = await _plain(session, sql, params, _PAIR_SCHEMA)
        return AttemptFrames(assessments, frame, unconfirmed, flagged)
    if 2 * len(enrollment_ids) >= enrollment_ids[-1] - enrollment_ids[0]:
        learners, args = _LEARNER_RANGE, [int(enrollment_ids[0]), int(enrollment_ids[-1])]
    else:
        learners, args = _LEARNER_LIST, [enrollment_ids.tolist()]
    frame = await copy_frame(session, _ATTEMPTS.format(learners=learners), args, _ATTEMPT_SCHEMA)
    if manual:
        sql = _UNCONFIRMED.format(learners=learners, manual=f"${len(args) + 1}")
        unconfirmed = await copy_frame(session, sql, [*args, manual], _PAIR_SCHEMA)
    if excused:
        sql = _EXCUSED.format(learners=learners, excused=f"${len(args) + 1}")
        flagged = await copy_frame(session, sql, [*args, excused], _PAIR_SCHEMA)
    return AttemptFrames(assessments, frame, unconfirmed, flagged)


async def _plain(session: AsyncSession, sql: str, params: dict[str, Any], schema: dict[str, Any]) -> pl.DataFrame:
    """A few learners' rows by a plain query (cheaper than a COPY for a handful), column-wise."""
    rows = (await session.execute(text(sql), params)).all()
    return pl.DataFrame(  # column-wise: building a frame row by row costs more than the query
        dict(zip(schema, map(list, zip(*rows, strict=True)), strict=True)) if rows else None,
        schema=schema,
        strict=False,
    )
