"""Item rescores' SQL: the rescore records, and one chunk of attempts rescored set-based."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit.repository import COLUMNS as AUDIT_COLUMNS
from gradeflow.core.statuses import HANDED_IN_STATUSES


@dataclass(frozen=True, slots=True)
class RescoreRecord:
    id: int
    assessment: str
    item: str
    mode: str
    old_points: Decimal
    new_points: Decimal
    status: str
    progress: int
    rescored: int
    requested_by: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedRescore:
    """A queued rescore the worker took on: what it needs to run it."""

    course_id: int
    organization_id: int
    item_id: int
    assessment_id: int
    revision: int
    mode: str
    old_points: Decimal
    new_points: Decimal
    requested_by: str


@dataclass(frozen=True, slots=True)
class ToDerive:
    """An attempt whose total follows a rescore, with its status and learner before."""

    id: int
    status: str
    enrollment_id: int


_CREATE = text(
    """
    INSERT INTO item_rescores (course_id, item_id, mode, old_points, new_points, requested_by)
    VALUES (:c, :i, :m, :old, :new, :by) RETURNING id
    """
)

_GET = text(
    """
    SELECT r.id, a.external_id AS assessment, i.external_id AS item, r.mode, r.old_points, r.new_points,
           r.status, r.progress, r.rescored, r.requested_by, r.error, r.created_at, r.finished_at
    FROM item_rescores r JOIN items i ON i.id = r.item_id JOIN assessments a ON a.id = i.assessment_id
    WHERE r.id = :id AND r.course_id = :c
    """
)

# Rescore the item's scores in one chunk of attempts, appending an audit entry per changed score, in
# one statement; returns the attempts whose score changed.
_RESCORE = text(
    f"""
    WITH before AS (
      SELECT sc.attempt_id, sc.item_id, sc.earned, sc.possible, sc.source, sc.scored_by
      FROM item_scores sc JOIN attempts t ON t.id = sc.attempt_id
      WHERE sc.item_id = :item AND sc.attempt_id = ANY(:attempts) AND t.status = ANY(:statuses)
    ), changed AS (
      UPDATE item_scores sc SET
        earned = CASE WHEN CAST(:mode AS text) = 'full_credit' THEN CAST(:new AS numeric)
                      WHEN CAST(:mode AS text) = 'scale' AND CAST(:old AS numeric) > 0
                        THEN round(sc.earned * CAST(:new AS numeric) / CAST(:old AS numeric), 6)
                      ELSE sc.earned END,
        possible = CAST(:new AS numeric), item_revision = :revision, scored_at = :now
      FROM before b WHERE sc.attempt_id = b.attempt_id AND sc.item_id = b.item_id
      RETURNING sc.attempt_id, sc.earned, sc.possible, sc.source, sc.scored_by
    ), audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT :org, :course, :now, :actor, :rid, 'item_score.rescore', e.external_id, a.external_id, i.external_id,
             jsonb_build_object('earned', trim_scale(b.earned), 'possible', trim_scale(b.possible),
                                'source', b.source, 'graded_by', b.scored_by),
             jsonb_build_object('earned', trim_scale(c.earned), 'possible', trim_scale(c.possible),
                                'source', c.source, 'graded_by', c.scored_by)
      FROM changed c JOIN before b ON b.attempt_id = c.attempt_id
      JOIN attempts t ON t.id = c.attempt_id JOIN enrollments e ON e.id = t.enrollment_id
      JOIN items i ON i.id = :item JOIN assessments a ON a.id = i.assessment_id
      WHERE (b.earned, b.possible) IS DISTINCT FROM (c.earned, c.possible)
      ORDER BY c.attempt_id
      RETURNING 1
    )
    SELECT c.attempt_id FROM changed c JOIN before b ON b.attempt_id = c.attempt_id
    WHERE (b.earned, b.possible) IS DISTINCT FROM (c.earned, c.possible)
    """  # noqa: S608  (constant SQL)
)

# The attempts whose totals follow, with their status and learner before: those whose score changed,
# and, when the points changed, those scored on other items only (their points possible count the
# item's new points). An attempt with no item score has no total to derive.
_TO_DERIVE = text(
    """
    SELECT t.id, t.status, t.enrollment_id FROM attempts t
    WHERE t.id = ANY(:attempts) AND t.status = ANY(:statuses)
      AND EXISTS (SELECT 1 FROM item_scores sc WHERE sc.attempt_id = t.id)
      AND (t.id = ANY(:changed) OR (CAST(:points_changed AS boolean)
           AND NOT EXISTS (SELECT 1 FROM item_scores sc WHERE sc.attempt_id = t.id AND sc.item_id = :item)))
    ORDER BY t.id
    """
)

# An audit entry per attempt whose status the new totals changed (statuses before: :ids, :was).
_STATUS_AUDIT = text(
    f"""
    INSERT INTO audit_log ({AUDIT_COLUMNS})
    SELECT :org, :course, :now, :actor, :rid, 'attempt.status_changed', e.external_id, a.external_id, NULL,
           jsonb_build_object('status', b.status), jsonb_build_object('status', t.status)
    FROM unnest(CAST(:ids AS bigint[]), CAST(:was AS text[])) AS b(id, status)
    JOIN attempts t ON t.id = b.id JOIN enrollments e ON e.id = t.enrollment_id
    JOIN assessments a ON a.id = t.assessment_id
    WHERE t.status <> b.status ORDER BY t.id
    """  # noqa: S608  (constant SQL)
)

_CLAIM = text(
    """
    UPDATE item_rescores r SET status = 'running'
    FROM items i, courses c
    WHERE r.id = :id AND r.status = 'queued' AND i.id = r.item_id AND c.id = r.course_id
    RETURNING r.course_id, c.organization_id, r.item_id, i.assessment_id, i.revision, r.mode,
              r.old_points, r.new_points, r.requested_by
    """
)

_ATTEMPTS = text("SELECT id FROM attempts WHERE assessment_id = :a AND status = ANY(:s) ORDER BY id")

_PROGRESS = text("UPDATE item_rescores SET progress = :p, rescored = :n WHERE id = :id")

_FINISH = text(
    """
    UPDATE item_rescores SET status = CAST(:s AS text), error = :e, finished_at = :now,
      progress = CASE WHEN CAST(:s AS text) = 'succeeded' THEN 100 ELSE progress END WHERE id = :id
    """
)

_STATUSES = list(HANDED_IN_STATUSES)  # a rescore of an item re-marks the handed-in work


async def create(
    session: AsyncSession, course_id: int, item_id: int, mode: str, old: Decimal, new: Decimal, by: str
) -> int:
    """Record a queued rescore of the item; its id."""
    rescore_id = await session.scalar(
        _CREATE, {"c": course_id, "i": item_id, "m": mode, "old": old, "new": new, "by": by}
    )
    return int(rescore_id)


async def get(session: AsyncSession, course_id: int, rescore_id: int) -> RescoreRecord | None:
    row = (await session.execute(_GET, {"id": rescore_id, "c": course_id})).mappings().first()
    return None if row is None else RescoreRecord(**row)


async def claim(session: AsyncSession, rescore_id: int) -> ClaimedRescore | None:
    """Take a queued rescore on (None: not queued: taken already, or gone)."""
    row = (await session.execute(_CLAIM, {"id": rescore_id})).first()
    return None if row is None else ClaimedRescore(*row)


async def attempts_to_rescore(session: AsyncSession, assessment_id: int) -> list[int]:
    """The assessment's attempts a rescore touches (handed in or graded), by id."""
    return list((await session.scalars(_ATTEMPTS, {"a": assessment_id, "s": _STATUSES})).all())


