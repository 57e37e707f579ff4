"""What the Open edX grade and problem grade reports read besides the learners and their results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.db.copy import copy_frame
from gradeflow.readside.repository.learners import Extra


@dataclass(frozen=True, slots=True)
class LearnerFields:
    """Which optional learner fields the course's learners use."""

    cohorts: bool  # some learner has a cohort
    teams: bool  # some learner has a team
    experiments: list[str]  # the group configurations some learner is in, sorted


async def learner_fields(session: AsyncSession, course_id: int) -> LearnerFields:
    row = (
        await session.execute(
            text(
                """
                SELECT bool_or(e.cohort IS NOT NULL), bool_or(e.team IS NOT NULL),
                       array_agg(DISTINCT k.name) FILTER (WHERE k.name IS NOT NULL)
                FROM enrollments e LEFT JOIN LATERAL jsonb_object_keys(e.experiment_groups) k(name) ON TRUE
                WHERE e.course_id = :c  -- one pass over the course's learners
                """
            ),
            {"c": course_id},
        )
    ).one()
    return LearnerFields(bool(row[0]), bool(row[1]), sorted(row[2] or []))


# Whether a learner is on the allow list, and their course certificate (`w` is ELIGIBLE_NOW's allow list
# alias): an assessment's certificates are not the course's, and a revoked one is not delivered.
_CERTIFICATE_JOINS = """
    LEFT JOIN certificate_allowlist w ON w.enrollment_id = e.id AND w.enrollment_id BETWEEN $2 AND $3
    LEFT JOIN certificates cert ON cert.enrollment_id = e.id AND cert.enrollment_id BETWEEN $2 AND $3
      AND cert.assessment_id IS NULL AND cert.revoked_at IS NULL
"""


def grade_columns(eligible: str, averaged: list[int], experiments: list[str]) -> Extra:
    """The grade report's columns in the learners' COPY: verification, eligibility (`eligible`: the
    course certification's rule, SQL without parameters) and certificate, the percent and applied
    weight of each averaged category (by its place `k` in the stored explanation), each experiment
    group (arguments from $4 on: the report covers everyone, so `who` takes none)."""
    columns = [f"e.id_verified::int, ({eligible})::int, cert.type"]
    for k in averaged:  # an int of ours: never a client's text in the statement
        columns.append(f"g.explanation -> 'final' -> {k} ->> 'percent'")
        columns.append(f"g.explanation -> 'final' -> {k} ->> 'applied_weight'")
    columns += [f"e.experiment_groups ->> CAST(${4 + i} AS text)" for i in range(len(experiments))]
    schema = {"id_verified": pl.Int8, "eligible": pl.Int8, "certificate": pl.String}
    for k in averaged:
        schema |= {f"percent{k}": pl.Float64, f"weight{k}": pl.Float64}
    schema |= {f"group{i}": pl.String for i in range(len(experiments))}
    return ", " + ", ".join(columns), _CERTIFICATE_JOINS, list(experiments), schema


_ITEM_SCORES = """
    SELECT t.enrollment_id, sc.item_id, sc.earned FROM attempts t JOIN item_scores sc ON sc.attempt_id = t.id
    WHERE t.assessment_id = ANY(CAST($1 AS bigint[])) AND t.enrollment_id = ANY(CAST($2 AS bigint[]))
      AND t.status <> 'cancelled'
"""


async def item_scores(session: AsyncSession, assessment_ids: list[int], ids: np.ndarray) -> pl.DataFrame:
    """The item scores of the learners' attempts (not cancelled) at the assessments: enrollment, item, earned."""
    return await copy_frame(
        session,
        _ITEM_SCORES,
        [assessment_ids, ids.tolist()],
        {"enrollment": pl.Int64, "item": pl.Int64, "earned": pl.Float64},
    )
