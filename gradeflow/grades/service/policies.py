"""A course's grading policy: versions, what-if previews, and the recompute that follows a change."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import jsonutil
from gradeflow.core.errors import NotFound, PreconditionFailed, ValidationFailed
from gradeflow.core.paging import Page, decode_cursor, page_of
from gradeflow.core.statuses import RecomputeStatus
from gradeflow.deadlines.service import late_policies
from gradeflow.grades.repository import policies as repository
from gradeflow.grades.repository.policies import PolicyVersion, Recompute
from gradeflow.grades.service import grades
from gradeflow.grades.service.catalogue import catalogue, course_policy, with_catalogue
from gradeflow.grades.service.sheets import load_sheet
from gradeflow.grading import engine, stats
from gradeflow.grading.policy import PolicyRules
from gradeflow.jobs import JobName, job_id
from gradeflow.notify import events


@dataclass(frozen=True, slots=True)
class PolicyView(PolicyVersion):
    """The active policy version, which version's grades are served, and the latest recompute."""

    grades_version: int | None
    recompute: Recompute | None


async def get_policy(session: AsyncSession, ref: CourseRef) -> PolicyView:
    """The active policy with its version and the state of the grades it produced."""
    active = await repository.active_policy(session, ref.id)
    if active is None:
        raise NotFound("This course has no grading policy yet; PUT one.")
    recompute = await repository.latest_recompute(session, ref.id)
    return PolicyView(**asdict(active.version), grades_version=active.grades_version, recompute=recompute)


async def put_policy(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, rules: PolicyRules, if_match: int | None, actor: str
) -> PolicyView:
    """Store a new policy version and start recomputing the course's grades under it.

    With `if_match`, the change applies only if that is still the active version (else 412).
    """
    current = await repository.lock_policy_version(session, ref.id)
    if if_match is not None and if_match != current:
        raise PreconditionFailed(f"The active policy is version {current}, not {if_match}; reload and retry.")
    if rules.preset in late_policies.NO_LATE_POLICY and (field := await late_policies.deducts(session, ref.id)):
        raise ValidationFailed.one(
            "/preset",
            f"The {rules.preset!r} preset has no late policy, and this course's enables {field}: turn it off first.",
        )
    policy = with_catalogue(await catalogue(session, ref.id), rules, pointer="")
    version = (current or 0) + 1
    body = rules.model_dump(mode="json")
    await repository.add_version(session, ref.id, version, _json(body), engine.fingerprint(policy), actor)
    previous = None
    if current is not None:
        previous = await repository.policy_body(session, ref.id, current)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "policy.set",
        old=None if previous is None else {"version": current, "policy": previous},
        new={"version": version, "policy": body},
    )
    recompute_id = await repository.queue_recompute(session, ref.id, version)
    served = await repository.grades_version(session, ref.id)
    await events.emit(
        session,
        ref.organization_id,
        "policy.changed",
        {"course": ref.external_id, "policy_version": version, "grades_version": served, "changed_by": actor},
    )
    await session.commit()
    await jobs.enqueue(queue, JobName.RECOMPUTE_GRADES, job_id(JobName.RECOMPUTE_GRADES, recompute_id), recompute_id)
    return await get_policy(session, ref)


async def recompute_after_change(session: AsyncSession, queue: jobs.Queue, course_id: int) -> None:
    """The course's assessments changed: recompute its grades under the active policy (if any)."""
    version = await repository.policy_version(session, course_id)
    if version is None:
        return
    recompute_id = await repository.queue_recompute(session, course_id, version)
    await session.commit()
    await jobs.enqueue(queue, JobName.RECOMPUTE_GRADES, job_id(JobName.RECOMPUTE_GRADES, recompute_id), recompute_id)


