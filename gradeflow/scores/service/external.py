"""A score a registered tool posts to a line item (LTI AGS): an entry point into the one score path.

The common case (a graded score, its comment if any set as feedback, an assessment without items, no late policy)
is one statement (repository.post_scores, on the AGS lane with the posts of concurrent requests: db.grouped).
Anything else goes through the same writes as the native PUT (scores.write_rows: audit, late policy, grades marked
stale), plus what only a tool says: the attempt's status from its progress, a cleared score, a comment removed.
Scores of a (line item, learner) are ordered by the tool's timestamp: an older or equal one changes nothing and is
refused (ToolScoreOutdated).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.context import request_id
from gradeflow.core.errors import Conflict, NotFound, ValidationFailed
from gradeflow.db.grouped import GroupCommit
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import followup, grades
from gradeflow.scores.commands import ScoreRow
from gradeflow.scores.repository import external as repository
from gradeflow.scores.repository import feedback as feedback_repository
from gradeflow.scores.repository.external import POINTS_LIMIT, CommonOutcome, ToolPost, ToolScore, ToolTarget
from gradeflow.scores.service.scores import write_rows

__all__ = [
    "NOT_COMMON",
    "ToolScore",
    "ToolScoreIn",
    "ToolScoreOutdated",
    "post_common_score",
    "post_tool_score",
    "tool_score_writes",
]


class ToolScoreOutdated(Conflict):
    """The tool's timestamp is not later than the last score it posted for the learner: nothing changed."""

    code = "score-outdated"
    title = "Score outdated"


@dataclass(frozen=True, slots=True)
class ToolScoreIn:
    """A tool's score with what it says beyond the points: the attempt's status (graded only with a score)
    and a comment for the learner (None: leave the feedback as it is; empty: remove it)."""

    score: ToolScore
    status: str
    comment: str | None


async def post_tool_score(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, body: ToolScoreIn, actor: str
) -> None:
    """Apply a tool's score (see the module). 404 for a line item the tool may not use, 422 (/userId) for a
    learner not enrolled, 409 for an outdated timestamp, a cancelled attempt, or a score on an assessment
    with items."""
    if _common(body) and not NOT_COMMON.get():
        outcome = await _post_common(session, queue, ref, body, actor)
        if outcome.assessment_id is None:
            raise _no_line_item()
        if outcome.enrollment_id is None:
            raise _unknown_learner(body.score.learner)
        if outcome.written:
            if session.in_transaction():
                await session.commit()
            return
        if outcome.last_timestamp is not None and outcome.last_timestamp >= body.score.timestamp:
            raise _outdated(outcome.last_timestamp)
    await _general(session, queue, ref, body, actor)


# Set (by the AGS score lane) when post_common_score has just found that a request is not the common case:
# post_tool_score then takes the general path (which answers every refusal) rather than asking the database again.
NOT_COMMON: ContextVar[bool] = ContextVar("tool_score_not_common", default=False)


def tool_score_writes(engine: AsyncEngine) -> GroupCommit[ToolPost, CommonOutcome]:
    """The process's group commit of post_common_score's writes."""
    return GroupCommit("lti_score_post", engine, repository.post_scores, ToolPost.key)


async def post_common_score(
    writes: GroupCommit[ToolPost, CommonOutcome], queue: jobs.Queue, ref: CourseRef, body: ToolScoreIn, actor: str
) -> bool:
    """Write the score when it is the common case, with the writes of concurrent requests (`tool_score_writes`);
    False when it is not (or is refused: post_tool_score says why), nothing written then."""
    return _common(body) and (await _post_common(writes, queue, ref, body, actor)).written


def _common(body: ToolScoreIn) -> bool:
    """A graded score, with no comment or one to set (removing feedback takes the general path)."""
    return (
        body.status == "graded"
        and body.score.given is not None
        and (body.comment is None or bool(body.comment.strip()))
    )


async def _post_common(
    db: AsyncSession | GroupCommit[ToolPost, CommonOutcome],
    queue: jobs.Queue,
    ref: CourseRef,
    body: ToolScoreIn,
    actor: str,
) -> CommonOutcome:
    comment = None if body.comment is None else body.comment.strip()
    post = ToolPost(body.score, comment, actor, request_id.get(), clock.now())
    outcome = await (db.put(post) if isinstance(db, GroupCommit) else repository.post_common(db, post))
    if outcome.written:
        await followup.ask(queue, ref.id)
    return outcome


