"""Extensions and extra attempts: an assessment's overrides for one learner or one group (a name enrollments carry in
`groups`), each giving its own due date, extra attempts, or both.

What a learner ends up with is the one rule in gradeflow/deadlines/repository/due_dates.py (the latest due date
among the overrides that apply to them, the most extra attempts); everything that reads a learner's due date or allowed
attempts uses it: the late policy, the release rules, the results table, progress, attempts.

Every change is audited (`override.set` with old and new, `override.removed` with old; the learner or the group is
named) and the late policy is applied again to the results it can move: one learner's in the same transaction, a
group's by the worker (late_policies.request_application); the grades then follow (the worker's follow-up), as after
a score write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Required, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core.errors import NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.service.assessments import get_assessment
from gradeflow.courses.service.enrollments import get_enrollment
from gradeflow.deadlines.commands import OverrideIn
from gradeflow.deadlines.repository import overrides as repository
from gradeflow.deadlines.repository.overrides import Override, OverrideKey
from gradeflow.deadlines.service import late_policies, late_results
from gradeflow.grades.service import followup


class _Recorded(TypedDict, total=False):
    """What an audit entry's old/new say of an override: its fields, and the group it is for (a learner is named
    by the entry's learner column)."""

    due_at: Required[datetime | None]
    extra_attempts: Required[int]
    reason: Required[str | None]
    group: str


async def list_overrides(
    session: AsyncSession, ref: CourseRef, assessment: str, limit: int, cursor: str | None, hide: bool = False
) -> Page[Override]:
    """The assessment's overrides, learners' and groups', in the order they were made. A caller kept from
    identities (`hide`: anonymity.concealed) on an anonymous assessment sees the groups' only: a learner's
    extension and its reason would tell who a candidate is."""
    view = await get_assessment(session, ref, assessment)
    only_groups = hide and await repository.hides_identities(session, view.assessment.id)
    rows = await repository.overrides_after(
        session, view.assessment.id, only_groups=only_groups, after=last_id_after(cursor), limit=limit + 1
    )
    return page_of(rows, limit, lambda r: r.id)


async def put_learner(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    learner: str,
    body: OverrideIn,
    actor: str,
) -> Override:
    """Set the learner's own override of the assessment (PUT: replaces theirs)."""
    assessment_id = (await get_assessment(session, ref, assessment)).assessment.id
    enrollment_id = (await get_enrollment(session, ref, learner)).id
    target = _Target(assessment_id, assessment, enrollment_id=enrollment_id, learner=learner)
    return await _put(session, queue, ref, target, body, actor)


async def put_group(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str, group: str, body: OverrideIn, actor: str
) -> Override:
    """Set a group's override of the assessment (PUT: replaces it). 404 for a group no enrollment names, as
    archiving one is: a misspelt name must not quietly extend nobody's due date."""
    assessment_id = (await get_assessment(session, ref, assessment)).assessment.id
    await _check_group(session, ref, group)
    return await _put(session, queue, ref, _Target(assessment_id, assessment, group=group), body, actor)


async def delete_learner(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str, learner: str, actor: str
) -> None:
    """Remove the learner's own override (404 when they have none)."""
    assessment_id = (await get_assessment(session, ref, assessment)).assessment.id
    enrollment_id = (await get_enrollment(session, ref, learner)).id
    target = _Target(assessment_id, assessment, enrollment_id=enrollment_id, learner=learner)
    await _delete(session, queue, ref, target, actor)


async def delete_group(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str, group: str, actor: str
) -> None:
    """Remove a group's override (404 when it has none)."""
    assessment_id = (await get_assessment(session, ref, assessment)).assessment.id
    await _delete(session, queue, ref, _Target(assessment_id, assessment, group=group), actor)


# --- one override ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """An override's key: the assessment and either a learner (enrollment) or a group."""

    assessment_id: int
    assessment: str
    enrollment_id: int | None = None
    learner: str | None = None
    group: str | None = None

    @property
    def key(self) -> OverrideKey:
        return OverrideKey(self.assessment_id, self.enrollment_id, self.group)

    def recorded(self, values: Override | OverrideIn) -> _Recorded:
        """What an audit entry's old/new say of the override holding `values`."""
        entry: _Recorded = {"due_at": values.due_at, "extra_attempts": values.extra_attempts, "reason": values.reason}
        if self.group is not None:
            entry["group"] = self.group
        return entry

    @property
    def learners(self) -> list[int] | None:
        """The results the override can move, for the late policy (None: the whole assessment)."""
        return None if self.enrollment_id is None else [self.enrollment_id]

    def missing(self) -> NotFound:
        who = f"Learner {self.learner!r}" if self.group is None else f"Group {self.group!r}"
        return NotFound(f"{who} has no override of {self.assessment!r}.")


async def _check_group(session: AsyncSession, ref: CourseRef, group: str) -> None:
    if not await repository.group_named(session, ref.id, group):
        raise NotFound(f"Nobody in the course is in group {group!r}.")


async def _put(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, target: _Target, body: OverrideIn, actor: str
) -> Override:
    old = await repository.override_of(session, target.key, lock=True)
    new = target.recorded(body)
    if old is not None and target.recorded(old) == new:
        return old  # the same override again: nothing changes, nothing is recorded
    await repository.put_override(
        session, target.key, due_at=body.due_at, extra_attempts=body.extra_attempts, reason=body.reason, actor=actor
    )
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "override.set",
        learner=target.learner,
        assessment=target.assessment,
        old=None if old is None else target.recorded(old),
        new=new,
    )
    await _apply_late_policy(session, queue, ref, target, actor)
    found = await repository.override_of(session, target.key)
    assert found is not None  # written above, in this transaction
    return found


async def _delete(session: AsyncSession, queue: jobs.Queue, ref: CourseRef, target: _Target, actor: str) -> None:
    old = await repository.override_of(session, target.key, lock=True)
    if old is None:
        raise target.missing()
    await repository.delete_override(session, old.id)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "override.removed",
        learner=target.learner,
        assessment=target.assessment,
        old=target.recorded(old),
    )
    await _apply_late_policy(session, queue, ref, target, actor)


async def _apply_late_policy(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, target: _Target, actor: str
) -> None:
    """A due date moved: the late policy again for the results it can move, then the grades' follow-up. One
    learner's: inline (before the commit); a group's (maybe every learner of the course): by the worker, asked for
    in this transaction and enqueued after the commit (late_policies.request_application)."""
    if target.learners is None:
        requested_at = await late_policies.request_application(session, ref.id, [target.assessment_id])
        await session.commit()
        await late_policies.enqueue_application(queue, ref.id, requested_at)
        return
    await late_results.apply(
        session, ref.id, assessment_ids=[target.assessment_id], enrollment_ids=target.learners, actor=actor
    )
    await session.commit()
    await followup.ask(queue, ref.id)
