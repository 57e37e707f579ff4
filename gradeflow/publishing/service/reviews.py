"""Candidate review sessions (Cirrus's "Candidate review"): a window during which an audience of
learners may review their published result of one assessment, item scores and the feedback written
for them included, with their own user token; outside the window, not.

The window includes its start and excludes its end (starts_at <= now < ends_at), so back-to-back
sessions never overlap. A session includes a learner named in its audience, or in one of its groups
or cohorts (every list empty: every learner), who has a published result of the assessment: a review
is of published results only, and a retracted result leaves every review of it.

What a learner reviews is their published result as published (the snapshot: a later change stays
hidden until it is published again). Item scores come from the snapshot when the result was published
with items; otherwise from the attempt, but only while the attempt still says what was published (the
`changed` rule staff see, no manual marking awaiting confirmation, and neither the attempt nor its
feedback written since it was published), so a re-mark or a draft note never leaks through a review.
The only text shown is feedback (gradeflow/scores/service/feedback.py): the markers' marks and comments are
internal to marking and never reach a learner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef, Principal
from gradeflow.access.service import access
from gradeflow.audit import service as audit
from gradeflow.core import clock, jsonutil
from gradeflow.core.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from gradeflow.core.paging import Page, not_ours, page_of, pair_after
from gradeflow.courses.repository import assessments as course_assessments
from gradeflow.courses.service import enrollments
from gradeflow.publishing.commands import ReviewAudience, ReviewSessionIn, ReviewSessionPatch
from gradeflow.publishing.repository import reviews as repository
from gradeflow.publishing.repository.reviews import LearnerReviewSession, LockedReviewSession, Review, ReviewSessionRow

# --- staff: scheduling ----------------------------------------------------------------------------

ReviewState = Literal["scheduled", "open", "ended"]


@dataclass(frozen=True, slots=True)
class ReviewSessionView(ReviewSessionRow):
    """A review session as staff see it: its audience with every list present, and its state now."""

    state: ReviewState


def _state(starts_at: datetime, ends_at: datetime, now: datetime) -> ReviewState:
    if now < starts_at:
        return "scheduled"
    return "open" if now < ends_at else "ended"


def _audience(stored: dict[str, Any] | None) -> dict[str, list[str]]:
    """A stored audience with every list present (a row written without one has `{}`)."""
    return {k: (stored or {}).get(k, []) for k in ("learners", "groups", "cohorts")}


def _view(row: ReviewSessionRow, now: datetime) -> ReviewSessionView:
    shown = asdict(row) | {"audience": _audience(row.audience)}
    return ReviewSessionView(**shown, state=_state(row.starts_at, row.ends_at, now))


async def _assessment_id(session: AsyncSession, ref: CourseRef, assessment: str) -> int:
    found = await course_assessments.assessment_id(session, ref.id, assessment)
    if found is None:
        raise NotFound(f"Assessment {assessment!r} not found in this course.")
    return found


async def _check_scope(session: AsyncSession, ref: CourseRef, principal: Principal, assessment: str) -> None:
    """A publisher limited to some assessments schedules reviews of those only, as they publish them."""
    await access.check_publisher_scope(session, ref.id, principal, [assessment], course_grade=False)


async def _check_learners(session: AsyncSession, course_id: int, audience: ReviewAudience) -> None:
    """Every learner named must be enrolled: a typo would silently shut a learner out of their review."""
    if not audience.learners:
        return
    unknown = await repository.unknown_learners(session, course_id, audience.learners)
    errors = [FieldError(f"/audience/learners/{n}", "No such learner in this course.") for n in unknown]
    if errors:
        raise ValidationFailed(errors)


def _audience_json(audience: ReviewAudience) -> dict[str, list[str]]:
    """The audience as stored: every list present, each name once (in the order first given)."""
    return {k: list(dict.fromkeys(getattr(audience, k))) for k in ("learners", "groups", "cohorts")}


def _window_after(cursor: str | None) -> tuple[datetime, int] | None:
    """Decode a (starts_at, id) cursor."""
    pair = pair_after(cursor)
    if pair is None:
        return None
    try:
        at = datetime.fromisoformat(pair[0]) if isinstance(pair[0], str) else None
        if at is None or at.tzinfo is None:
            raise not_ours()
        return at.astimezone(UTC), pair[1]
    except (ValueError, OverflowError) as exc:  # not a time, or one past the calendar's ends in UTC
        raise not_ours() from exc


async def list_sessions(
    session: AsyncSession, ref: CourseRef, assessment: str, limit: int, cursor: str | None
) -> Page[ReviewSessionView]:
    """An assessment's review sessions in the order they open."""
    assessment_id = await _assessment_id(session, ref, assessment)
    after = _window_after(cursor)
    rows = await repository.sessions_after(session, assessment_id, after, limit + 1)
    page = page_of(rows, limit, lambda r: [r.starts_at.isoformat(), r.id])
    now = clock.now()
    return Page([_view(r, now) for r in page.items], page.next_cursor)


async def _one(session: AsyncSession, assessment_id: int, review: str) -> ReviewSessionView:
    row = await repository.review_session(session, assessment_id, review)
    if row is None:
        raise NotFound(f"Review session {review!r} not found for this assessment.")
    return _view(row, clock.now())


async def get(session: AsyncSession, ref: CourseRef, assessment: str, review: str) -> ReviewSessionView:
    """One review session, with how many learners it includes now."""
    return await _one(session, await _assessment_id(session, ref, assessment), review)


# A value the audit log keeps of a session: its external id, title, a time (ISO, UTC) or its audience.
RecordValue = str | dict[str, list[str]] | None


