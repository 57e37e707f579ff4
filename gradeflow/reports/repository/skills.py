"""The skills file's SQL: the skills of the course's items, and per chunk of learners their identity
columns and their final scores of items, over the results table's selection."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.db.copy import copy_frame, fetch
from gradeflow.publishing.repository.visibility import CONFIRMED_OR_AUTOMATIC
from gradeflow.readside.repository import results_table
from gradeflow.readside.repository.results_table import Column, Selection


@dataclass(frozen=True, slots=True)
class ItemSkill:
    """A skill an item names, with its assessment (id, title) and weight in millionths."""

    assessment_id: int
    title: str
    item: int
    skill: str
    weight: int


# The skills of the course's items in course order, weights in millionths (the API keeps 6 decimals).
_SKILLS = """
    SELECT a.id, a.title, i.id AS item, s.value ->> 'skill' AS skill,
           CAST(round(coalesce(CAST(s.value ->> 'weight' AS numeric), 1) * 1000000) AS bigint) AS weight
    FROM assessments a JOIN items i ON i.assessment_id = a.id
    CROSS JOIN LATERAL jsonb_array_elements(i.skills) WITH ORDINALITY AS s(value, n)
    WHERE a.course_id = $1 AND (CAST($2 AS text) IS NULL OR a.external_id = CAST($2 AS text))
    ORDER BY a.position, a.id, i.position, i.id, s.n
"""
_MANUAL = """
    SELECT DISTINCT a.id FROM assessments a JOIN items i ON i.assessment_id = a.id
    WHERE a.course_id = $1 AND i.marking = 'manual'
"""


async def item_skills(session: AsyncSession, course_id: int, assessment: str | None) -> list[ItemSkill]:
    """Each skill of each item of the course (or of its assessment `assessment`), in course order."""
    rows = await fetch(session, _SKILLS, [course_id, assessment])
    return [ItemSkill(r["id"], r["title"], r["item"], r["skill"], r["weight"]) for r in rows]


async def manual_assessments(session: AsyncSession, course_id: int) -> list[int]:
    """The course's assessments with manual items."""
    return [int(r["id"]) for r in await fetch(session, _MANUAL, [course_id])]


async def count_learners(session: AsyncSession, course_id: int, s: Selection) -> int:
    """Learners with an attempt the selection keeps."""
    where, args = results_table.where(course_id, s)
    sql = f"SELECT count(DISTINCT t.enrollment_id) AS n {results_table.FROM} WHERE {where}"
    return int((await fetch(session, sql, args))[0]["n"])


def _identity_sql(identity: list[Column]) -> str:
    return ", ".join(f"array_to_string({c.sql}, ', ')" if c.kind == "list" else c.sql for c in identity)


# A graded result that counts: not excused, and confirmed where its assessment has manual items.
_FINAL = "t.status = 'graded' AND NOT t.excused AND " + CONFIRMED_OR_AUTOMATIC


class Chunks:
    """The selection's learners a chunk at a time (`learners`), and a chunk's final item scores (`scores`)."""

    def __init__(self, course_id: int, s: Selection, identity: list[Column], headers: list[str]) -> None:
        where, self.args = results_table.where(course_id, s)
        n = len(self.args)
        # The course's learners in id order (its index), each kept if the filter keeps one of their attempts.
        self.learners_sql = f"""
            WITH chunk AS (
              SELECT x.id FROM enrollments x
              WHERE x.course_id = $1 AND x.id > ${n + 1}
                AND EXISTS (SELECT 1 {results_table.FROM} WHERE {where} AND t.enrollment_id = x.id)
              ORDER BY x.id LIMIT ${n + 2})
            SELECT e.id, {_identity_sql(identity)} FROM chunk JOIN enrollments e ON e.id = chunk.id ORDER BY e.id
        """  # noqa: S608 (built from constant SQL; values are parameters)
        # Points are numeric(18, 6): whole millionths fit a bigint exactly. Items without skills are dropped
        # in numpy: a list of items in the SQL would make each attempt's index probe one descent per item.
        self.scores_sql = f"""
            SELECT t.enrollment_id, sc.item_id,
                   CAST(sc.earned * 1000000 AS bigint), CAST(sc.possible * 1000000 AS bigint)
            {results_table.FROM}
            JOIN item_scores sc ON sc.attempt_id = t.id
            WHERE {where} AND t.enrollment_id BETWEEN ${n + 1} AND ${n + 2}
              AND {_FINAL.format(manual=f"CAST(${n + 3} AS bigint[])")}
        """
        self.people_schema = {"enrollment": pl.Int64} | dict.fromkeys(headers, pl.String)

    async def learners(self, session: AsyncSession, after: int, size: int) -> pl.DataFrame:
        """Up to `size` learners after enrollment `after`: enrollment, then the identity columns as text."""
        return await copy_frame(session, self.learners_sql, [*self.args, after, size], self.people_schema)

    async def scores(self, session: AsyncSession, first: int, last: int, manual: list[int]) -> pl.DataFrame:
        """The final item scores of the learners from `first` to `last`, in millionths: enrollment, item,
        earned, possible (`manual`: the assessments whose results count once confirmed)."""
        schema = {"enrollment": pl.Int64, "item": pl.Int64, "earned": pl.Int64, "possible": pl.Int64}
        return await copy_frame(session, self.scores_sql, [*self.args, first, last, manual], schema)
