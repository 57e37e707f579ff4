"""Rescoring one item for the whole cohort after its points (or answer key) changed, in the worker."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock, context, jobs
from shared.errors import NotFound
from shared.services import audit, grades, scores
from shared.services.access import CourseRef
from shared.services.assessments import get_assessment
from shared.services.inputs import RescoreRequest

CHUNK = 5000


async def start(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    item: str,
    body: RescoreRequest,
    actor: str,
) -> dict[str, Any]:
    """Change the item's points now (its revision goes up, so existing scores show as stale) and
    queue the rescore of every attempt's score for it."""
    view = await get_assessment(session, ref, assessment)
    target = next((i for i in view.items if i.external_id == item), None)
    if target is None:
        raise NotFound(f"Item {item!r} not found in {assessment!r}.")
    old_points = target.points_possible
    new_points = body.points_possible if body.points_possible is not None else old_points
    target.points_possible = new_points
    target.revision += 1
    view.assessment.points_possible = sum((i.points_possible for i in view.items), Decimal(0))
    rescore_id: int = await session.scalar(
        text(
            """
            INSERT INTO item_rescores (course_id, item_id, mode, old_points, new_points, requested_by)
            VALUES (:c, :i, :m, :old, :new, :by) RETURNING id
            """
        ),
        {"c": ref.id, "i": target.id, "m": body.mode, "old": old_points, "new": new_points, "by": actor},
    )
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "item.rescore",
        assessment=assessment,
        item=item,
        old={"points_possible": float(old_points), "revision": target.revision - 1},
        new={
            "points_possible": float(new_points),
            "revision": target.revision,
            "mode": body.mode,
            "rescore": rescore_id,
        },
    )
    await session.commit()
    await jobs.enqueue(queue, jobs.RESCORE_ITEM, f"rescore-{rescore_id}", rescore_id)
    return await get(session, ref, rescore_id)