async def _general(session: AsyncSession, queue: jobs.Queue, ref: CourseRef, body: ToolScoreIn, actor: str) -> None:
    score = body.score
    found = await repository.target(session, ref.id, score.line_item_id, score.tool_id, score.learner)
    if found is None:
        raise _no_line_item()
    if found.enrollment_id is None:
        raise _unknown_learner(score.learner)
    if found.status == "cancelled":
        raise Conflict("The learner's attempt is cancelled and takes no score.")
    if found.has_items and score.given is not None:
        raise Conflict(
            f"Assessment {found.assessment!r} has items: its score is the sum of its item scores, which a tool"
            " cannot post."
        )
    if not await repository.advance_timestamp(session, found.assessment_id, found.enrollment_id, score.timestamp):
        await session.rollback()
        raise _outdated(found.last_timestamp)
    now = clock.now()
    if score.given is not None:
        assert score.maximum is not None
        row = ScoreRow(
            assessment=found.assessment,
            learner=score.learner,
            earned=rescale(score.given, score.maximum, found.points),
            possible=found.points,
            source="auto",
            graded_by=actor,
        )
        errors = await write_rows(session, ref, [row], actor, defer_grades=True)
        if errors:
            await session.rollback()
            raise Conflict(errors[0].detail)
        if body.status != "graded":
            await _set_status(session, ref, found, score.learner, body.status, actor, now)
    else:
        await _clear(session, ref, found, score.learner, body.status, actor, now)
    if body.comment is not None:
        await _comment(session, ref, found, score.learner, body.comment, actor, now)
    await session.commit()
    await followup.ask(queue, ref.id)


def rescale(given: Decimal, maximum: Decimal, points: Decimal) -> Decimal:
    """scoreGiven out of scoreMaximum as points of the line item (above the maximum stays above)."""
    earned = given if maximum == points else (given * points / maximum).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
    if earned >= POINTS_LIMIT:
        raise ValidationFailed.one("/scoreGiven", "Rescaled to the line item's points, this score is too large.")
    return earned


async def _set_status(
    session: AsyncSession, ref: CourseRef, found: ToolTarget, learner: str, status: str, actor: str, now: datetime
) -> None:
    """The tool's grading progress after a score was written (graded by the write): pending grading."""
    assert found.enrollment_id is not None
    await repository.set_status(session, found.assessment_id, found.enrollment_id, status, now)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "attempt.status_changed",
        learner=learner,
        assessment=found.assessment,
        old={"status": "graded"},
        new={"status": status},
    )


async def _clear(
    session: AsyncSession, ref: CourseRef, found: ToolTarget, learner: str, status: str, actor: str, now: datetime
) -> None:
    """No scoreGiven: the learner has no score for the assessment; the attempt takes the tool's status."""
    assert found.enrollment_id is not None
    attempt_id = await repository.clear(session, found.assessment_id, found.enrollment_id, status, now)
    if found.old is not None or found.status != status:
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "score.cleared",
            learner=learner,
            assessment=found.assessment,
            old={**(found.old or {}), "status": found.status},
            new={"status": status},
        )
    await late_results.apply(session, ref.id, attempt_ids=[attempt_id], actor=actor)
    await grades.mark_stale(session, ref.id, [found.enrollment_id])


async def _comment(
    session: AsyncSession, ref: CourseRef, found: ToolTarget, learner: str, comment: str, actor: str, now: datetime
) -> None:
    """The tool's comment as the learner's feedback on the attempt (learners see it once published)."""
    assert found.enrollment_id is not None
    attempt_id = await repository.ensure_attempt(session, found.assessment_id, found.enrollment_id)
    new = comment.strip() or None
    old = await feedback_repository.lock_text(session, attempt_id, None)
    if new == old:
        return
    if new is None:
        await feedback_repository.remove(session, attempt_id, None)
    else:
        await feedback_repository.put(session, attempt_id, None, new, actor, now)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "feedback.set",
        learner=learner,
        assessment=found.assessment,
        old={"text": old},
        new={"text": new},
    )


def _no_line_item() -> NotFound:
    return NotFound("Line item not found in this course.")


def _unknown_learner(learner: str) -> ValidationFailed:
    return ValidationFailed.one("/userId", f"User {learner!r} is not a learner enrolled in this course.")


def _outdated(last: datetime | None) -> ToolScoreOutdated:
    return ToolScoreOutdated(
        "A score with a later or equal timestamp was already posted for this learner; nothing changed.",
        extra={"last_timestamp": last.isoformat() if last else None},
    )