async def rescore_chunk(
    session: AsyncSession, job: Mapping[str, Any], stamp: Mapping[str, Any], attempts: list[int]
) -> list[int]:
    """Rescore the item's scores on these attempts with an audit entry per changed score (`job`: item, mode,
    old, new, revision; `stamp`: the audit figures and now); the attempts whose score changed."""
    changed = await session.scalars(_RESCORE, {**job, **stamp, "attempts": attempts, "statuses": _STATUSES})
    return list(changed.all())


async def to_derive(
    session: AsyncSession, attempts: list[int], changed: list[int], points_changed: bool, item_id: int
) -> list[ToDerive]:
    """The attempts of the chunk whose totals follow the rescore, with their status and learner before."""
    rows = await session.execute(
        _TO_DERIVE,
        {
            "attempts": attempts,
            "statuses": _STATUSES,
            "changed": changed,
            "points_changed": points_changed,
            "item": item_id,
        },
    )
    return [ToDerive(r.id, r.status, r.enrollment_id) for r in rows]


async def audit_status_changes(session: AsyncSession, stamp: Mapping[str, Any], before: list[ToDerive]) -> None:
    """An audit entry per attempt whose status is no longer the one it had before."""
    await session.execute(_STATUS_AUDIT, {**stamp, "ids": [t.id for t in before], "was": [t.status for t in before]})


async def progress(session: AsyncSession, rescore_id: int, percent: int, rescored: int) -> None:
    await session.execute(_PROGRESS, {"id": rescore_id, "p": percent, "n": rescored})


async def finish(session: AsyncSession, rescore_id: int, status: str, error: str | None, now: datetime) -> None:
    await session.execute(_FINISH, {"id": rescore_id, "s": status, "e": error, "now": now})
