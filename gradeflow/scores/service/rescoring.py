"""Rescoring one item for the whole cohort after its points (or answer key) changed, in the worker."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock, context
from gradeflow.core.errors import NotFound
from gradeflow.courses.service.assessments import get_assessment
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import grades
from gradeflow.jobs import JobName
from gradeflow.scores.commands import RescoreRequest
from gradeflow.scores.repository import rescoring as repository
from gradeflow.scores.repository.rescoring import RescoreRecord
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
) -> RescoreRecord:
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
    rescore_id = await repository.create(session, ref.id, target.id, body.mode, old_points, new_points, actor)
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
    await jobs.enqueue(queue, JobName.RESCORE_ITEM, jobs.job_id(JobName.RESCORE_ITEM, rescore_id), rescore_id)
    return await get(session, ref, rescore_id)


async def get(session: AsyncSession, ref: CourseRef, rescore_id: int) -> RescoreRecord:
    record = await repository.get(session, ref.id, rescore_id)
    if record is None:
        raise NotFound(f"Rescore {rescore_id} not found in this course.")
    return record


async def _rescore_chunk(
    session: AsyncSession, ref: CourseRef, actor: str, chunk: list[int], job: dict[str, Any]
) -> None:
    """Rescore one chunk, set-based: item scores, the totals and statuses that follow, stored grades,
    and an audit entry per changed score (which, like any score change, reopens a confirmed attempt)
    and per attempt whose status changed."""
    stamp = {**audit.stamp(ref.organization_id, ref.id, actor), "now": clock.now()}
    changed = await repository.rescore_chunk(session, job, stamp, chunk)
    targets = await repository.to_derive(session, chunk, changed, job["old"] != job["new"], job["item"])
    if not targets:
        return
    ids = [t.id for t in targets]
    await scores.derive_totals(session, ids)
    await late_results.apply(session, ref.id, attempt_ids=ids, actor=actor)
    await repository.audit_status_changes(session, stamp, targets)
    await grades.refresh_learners(session, ref.id, sorted({t.enrollment_id for t in targets}))


async def run(sessionmaker: async_sessionmaker[AsyncSession], rescore_id: int) -> str:
    """Worker side: rescore every attempt in chunks (each its own transaction, with its totals and
    stored grades), reporting progress. Claimed once; a chunk already done is idempotent."""
    async with sessionmaker() as session:
        job = await repository.claim(session, rescore_id)
        await session.commit()
    if job is None:
        return "not queued"
    ref = CourseRef(job.course_id, job.organization_id, "", frozenset())
    params = {
        "item": job.item_id,
        "mode": job.mode,
        "old": job.old_points,
        "new": job.new_points,
        "revision": job.revision,
    }
    try:
        async with sessionmaker() as session:
            attempts = np.array(await repository.attempts_to_rescore(session, job.assessment_id), dtype=np.int64)
        rescored = 0
        # The audit entries of the rescore carry its job's id, which ties each change to this rescore.
        token = context.request_id.set(jobs.job_id(JobName.RESCORE_ITEM, rescore_id))
        try:
            for start_at in range(0, len(attempts), CHUNK):
                chunk = attempts[start_at : start_at + CHUNK].tolist()
                async with sessionmaker() as session:
                    await _rescore_chunk(session, ref, job.requested_by, chunk, params)
                    rescored += len(chunk)
                    await repository.progress(session, rescore_id, rescored * 100 // max(len(attempts), 1), rescored)
                    await session.commit()
        finally:
            context.request_id.reset(token)
        status, error = "succeeded", None
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    async with sessionmaker() as session:
        await repository.finish(session, rescore_id, status, error, clock.now())
        await session.commit()
    return status
