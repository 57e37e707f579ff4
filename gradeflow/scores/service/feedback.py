"""Feedback to learners: text on an attempt as a whole and on its items, written by planners (and
API keys) and by graders on work allocated to them, read by staff, and shown to the learner only
through a publication (gradeflow/publishing/service/publishing.py snapshots it with the result).

Markers' marks and comments are internal to marking and are never published; feedback is what the
course team means the learner to read.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.anonymity import service as anonymity
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import NotFound
from gradeflow.scores.commands import FeedbackIn
from gradeflow.scores.repository import feedback as repository
from gradeflow.scores.repository.feedback import FeedbackText


@dataclass(frozen=True, slots=True)
class FeedbackView:
    """The feedback on a learner's attempt (the learner as the caller named them)."""

    assessment: str
    learner: str
    feedback: FeedbackText | None  # on the attempt as a whole
    items: list[FeedbackText]  # on items, in the assessment's order


async def _attempt(
    session: AsyncSession, ref: CourseRef, assessment: str, learner: str, scope: list[str] | None, shown: str
) -> tuple[int, int]:
    """The assessment's id and the learner's attempt at it; 404 for a grader (`scope`, their names)
    when the attempt is not allocated to them, as for its score. Errors name the learner as `shown`."""
    found = await repository.attempt_of(session, ref.id, assessment, learner, scope)
    if found.assessment_id is None:
        raise NotFound(f"Assessment {assessment!r} not found in this course.")
    if found.enrollment_id is None:
        raise NotFound(f"Learner {shown!r} is not enrolled in this course.")
    if found.attempt_id is None or not found.in_scope:
        raise NotFound(f"Learner {shown!r} has no attempt at {assessment!r}" + (" allocated to you." if scope else "."))
    return found.assessment_id, found.attempt_id


async def put(
    session: AsyncSession,
    ref: CourseRef,
    principal: Principal,
    scope: list[str] | None,
    assessment: str,
    learner: str,
    item: str | None,
    body: FeedbackIn,
    actor: str,
) -> FeedbackView:
    """Set (or with null remove) the feedback on a learner's attempt, or on one item of it; audited
    as `feedback.set` with the old and new text. Learners see it once it is published. Those who write on
    every attempt (API keys, planners: `scope` None) or a grader on the attempts allocated to them (`scope`,
    their names: the same allocation rule as for marks and scores). A concealed caller names the learner of an
    anonymous assessment by candidate label (the audit keeps the learner)."""
    shown = learner
    learner = (await anonymity.resolve(session, ref, anonymity.concealed(principal, ref), assessment, shown)).learner
    assessment_id, attempt_id = await _attempt(session, ref, assessment, learner, scope, shown)
    item_id = None
    if item is not None:
        item_id = await repository.item_id(session, assessment_id, item)
        if item_id is None:
            raise NotFound(f"Item {item!r} not found in {assessment!r}.")
    new = body.text.strip() if body.text is not None and body.text.strip() else None
    old = await repository.lock_text(session, attempt_id, item_id)
    if new != old:
        if new is None:
            await repository.remove(session, attempt_id, item_id)
        else:
            await repository.put(session, attempt_id, item_id, new, actor, clock.now())
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "feedback.set",
            learner=learner,
            assessment=assessment,
            item=item,
            old={"text": old},
            new={"text": new},
        )
    view = await _view(session, assessment, shown, assessment_id, attempt_id)
    await session.commit()
    return view


async def get(
    session: AsyncSession, ref: CourseRef, assessment: str, learner: str, scope: list[str] | None, hide: bool = False
) -> FeedbackView:
    """The feedback on a learner's attempt as it stands (learners see the published one), for staff;
    a grader (`scope`) sees it only on work allocated to them (by candidate label when `hide`)."""
    named = await anonymity.resolve(session, ref, hide, assessment, learner)
    assessment_id, attempt_id = await _attempt(session, ref, assessment, named.learner, scope, learner)
    view = await _view(session, assessment, learner, assessment_id, attempt_id)
    await anonymity.keep_numbers(session, named.mask)
    return view


async def _view(
    session: AsyncSession, assessment: str, learner: str, assessment_id: int, attempt_id: int
) -> FeedbackView:
    rows = await repository.of_attempt(session, attempt_id)
    overall = next((r for r in rows if r.item is None), None)
    return FeedbackView(assessment, learner, overall, [r for r in rows if r.item is not None])