async def list_versions(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[PolicyVersion]:
    """Every version, newest first."""
    before = decode_cursor(cursor)
    rows = await repository.versions_page(session, ref.id, before if isinstance(before, int) else None, limit + 1)
    return page_of(rows, limit, lambda r: r.version)


async def run_recompute(sessionmaker: async_sessionmaker[AsyncSession], recompute_id: int) -> str:
    """Worker side: recompute a course under one version in chunks, then serve it (all at once).

    Claimed with a conditional update, so a job delivered twice runs once.
    """
    async with sessionmaker() as session:
        claimed = await repository.claim_recompute(session, recompute_id)
        await session.commit()
    if claimed is None:
        return "not queued"
    course_id, version = claimed
    try:
        return await _recompute(sessionmaker, recompute_id, course_id, version)
    except Exception as exc:
        async with sessionmaker() as session:
            await _finish(session, recompute_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise


async def _recompute(
    sessionmaker: async_sessionmaker[AsyncSession], recompute_id: int, course_id: int, version: int
) -> str:
    async with sessionmaker() as session:
        policy = await course_policy(session, course_id, version)
        total = await repository.learner_count(session, course_id)
    done, after = 0, 0
    while True:
        async with sessionmaker() as session:
            ids = await repository.share_learners_after(session, course_id, after, grades.CHUNK)
            if not ids:
                break
            await grades.compute_and_store(session, course_id, version, policy, np.array(ids, dtype=np.int64))
            done += len(ids)
            after = ids[-1]
            progress = min(99, done * 100 // max(total or 1, 1))
            await repository.recompute_progress(session, recompute_id, progress, f"{done} of {total} learners")
            await session.commit()
    async with sessionmaker() as session:
        active = await repository.lock_policy_version(session, course_id)
        if active != version:  # a newer policy arrived; its own recompute will switch
            await repository.drop_grades_of_version(session, course_id, version)
            await _finish(session, recompute_id, "superseded", message=f"version {active} replaced it")
            return "superseded"
        await repository.serve_version(session, course_id, version)
        await _finish(session, recompute_id, "succeeded", message=f"{done} learners graded")
    return "succeeded"


async def _finish(
    session: AsyncSession,
    recompute_id: int,
    status: RecomputeStatus,
    message: str | None = None,
    error: str | None = None,
) -> None:
    await repository.finish_recompute(session, recompute_id, status, message, error)
    await session.commit()


class Histogram(TypedDict):
    bins: list[str]  # "0-10" ... "90-100"
    counts: list[int]


# The preview counts percents per tenth of the range; each bin is labelled with its edges.
_BINS = 10
_BIN_LABELS = tuple(f"{low:g}-{high:g}" for low, high in itertools.pairwise(stats.edges(_BINS).tolist()))


@dataclass(frozen=True, slots=True)
class Distribution:
    """Learners per final letter ("none": without one) and per tenth of the percent range, and the mean percent."""

    letters: dict[str, int]
    histogram: Histogram
    mean: float | None


@dataclass(frozen=True, slots=True)
class LetterChange:
    """A learner whose final letter the draft changes."""

    learner: str
    from_: str | None
    to: str | None
    percent_from: float | None
    percent_to: float | None


@dataclass(frozen=True, slots=True)
class Preview:
    """A draft policy on the course's real scores: distributions before and after, the letters it changes (the first
    1000, and how many in all)."""

    learners: int
    before: Distribution
    after: Distribution
    changed: list[LetterChange]
    changed_count: int


async def preview(session: AsyncSession, ref: CourseRef, rules: PolicyRules) -> Preview:
    """A draft policy on the course's real scores, nothing saved: distributions before and after,
    and the learners whose letter changes."""
    policy = with_catalogue(await catalogue(session, ref.id), rules, pointer="")
    await grades.bring_current(session, ref.id)
    stored = {
        r.enrollment_id: (r.learner, r.final_grade, r.final_percent)
        for r in await repository.served_final_grades(session, ref.id)
    }
    ids = np.array(sorted(stored), dtype=np.int64)
    after: dict[int, tuple[str | None, float | None]] = {}
    for start in range(0, len(ids), grades.CHUNK):
        chunk = ids[start : start + grades.CHUNK]
        sheet = await load_sheet(session, ref.id, policy, chunk)
        for eid, result in zip(chunk.tolist(), engine.PRESETS[policy.preset](policy, sheet), strict=True):
            after[eid] = (result.final.grade, result.final.percent)
    changes = [
        LetterChange(stored[e][0], stored[e][1], after[e][0], _num(stored[e][2]), after[e][1])
        for e in ids.tolist()
        if stored[e][1] != after[e][0]
    ]
    return Preview(
        learners=len(ids),
        before=_distribution([stored[e][1] for e in stored], [_num(stored[e][2]) for e in stored]),
        after=_distribution([a[0] for a in after.values()], [a[1] for a in after.values()]),
        changed=changes[:1000],
        changed_count=len(changes),
    )


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def _distribution(letters: list[str | None], percents: list[float | None]) -> Distribution:
    values = [p for p in percents if p is not None]
    return Distribution(
        letters=dict(Counter(letter or "none" for letter in letters)),
        histogram={"bins": list(_BIN_LABELS), "counts": stats.histogram(values, _BINS)},
        mean=stats.mean(values),
    )


def _json(value: Any) -> str:
    return jsonutil.dumps(value)
