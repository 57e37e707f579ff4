"""Extensions and extra attempts: an assessment's overrides for one learner or one group (a name enrollments carry in
`groups`), each giving its own due date, extra attempts, or both.

What a learner ends up with is the one rule in gradeflow/deadlines/service/due_dates.py (the latest due date among the
overrides that apply to them, the most extra attempts); everything that reads a learner's due date or allowed
attempts uses it: the late policy, the release rules, the results table, progress, attempts.

Every change is audited (`override.set` with old and new, `override.removed` with old; the learner or the group is
named) and the late policy is applied again to the results it can move: one learner's in the same transaction, a
group's by the worker (late_policies.request_application); the grades then follow (the worker's follow-up), as after
a score write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.service.access import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core.errors import NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.service.assessments import get_assessment
from gradeflow.courses.service.enrollments import get_enrollment
from gradeflow.deadlines.commands import OverrideIn
from gradeflow.deadlines.service import late_policies, late_results
from gradeflow.grades.service import followup
from gradeflow.marking.service import anonymity

_FIELDS = ("due_at", "extra_attempts", "reason")

_SELECT = """
    SELECT o.id, e.external_id AS learner, o.group_name AS "group", o.due_at, o.extra_attempts, o.reason,
           o.created_by, o.created_at, o.updated_at
    FROM assessment_overrides o LEFT JOIN enrollments e ON e.id = o.enrollment_id
    WHERE o.assessment_id = :a
"""


_HIDDEN = text(f"SELECT {anonymity.HIDDEN} FROM assessments a WHERE a.id = :a")  # noqa: S608 (constant SQL)


async def list_overrides(
    session: AsyncSession, ref: CourseRef, assessment: str, limit: int, cursor: str | None, hide: bool = False
) -> Page[dict[str, Any]]:
    """The assessment's overrides, learners' and groups', in the order they were made. A caller kept from
    identities (`hide`: anonymity.concealed) on an anonymous assessment sees the groups' only: a learner's
    extension and its reason would tell who a candidate is."""
    view = await get_assessment(session, ref, assessment)
    only_groups = hide and bool(await session.scalar(_HIDDEN, {"a": view.assessment.id}))
    rows = await session.execute(
        text(
            _SELECT
            + (" AND o.group_name IS NOT NULL" if only_groups else "")
            + " AND o.id > :after ORDER BY o.id LIMIT :lim"
        ),
        {"a": view.assessment.id, "after": last_id_after(cursor), "lim": limit + 1},
    )
    return page_of([dict(r) for r in rows.mappings()], limit, lambda r: r["id"])


async def put_learner(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    learner: str,
    body: OverrideIn,
    actor: str,
) -> dict[str, Any]:
    """Set the learner's own override of the assessment (PUT: replaces theirs)."""
    assessment_id = (await get_assessment(session, ref, assessment)).assessment.id
    enrollment_id = (await get_enrollment(session, ref, learner)).id
    target = _Target(assessment_id, assessment, enrollment_id=enrollment_id, learner=learner)
    return await _put(session, queue, ref, target, body, actor)


async def put_group(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str, group: str, body: OverrideIn, actor: str
) -> dict[str, Any]:
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
    def where(self) -> str:
        return "o.enrollment_id = :e" if self.group is None else "o.group_name = :g"

    @property
    def params(self) -> dict[str, Any]:
        return {"a": self.assessment_id, "e": self.enrollment_id, "g": self.group}

    @property
    def named(self) -> dict[str, Any]:
        """What the audit entry's old/new name (a learner is named by the entry's learner column)."""
        return {} if self.group is None else {"group": self.group}

    @property
    def learners(self) -> list[int] | None:
        """The results the override can move, for the late policy (None: the whole assessment)."""
        return None if self.enrollment_id is None else [self.enrollment_id]

    def missing(self) -> NotFound:
        who = f"Learner {self.learner!r}" if self.group is None else f"Group {self.group!r}"
        return NotFound(f"{who} has no override of {self.assessment!r}.")


async def _check_group(session: AsyncSession, ref: CourseRef, group: str) -> None:
    named = await session.scalar(
        text("SELECT EXISTS (SELECT 1 FROM enrollments WHERE course_id = :c AND CAST(:g AS text) = ANY(groups))"),
        {"c": ref.id, "g": group},
    )
    if not named:
        raise NotFound(f"Nobody in the course is in group {group!r}.")


async def _current(session: AsyncSession, target: _Target, lock: bool = False) -> dict[str, Any] | None:
    sql = _SELECT + f" AND {target.where}" + (" FOR UPDATE OF o" if lock else "")
    row = (await session.execute(text(sql), target.params)).mappings().first()
    return None if row is None else dict(row)


_UPSERT = """
    INSERT INTO assessment_overrides AS o (assessment_id, enrollment_id, group_name, due_at, extra_attempts, reason,
                                           created_by)
    VALUES (:a, :e, :g, :due_at, :extra_attempts, :reason, :actor)
    ON CONFLICT {conflict} DO UPDATE SET
      due_at = excluded.due_at, extra_attempts = excluded.extra_attempts, reason = excluded.reason, updated_at = now()
"""
_CONFLICT_LEARNER = "(assessment_id, enrollment_id) WHERE enrollment_id IS NOT NULL"
_CONFLICT_GROUP = "(assessment_id, group_name) WHERE group_name IS NOT NULL"


async def _put(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, target: _Target, body: OverrideIn, actor: str
) -> dict[str, Any]:
    old = await _current(session, target, lock=True)
    new = body.model_dump()
    if old is not None and all(old[f] == new[f] for f in _FIELDS):
        return old  # the same override again: nothing changes, nothing is recorded
    conflict = _CONFLICT_LEARNER if target.group is None else _CONFLICT_GROUP
    await session.execute(text(_UPSERT.format(conflict=conflict)), {**target.params, **new, "actor": actor})
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "override.set",
        learner=target.learner,
        assessment=target.assessment,
        old=None if old is None else {**target.named, **{f: old[f] for f in _FIELDS}},
        new={**target.named, **new},
    )
    await _apply_late_policy(session, queue, ref, target, actor)
    found = await _current(session, target)
    assert found is not None  # written above, in this transaction
    return found


async def _delete(session: AsyncSession, queue: jobs.Queue, ref: CourseRef, target: _Target, actor: str) -> None:
    old = await _current(session, target, lock=True)
    if old is None:
        raise target.missing()
    await session.execute(text("DELETE FROM assessment_overrides WHERE id = :id"), {"id": old["id"]})
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "override.removed",
        learner=target.learner,
        assessment=target.assessment,
        old={**target.named, **{f: old[f] for f in _FIELDS}},
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