def _record(view: Mapping[str, RecordValue | datetime]) -> dict[str, RecordValue]:
    """What the audit log keeps of a session: what decides who reviews what, and when."""
    kept = {k: view[k] for k in ("external_id", "title", "starts_at", "ends_at", "audience") if k in view}
    return {k: v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for k, v in kept.items()}


async def create(
    session: AsyncSession, ref: CourseRef, principal: Principal, assessment: str, body: ReviewSessionIn, actor: str
) -> ReviewSessionView:
    """Schedule a review session of an assessment (409 when its external id is taken for it).
    Audited as `review_session.created`."""
    assessment_id = await _assessment_id(session, ref, assessment)
    await _check_scope(session, ref, principal, assessment)
    await _check_learners(session, ref.id, body.audience)
    audience = _audience_json(body.audience)
    created = await repository.insert_review_session(
        session,
        ref.id,
        assessment_id,
        external_id=body.external_id,
        title=body.title,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        audience_json=jsonutil.dumps(audience),
        actor=actor,
        now=clock.now(),
    )
    if created is None:
        raise Conflict(f"Review session {body.external_id!r} already exists for assessment {assessment!r}.")
    new: dict[str, Any] = {"external_id": body.external_id, "title": body.title, "starts_at": body.starts_at}
    new |= {"ends_at": body.ends_at, "audience": audience}
    await audit.record(
        session, ref.organization_id, ref.id, actor, "review_session.created", assessment=assessment, new=_record(new)
    )
    await session.commit()
    return await _one(session, assessment_id, body.external_id)


async def update(
    session: AsyncSession,
    ref: CourseRef,
    principal: Principal,
    assessment: str,
    review: str,
    body: ReviewSessionPatch,
    actor: str,
) -> ReviewSessionView:
    """Change a session's title, window or audience (a change takes effect at once, an open window
    included). Audited as `review_session.updated` with what changed; an unchanged PATCH writes nothing."""
    assessment_id = await _assessment_id(session, ref, assessment)
    await _check_scope(session, ref, principal, assessment)
    current = await _locked(session, assessment_id, review)
    wanted = _patched(current, body)
    if body.audience is not None:
        await _check_learners(session, ref.id, body.audience)
    changed = [f.name for f in fields(current) if getattr(wanted, f.name) != getattr(current, f.name)]
    if changed:
        await repository.update_review_session(
            session,
            current.id,
            title=wanted.title,
            starts_at=wanted.starts_at,
            ends_at=wanted.ends_at,
            audience_json=jsonutil.dumps(wanted.audience),
            now=clock.now(),
        )
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "review_session.updated",
            assessment=assessment,
            old=_record({"external_id": review} | {k: getattr(current, k) for k in changed}),
            new=_record({"external_id": review} | {k: getattr(wanted, k) for k in changed}),
        )
    await session.commit()
    return await _one(session, assessment_id, review)


async def _locked(session: AsyncSession, assessment_id: int, review: str) -> LockedReviewSession:
    row = await repository.lock_review_session(session, assessment_id, review)
    if row is None:
        raise NotFound(f"Review session {review!r} not found for this assessment.")
    return replace(row, audience=_audience(row.audience))


def _patched(current: LockedReviewSession, body: ReviewSessionPatch) -> LockedReviewSession:
    """The session's fields after the patch; its window must still end after it starts."""
    given = body.model_fields_set
    wanted = replace(
        current,
        title=body.title if "title" in given else current.title,
        starts_at=body.starts_at or current.starts_at,
        ends_at=body.ends_at or current.ends_at,
        audience=_audience_json(body.audience) if body.audience is not None else current.audience,
    )
    if wanted.ends_at <= wanted.starts_at:
        field = "/ends_at" if body.ends_at is not None else "/starts_at"
        raise ValidationFailed.one(field, "The window must end later than it starts (ends_at after starts_at).")
    return wanted


async def delete(
    session: AsyncSession, ref: CourseRef, principal: Principal, assessment: str, review: str, actor: str
) -> None:
    """Cancel a review session (an open one closes at once). Audited as `review_session.deleted`."""
    assessment_id = await _assessment_id(session, ref, assessment)
    await _check_scope(session, ref, principal, assessment)
    row = await repository.delete_review_session(session, assessment_id, review)
    if row is None:
        raise NotFound(f"Review session {review!r} not found for this assessment.")
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "review_session.deleted",
        assessment=assessment,
        old=_record(asdict(row)),
    )
    await session.commit()


# --- learners: their reviews ----------------------------------------------------------------------


async def for_learner(session: AsyncSession, enrollment_id: int) -> list[LearnerReviewSession]:
    """The learner's review sessions that are open now or still to come, in the order they open
    (for their dashboard, beside their published results)."""
    return await repository.sessions_of_learner(session, enrollment_id, clock.now())


async def my_review(session: AsyncSession, principal: Principal, course: str, assessment: str) -> Review:
    """A learner's review of their published result of one assessment, while a review session that
    includes them is open. Outside every window: 403 saying when the next one opens (`next_opens_at`),
    or 404 when none is to come (no session, none including them, or no published result)."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    now = clock.now()
    row = await repository.open_review(session, enrollment_id, assessment, now)
    if row is not None:
        return row
    next_opens_at = await repository.next_review_opens(session, enrollment_id, assessment, now)
    if next_opens_at is None:
        raise NotFound(f"No review of {assessment!r} is open or scheduled for you.")
    raise Forbidden(
        f"Your review of {assessment!r} is not open; the next review session opens at {next_opens_at.isoformat()}.",
        extra={"next_opens_at": next_opens_at.isoformat()},
    )
