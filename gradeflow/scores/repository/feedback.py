"""Feedback's SQL: the attempt it is written on, the text on it or on one of its items, and the reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.repository.access import IN_SCOPE


@dataclass(frozen=True, slots=True)
class AttemptLookup:
    """A learner's attempt at an assessment as a path names them: which of the three exists, and whether the
    caller's scope covers the attempt."""

    assessment_id: int | None
    enrollment_id: int | None
    attempt_id: int | None
    in_scope: bool


@dataclass(frozen=True, slots=True)
class FeedbackText:
    item: str | None  # None: on the attempt as a whole
    text: str
    updated_by: str
    updated_at: datetime


_ATTEMPT = text(
    f"""
    SELECT a.id AS a_id, e.id AS e_id, t.id AS t_id, {IN_SCOPE} AS in_scope
    FROM (SELECT 1) one
    LEFT JOIN assessments a ON a.course_id = :c AND a.external_id = :a
    LEFT JOIN enrollments e ON e.course_id = :c AND e.external_id = :l
    LEFT JOIN attempts t ON t.assessment_id = a.id AND t.enrollment_id = e.id
    """  # noqa: S608  (constant SQL)
)

_ITEM = text("SELECT id FROM items WHERE assessment_id = :a AND external_id = :i")

_LOCK = text("SELECT text FROM feedback WHERE attempt_id = :t AND coalesce(item_id, 0) = coalesce(:i, 0) FOR UPDATE")

_DELETE = text("DELETE FROM feedback WHERE attempt_id = :t AND coalesce(item_id, 0) = coalesce(:i, 0)")

_UPSERT = text(
    """
    INSERT INTO feedback (attempt_id, item_id, text, updated_by, updated_at)
    VALUES (:t, :i, :text, :by, :now)
    ON CONFLICT (attempt_id, coalesce(item_id, 0)) DO UPDATE SET
      text = excluded.text, updated_by = excluded.updated_by, updated_at = excluded.updated_at
    """
)

_OF_ATTEMPT = text(
    """
    SELECT i.external_id AS item, f.text, f.updated_by, f.updated_at
    FROM feedback f LEFT JOIN items i ON i.id = f.item_id
    WHERE f.attempt_id = :t ORDER BY f.item_id IS NOT NULL, i.position, i.id
    """
)


async def attempt_of(
    session: AsyncSession, course_id: int, assessment: str, learner: str, scope: list[str] | None
) -> AttemptLookup:
    """The learner's attempt at the assessment (external ids), and whether `scope` (a grader's names; None:
    every attempt) covers it."""
    row = (await session.execute(_ATTEMPT, {"c": course_id, "a": assessment, "l": learner, "scope": scope})).one()
    return AttemptLookup(row.a_id, row.e_id, row.t_id, bool(row.in_scope))


async def item_id(session: AsyncSession, assessment_id: int, item: str) -> int | None:
    """The assessment's item with this external id (None: no such item)."""
    found = await session.scalar(_ITEM, {"a": assessment_id, "i": item})
    return None if found is None else int(found)


async def lock_text(session: AsyncSession, attempt_id: int, item_id: int | None) -> str | None:
    """The feedback text on the attempt (or its item), locked (None: none)."""
    found: str | None = await session.scalar(_LOCK, {"t": attempt_id, "i": item_id})
    return found


async def remove(session: AsyncSession, attempt_id: int, item_id: int | None) -> None:
    await session.execute(_DELETE, {"t": attempt_id, "i": item_id})


async def put(session: AsyncSession, attempt_id: int, item_id: int | None, new: str, by: str, now: datetime) -> None:
    await session.execute(_UPSERT, {"t": attempt_id, "i": item_id, "text": new, "by": by, "now": now})


async def of_attempt(session: AsyncSession, attempt_id: int) -> list[FeedbackText]:
    """The attempt's feedback: the whole attempt's first, then its items' in their order."""
    return [FeedbackText(**r) for r in (await session.execute(_OF_ATTEMPT, {"t": attempt_id})).mappings()]
