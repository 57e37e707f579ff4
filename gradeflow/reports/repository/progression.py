"""The progression reports' SQL: the initial test a final test names, what the two tests share, and
per chunk of learners when they took them, their levels per question or skill, and what was published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.reports.repository.records import TAKEN_IN_PERIOD


async def initial_of(session: AsyncSession, course_id: int, final: str) -> str | None:
    """The external id of the initial test that the course's assessment `final` names, if any."""
    found = await session.scalar(
        text(
            """
            SELECT i.external_id FROM assessments f JOIN assessments i ON i.id = f.initial_assessment_id
            WHERE f.course_id = :c AND f.external_id = :a
            """
        ),
        {"c": course_id, "a": final},
    )
    return None if found is None else str(found)


# Skills tagged on items of both tests (a skill is compared only if each test measures it).
_SHARED_SKILLS = """
    SELECT EXISTS (
      SELECT 1 FROM items i CROSS JOIN LATERAL jsonb_to_recordset(i.skills) AS s(skill text, weight numeric)
      WHERE i.assessment_id = :initial
        AND s.skill IN (SELECT s2.skill FROM items i2
                        CROSS JOIN LATERAL jsonb_to_recordset(i2.skills) AS s2(skill text, weight numeric)
                        WHERE i2.assessment_id = :final))
"""


async def share_skills(session: AsyncSession, initial: int, final: int) -> bool:
    """Whether items of both tests are tagged with a same skill."""
    return bool(await session.scalar(text(_SHARED_SKILLS), {"initial": initial, "final": final}))


# Per learner of a chunk (ids ascending): a course team member?, and whether each test's attempt was
# taken in the period ("taken" as in the group report: submitted, else started, else first recorded).
_TEAM_AND_PERIOD = f"""
    SELECT e.is_course_team,
           coalesce(bool_or(t.assessment_id = :initial AND {TAKEN_IN_PERIOD}), false),
           coalesce(bool_or(t.assessment_id = :final AND {TAKEN_IN_PERIOD}), false)
    FROM enrollments e
    LEFT JOIN attempts t ON t.enrollment_id = e.id AND t.assessment_id IN (:initial, :final)
    WHERE e.id = ANY(CAST(:ids AS bigint[])) GROUP BY e.id, e.is_course_team ORDER BY e.id
"""  # noqa: S608  (constant SQL)


async def team_and_period(
    session: AsyncSession, initial: int, final: int, ids: np.ndarray, since: datetime | None, until: datetime | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per learner (`ids`, ascending): on the course team?; both tests taken in the period?"""
    rows = (
        await session.execute(
            text(_TEAM_AND_PERIOD),
            {"initial": initial, "final": final, "ids": ids.tolist(), "since": since, "until": until},
        )
    ).all()
    team = np.array([bool(r[0]) for r in rows], dtype=bool)
    in_period = np.array([bool(r[1]) and bool(r[2]) for r in rows], dtype=bool)
    return team, in_period


# Per question or skill, the sums over learners with a score on it in both tests: of their levels
# before and after (percent). `{keys}` gives each scored item its keys and weights.
_PART_SUMS = """
    WITH levels AS (
      SELECT t.enrollment_id, t.assessment_id = :final AS after, k.key,
             sum(k.weight * sc.earned) * 100 / nullif(sum(k.weight * sc.possible), 0) AS level
      FROM attempts t JOIN item_scores sc ON sc.attempt_id = t.id JOIN items i ON i.id = sc.item_id
      CROSS JOIN LATERAL ({keys}) AS k(key, weight)
      WHERE t.assessment_id IN (:initial, :final) AND t.enrollment_id = ANY(CAST(:ids AS bigint[]))
      GROUP BY 1, 2, 3
    )
    SELECT b.key, count(*), CAST(sum(b.level) AS float8), CAST(sum(a.level) AS float8)
    FROM levels b JOIN levels a ON a.enrollment_id = b.enrollment_id AND a.key = b.key AND a.after
    WHERE NOT b.after AND b.level IS NOT NULL AND a.level IS NOT NULL
    GROUP BY b.key
"""
_KEYS = {
    "item": "SELECT i.external_id, CAST(1 AS numeric)",
    "skill": "SELECT s.skill, s.weight FROM jsonb_to_recordset(i.skills) AS s(skill text, weight numeric)",
}


@dataclass(frozen=True, slots=True)
class PartSums:
    """A question's or skill's learners compared and the sums of their levels before and after."""

    key: str
    learners: int
    before: float
    after: float


async def part_sums(
    session: AsyncSession, by: Literal["item", "skill"], initial: int, final: int, ids: np.ndarray
) -> list[PartSums]:
    """Per question (`by` item: shared item external ids) or skill, over the learners `ids`."""
    rows = await session.execute(
        text(_PART_SUMS.format(keys=_KEYS[by])), {"initial": initial, "final": final, "ids": ids.tolist()}
    )
    return [PartSums(str(key), int(n), float(before), float(after)) for key, n, before, after in rows]


@dataclass(frozen=True, slots=True)
class PublishedScore:
    """A final (not excused) result as published to the learner."""

    enrollment_id: int
    assessment_id: int
    earned: float
    possible: float
    items: list[dict[str, Any]] | None  # only when published with its items


async def published_scores(session: AsyncSession, initial: int, final: int, ids: np.ndarray) -> list[PublishedScore]:
    """The learners' published, final (not excused) results on the two tests."""
    rows = await session.execute(
        text(
            """
            SELECT pr.enrollment_id, pr.assessment_id, CAST(pr.earned AS float8), CAST(pr.possible AS float8), pr.items
            FROM published_results pr
            WHERE pr.enrollment_id = ANY(CAST(:ids AS bigint[])) AND pr.assessment_id IN (:initial, :final)
              AND NOT pr.excused AND pr.earned IS NOT NULL
            """
        ),
        {"ids": ids.tolist(), "initial": initial, "final": final},
    )
    return [PublishedScore(int(e), int(a), float(x), float(p), items) for e, a, x, p, items in rows]


@dataclass(frozen=True, slots=True)
class ItemSkill:
    assessment_id: int
    item: str  # the item's external id
    skill: str
    weight: float


async def item_skills(session: AsyncSession, initial: int, final: int) -> list[ItemSkill]:
    """The skills (and weights) of each item of the two tests."""
    rows = await session.execute(
        text(
            """
            SELECT i.assessment_id, i.external_id, s.skill, CAST(s.weight AS float8)
            FROM items i CROSS JOIN LATERAL jsonb_to_recordset(i.skills) AS s(skill text, weight numeric)
            WHERE i.assessment_id IN (:initial, :final)
            """
        ),
        {"initial": initial, "final": final},
    )
    return [ItemSkill(int(a), str(i), str(s), float(w)) for a, i, s, w in rows]
