"""Inspera's marks and grades CSV's SQL: the cells of a chunk of learners' rows, made in SQL and read by
COPY, and the grader columns the file needs."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.db.copy import copy_frame, fetch
from gradeflow.publishing.repository.visibility import AWAITS_CONFIRMATION
from gradeflow.readside.repository.learners import Bounds

# Each row's score, whether it was marked by hand, and who marked it, for the attempts at assessment $1
# ($2: the shared workflow). Items without an item score still get a row (empty scores); an
# assessment without items gets one row from the attempt's own score.
#
# The graders of a question: those who marked it (markers, oldest mark first, then the third marker or
# the final grader, whose mark decides), then whoever decided the score when it is not what the marks
# gave: an override (of a marked or of an automatic question), or a score given by hand without marks.
# Someone who both marked and decided is listed once. The shared workflow lists workgroups only
# (Inspera: "the ID of individual graders is not included").
_JOINS = """
    FROM attempts t
    JOIN enrollments e ON e.id = t.enrollment_id
    LEFT JOIN items i ON i.assessment_id = t.assessment_id
    CROSS JOIN LATERAL (
      SELECT CASE WHEN i.id IS NULL THEN t.earned ELSE sc.earned END AS earned,
             CASE WHEN i.id IS NULL THEN t.computed_earned ELSE sc.computed_earned END AS computed,
             coalesce(CASE WHEN i.id IS NULL THEN t.source ELSE sc.source END = 'override', false) AS overridden,
             CASE WHEN i.id IS NULL THEN t.scored_by ELSE sc.scored_by END AS decided_by,
             CASE WHEN i.id IS NULL THEN coalesce(t.source = 'manual', false)
                  ELSE i.marking = 'manual' END AS manual,
             array(SELECT m.grader FROM marks m WHERE m.attempt_id = t.id AND m.item_id = i.id
                   ORDER BY CASE m.role WHEN 'marker' THEN 0 WHEN 'third' THEN 1 ELSE 2 END, m.id) AS markers
      FROM (SELECT 1) one LEFT JOIN item_scores sc ON sc.attempt_id = t.id AND sc.item_id = i.id
      -- A fence: each row's score is looked up by its key and its marks read once. Flattened, the plan
      -- merged with item_scores from their first row on for every chunk (each chunk slower than the one
      -- before) and read the marks again for each use of them (eight times a row).
      OFFSET 0
    ) s
    CROSS JOIN LATERAL (
      SELECT CASE WHEN NOT (s.manual OR s.overridden) THEN ARRAY[]::text[]
                  WHEN CAST($2 AS boolean) OR s.decided_by IS NULL OR s.decided_by = ANY(s.markers)
                       OR (NOT s.overridden AND cardinality(s.markers) > 0) THEN s.markers
                  ELSE s.markers || s.decided_by END AS graders
    ) g
"""
_ATTEMPTS = "t.assessment_id = $1 AND t.status <> 'cancelled'"
# The course's organization (an InitPlan: computed once a statement).
_ORGANIZATION = "(SELECT c.organization_id FROM courses c JOIN assessments x ON x.course_id = c.id WHERE x.id = $1)"

# How many grader columns the file needs, and the username of each grader the directory knows.
_GRADERS = f"""
    WITH lists AS (SELECT g.graders {_JOINS} WHERE {_ATTEMPTS})
    SELECT w.width, st.user_id, st.username
    FROM (SELECT coalesce(max(cardinality(graders)), 0) AS width FROM lists) w
    LEFT JOIN staff st ON st.organization_id = {_ORGANIZATION}
     AND st.user_id IN (SELECT DISTINCT unnest(graders) FROM lists) AND st.username IS NOT NULL
"""  # noqa: S608  (constant SQL)

# One chunk of learners ($3-$4) with `{graders}` grader columns; a result is final once graded and, where
# the assessment has manually marked questions, confirmed. UserID is the learner's id across the organization.
_ROWS = f"""
    SELECT e.external_id AS candidate,
           (SELECT l.id FROM learners l WHERE l.organization_id = {_ORGANIZATION} AND l.external_id = e.external_id)
             AS user_id,
           CASE WHEN i.id IS NOT NULL THEN coalesce(i.number, i.external_id) END AS question_no,
           CASE WHEN i.id IS NULL THEN a.title ELSE i.title END AS question_title,
           i.revision, i.id AS question_id, {{graders}}
           CASE WHEN s.manual OR s.overridden THEN trim_scale(s.earned) END AS manual_score,
           CASE WHEN s.manual THEN NULL WHEN s.overridden THEN trim_scale(s.computed)
                ELSE trim_scale(s.earned) END AS auto_score,
           t.status = 'graded' AND NOT ({AWAITS_CONFIRMATION}) AS final,
           t.excused, trim_scale(t.earned) AS total,
           CASE WHEN t.possible > 0 THEN CAST(t.earned AS float8) / CAST(t.possible AS float8) END AS fraction
    {_JOINS}
    JOIN assessments a ON a.id = t.assessment_id
    WHERE {_ATTEMPTS} AND t.enrollment_id BETWEEN $3 AND $4 AND e.id BETWEEN $3 AND $4
    ORDER BY e.id, i.position, i.id
"""  # noqa: S608  (constant SQL)


def _rows_sql(width: int) -> str:
    return _ROWS.format(graders="".join(f"g.graders[{n}] AS g{n}, " for n in range(1, width + 1)))


def schema(width: int) -> dict[str, type[pl.DataType]]:
    return {
        "candidate": pl.String,
        "user_id": pl.String,
        "question_no": pl.String,
        "question_title": pl.String,
        "revision": pl.String,
        "question_id": pl.String,
        **{f"g{n}": pl.String for n in range(1, width + 1)},
        "manual_score": pl.String,
        "auto_score": pl.String,
        "final": pl.String,
        "excused": pl.String,
        "total": pl.String,
        "fraction": pl.Float64,
    }


@dataclass(frozen=True, slots=True)
class Graders:
    """How many grader columns the file needs, and the username of each grader the directory knows."""

    width: int
    usernames: dict[str, str]


async def graders(session: AsyncSession, assessment_id: int, shared: bool) -> Graders:
    """The assessment's graders (`shared`: the shared workflow, which lists workgroups)."""
    rows = await fetch(session, _GRADERS, [assessment_id, shared])
    return Graders(int(rows[0]["width"]), {r["user_id"]: r["username"] for r in rows if r["user_id"] is not None})


async def rows(session: AsyncSession, assessment_id: int, shared: bool, width: int, bounds: Bounds) -> pl.DataFrame:
    """The rows of the learners in `bounds` with `width` grader columns (g1, g2, ...), cells as text."""
    return await copy_frame(session, _rows_sql(width), [assessment_id, shared, *bounds], schema(width))
