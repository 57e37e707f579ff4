"""Rescoring one item for the whole cohort after its points (or answer key) changed, in the worker."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.service.access import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock, context
from gradeflow.core.errors import NotFound
from gradeflow.courses.service.assessments import get_assessment
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import grades
from gradeflow.scores.commands import RescoreRequest
from gradeflow.scores.service import scores

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

# Rescore the item's scores in one chunk of attempts, appending an audit entry per changed score, in
# one statement; returns the attempts whose score changed.
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
    ), audited AS (
      INSERT INTO audit_log (organization_id, course_id, at, actor, request_id, action, learner, assessment, item,
                             old, new)
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
    """
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
    """
    INSERT INTO audit_log (organization_id, course_id, at, actor, request_id, action, learner, assessment, old, new)
    SELECT :org, :course, :now, :actor, :rid, 'attempt.status_changed', e.external_id, a.external_id,
           jsonb_build_object('status', b.status), jsonb_build_object('status', t.status)
    FROM unnest(CAST(:ids AS bigint[]), CAST(:was AS text[])) AS b(id, status)
    JOIN attempts t ON t.id = b.id JOIN enrollments e ON e.id = t.enrollment_id
    JOIN assessments a ON a.id = t.assessment_id
    WHERE t.status <> b.status ORDER BY t.id
    """
)


async def _rescore_chunk(
    session: AsyncSession, ref: CourseRef, actor: str, chunk: list[int], job: dict[str, Any]
) -> None:
    """Rescore one chunk, set-based: item scores, the totals and statuses that follow, stored grades,
    and an audit entry per changed score (which, like any score change, reopens a confirmed attempt)
    and per attempt whose status changed."""
    stamp = {**audit.stamp(ref.organization_id, ref.id, actor), "now": clock.now()}
    changed = (
        await session.scalars(_RESCORE, {**job, **stamp, "attempts": chunk, "statuses": RESCORED_STATUSES})
    ).all()
    targets = (
        await session.execute(
            _TO_DERIVE,
            {
                "attempts": chunk,
                "statuses": RESCORED_STATUSES,
                "changed": list(changed),
                "points_changed": job["old"] != job["new"],
                "item": job["item"],
            },
        )
    ).all()
    if not targets:
        return
    ids = [t.id for t in targets]
    await scores.derive_totals(session, ids)
    await late_results.apply(session, ref.id, attempt_ids=ids, actor=actor)
    await session.execute(_STATUS_AUDIT, {**stamp, "ids": ids, "was": [t.status for t in targets]})
    await grades.refresh_learners(session, ref.id, sorted({t.enrollment_id for t in targets}))


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
                              r.old_points, r.new_points, r.requested_by
                    """
                ),
                {"id": rescore_id},
            )
        ).first()
        await session.commit()
    if job is None:
        return "not queued"
    course_id, org, item_id, assessment_id, revision, mode, old, new, actor = job
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
                    await _rescore_chunk(session, ref, actor, chunk, params)
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