async def get(session: AsyncSession, ref: CourseRef, rescore_id: int) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                text(
                    """
                SELECT r.id, a.external_id AS assessment, i.external_id AS item, r.mode, r.old_points, r.new_points,
                       r.status, r.progress, r.rescored, r.requested_by, r.error, r.created_at, r.finished_at
                FROM item_rescores r JOIN items i ON i.id = r.item_id JOIN assessments a ON a.id = i.assessment_id
                WHERE r.id = :id AND r.course_id = :c
                """
                ),
                {"id": rescore_id, "c": ref.id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Rescore {rescore_id} not found in this course.")
    return dict(row)


# Attempts a rescore touches: handed in (submitted, pending grading) or graded. Unfinished and
# cancelled attempts keep their scores (stale against the item's new revision) and their status.
RESCORED_STATUSES = ["submitted", "pending_grading", "graded"]

# Rescore the item's scores in one chunk of attempts; returns each changed score, before and after.
_RESCORE = text(
    """
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
    )
    SELECT c.attempt_id, e.external_id AS learner,
           jsonb_build_object('earned', trim_scale(b.earned), 'possible', trim_scale(b.possible),
                              'source', b.source, 'graded_by', b.scored_by) AS old,
           jsonb_build_object('earned', trim_scale(c.earned), 'possible', trim_scale(c.possible),
                              'source', c.source, 'graded_by', c.scored_by) AS new
    FROM changed c JOIN before b ON b.attempt_id = c.attempt_id
    JOIN attempts t ON t.id = c.attempt_id JOIN enrollments e ON e.id = t.enrollment_id
    WHERE (b.earned, b.possible) IS DISTINCT FROM (c.earned, c.possible)
    ORDER BY c.attempt_id
    """
)

# The attempts whose totals follow: those whose score changed, and, when the points changed, those
# scored on other items only (their points possible count the item's new points). An attempt with
# no item score has no total to derive.
_TO_DERIVE = text(
    """
    SELECT t.id FROM attempts t
    WHERE t.id = ANY(:attempts) AND t.status = ANY(:statuses)
      AND EXISTS (SELECT 1 FROM item_scores sc WHERE sc.attempt_id = t.id)
      AND (t.id = ANY(:changed) OR (CAST(:points_changed AS boolean)
           AND NOT EXISTS (SELECT 1 FROM item_scores sc WHERE sc.attempt_id = t.id AND sc.item_id = :item)))
    ORDER BY t.id
    """
)

_ATTEMPT_STATE = text(
    """
    SELECT t.id, t.enrollment_id, e.external_id AS learner, t.status
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id WHERE t.id = ANY(:ids)
    """
)


async def _rescore_chunk(
    session: AsyncSession, ref: CourseRef, actor: str, assessment: str, item: str, chunk: list[int], job: dict[str, Any]
) -> None:
    """Rescore one chunk: item scores, the totals and statuses that follow, stored grades, and an
    audit entry per changed score (which, like any score change, reopens a confirmed attempt) and
    per attempt whose status changed."""
    changed = (
        await session.execute(_RESCORE, {**job, "attempts": chunk, "statuses": RESCORED_STATUSES, "now": clock.now()})
    ).all()
    entries: list[dict[str, Any]] = [
        {
            "action": "item_score.rescore",
            "learner": learner,
            "assessment": assessment,
            "item": item,
            "old": old,
            "new": new,
        }
        for _, learner, old, new in changed
    ]
    targets = list(
        (
            await session.scalars(
                _TO_DERIVE,
                {
                    "attempts": chunk,
                    "statuses": RESCORED_STATUSES,
                    "changed": [r[0] for r in changed],
                    "points_changed": job["old"] != job["new"],
                    "item": job["item"],
                },
            )
        ).all()
    )
    before = {r.id: r for r in await session.execute(_ATTEMPT_STATE, {"ids": targets})}
    await scores.derive_totals(session, targets)
    for r in await session.execute(_ATTEMPT_STATE, {"ids": targets}):
        if before[r.id].status != r.status:
            entries.append(
                {
                    "action": "attempt.status_changed",
                    "learner": r.learner,
                    "assessment": assessment,
                    "old": {"status": before[r.id].status},
                    "new": {"status": r.status},
                }
            )
    await audit.record_many(session, ref.organization_id, ref.id, actor, entries)
    if before:
        await grades.refresh_learners(session, ref.id, sorted({r.enrollment_id for r in before.values()}))


async def run(sessionmaker: async_sessionmaker[AsyncSession], rescore_id: int) -> str:
    """Worker side: rescore every attempt in chunks (each its own transaction, with its totals and
    stored grades), reporting progress. Claimed once; a chunk already done is idempotent."""
    async with sessionmaker() as session:
        job = (
            await session.execute(
                text(
                    """
                    UPDATE item_rescores r SET status = 'running'
                    FROM items i, courses c
                    WHERE r.id = :id AND r.status = 'queued' AND i.id = r.item_id AND c.id = r.course_id
                    RETURNING r.course_id, c.organization_id, r.item_id, i.assessment_id, i.revision, r.mode,
                              r.old_points, r.new_points, r.requested_by, i.external_id,
                              (SELECT a.external_id FROM assessments a WHERE a.id = i.assessment_id)
                    """
                ),
                {"id": rescore_id},
            )
        ).first()
        await session.commit()
    if job is None:
        return "not queued"
    course_id, org, item_id, assessment_id, revision, mode, old, new, actor, item, assessment = job
    ref = CourseRef(course_id, org, "", frozenset())
    params = {"item": item_id, "mode": mode, "old": old, "new": new, "revision": revision}
    try:
        async with sessionmaker() as session:
            attempts = np.array(
                (
                    await session.scalars(
                        text("SELECT id FROM attempts WHERE assessment_id = :a AND status = ANY(:s) ORDER BY id"),
                        {"a": assessment_id, "s": RESCORED_STATUSES},
                    )
                ).all(),
                dtype=np.int64,
            )
        rescored = 0
        token = context.request_id.set(f"rescore-{rescore_id}")
        try:
            for start_at in range(0, len(attempts), CHUNK):
                chunk = attempts[start_at : start_at + CHUNK].tolist()
                async with sessionmaker() as session:
                    await _rescore_chunk(session, ref, actor, assessment, item, chunk, params)
                    rescored += len(chunk)
                    await session.execute(
                        text("UPDATE item_rescores SET progress = :p, rescored = :n WHERE id = :id"),
                        {"id": rescore_id, "p": rescored * 100 // max(len(attempts), 1), "n": rescored},
                    )
                    await session.commit()
        finally:
            context.request_id.reset(token)
        status, error = "succeeded", None
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    async with sessionmaker() as session:
        await session.execute(
            text(
                """
                UPDATE item_rescores SET status = CAST(:s AS text), error = :e, finished_at = :now,
                  progress = CASE WHEN CAST(:s AS text) = 'succeeded' THEN 100 ELSE progress END WHERE id = :id
                """
            ),
            {"id": rescore_id, "s": status, "e": error, "now": clock.now()},
        )
        await session.commit()
    return status
