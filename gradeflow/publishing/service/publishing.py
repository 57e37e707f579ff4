"""Publishing results to learners: publications (publish or retract, now or at a time), the release
modes of assessments, and what the staff see of it.

A learner sees a published result as it was when it was published (a snapshot): a later change stays
hidden until it is published again, so an unconfirmed re-mark can never leak. Every publication is
one statement per target (assessments, course grade) that classifies the candidates, writes the
snapshots, the audit entries and the e-mails owed, all in the publication's transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.identity import CourseRef, Principal
from gradeflow.access.service.access import check_publisher_scope
from gradeflow.anonymity import service as anonymity
from gradeflow.audit import service as audit
from gradeflow.core import clock, jsonutil
from gradeflow.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gradeflow.core.paging import Page
from gradeflow.courses.service import enrollments
from gradeflow.grades.service import grades
from gradeflow.jobs import JobName
from gradeflow.notify import events
from gradeflow.publishing.commands import Audience, PublicationRequest
from gradeflow.publishing.repository import publishing as repository
from gradeflow.publishing.repository.publishing import (
    MAX_SKIPPED_DETAIL,
    AssessmentPublished,
    GradesPublished,
    MyPublishedGrade,
    MyPublishedResult,
    Skipped,
)
from gradeflow.publishing.repository.publishing import PublicationRow as PublicationRow
from gradeflow.publishing.repository.publishing import SkipReason as SkipReason
from gradeflow.publishing.repository.reviews import LearnerReviewSession
from gradeflow.publishing.service import reviews

SYSTEM_ACTOR = "gradeflow:release"


# --- creating and running publications ----------------------------------------------------------


async def _assessment_ids(session: AsyncSession, course_id: int, external_ids: list[str]) -> list[int]:
    found = await repository.assessment_ids_by_external_id(session, course_id, external_ids)
    missing = [i for i, ext in enumerate(external_ids) if ext not in found]
    if missing:
        raise ValidationFailed.one(f"/assessments/{missing[0]}", "No such assessment in this course.")
    return [found[ext] for ext in external_ids]


async def create(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    principal: Principal,
    body: PublicationRequest,
    actor: str,
    hide: bool = False,
) -> PublicationRow:
    """Publish or retract now, or schedule a publication for `publish_at` (the worker's
    `publish_due` cron runs it then, within seconds).

    A caller kept from identities (`hide`: anonymity.concealed, a marker who also publishes) may not name learners
    in the audience of an anonymous assessment whose anonymity holds (403): what the answer counts (published,
    skipped) would say, learner by learner, how far their work is marked."""
    await check_publisher_scope(session, ref.id, principal, body.assessments, body.course_grade)
    if hide and body.audience.learners is not None and body.assessments:
        await _refuse_named_learners(session, ref.id, body.assessments)
    scheduled = body.publish_at is not None and body.publish_at > clock.now()
    if scheduled:  # checked now; an immediate publication checks them as it runs (and rolls back)
        await _assessment_ids(session, ref.id, body.assessments)
    publication_id = await _insert(session, ref.id, body, "scheduled" if scheduled else "done", "request", actor)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "publication.scheduled" if scheduled else f"publication.{body.action}",
        new={"publication": publication_id, **body.model_dump(mode="json", exclude_none=True)},
    )
    if not scheduled:
        await _execute(session, ref.organization_id, ref.id, publication_id, actor)
    await session.commit()
    if not scheduled and body.notify_email:
        await jobs.enqueue(
            queue, JobName.SEND_NOTIFICATIONS, jobs.job_id(JobName.SEND_NOTIFICATIONS, publication_id), publication_id
        )
    return await get(session, ref, publication_id)


async def _refuse_named_learners(session: AsyncSession, course_id: int, assessments: list[str]) -> None:
    hidden = await anonymity.hidden_assessments(session, course_id)
    named = next((a for a in assessments if a in hidden), None)
    if named is not None:
        raise Forbidden(
            f"Assessment {named!r} is anonymous: those who mark it (grader or moderator, not planner) publish or"
            " retract its results for all learners, those not yet published, cohorts or groups, not for learners"
            " named, until its anonymity is lifted."
        )


async def _insert(
    session: AsyncSession, course_id: int, body: PublicationRequest, status: str, trigger: str, actor: str
) -> int:
    return await repository.insert_publication(
        session,
        course_id,
        action=body.action,
        assessments=body.assessments,
        course_grade=body.course_grade,
        audience_json=jsonutil.dumps(body.audience.model_dump(exclude_none=True, exclude_defaults=True)),
        show=body.show,
        notify_email=body.notify_email,
        publish_at=body.publish_at,
        status=status,
        trigger=trigger,
        actor=actor,
    )


async def _execute(
    session: AsyncSession, organization_id: int, course_id: int, publication_id: int, actor: str
) -> None:
    """Carry out a publication in the caller's transaction and record its outcome on it."""
    p = await repository.publication_order(session, publication_id)
    audience = p.audience
    stamp = audit.stamp(organization_id, course_id, actor)
    now = stamp["at"]  # the audit entries' time is the publication's
    params = {
        **repository.audience_params(audience),
        **stamp,
        "c": course_id,
        "pub": publication_id,
        "now": now,
        "show": p.show,
        "notify": p.notify_email,
        "only_unpublished": bool(audience.get("unpublished")),
        "max_detail": MAX_SKIPPED_DETAIL,
        "assessment_ids": await _assessment_ids(session, course_id, p.assessments),
    }
    condition = repository.audience_sql(audience)
    targets = ([False] if p.assessments else []) + ([True] if p.course_grade else [])  # course grade?
    changed, skipped = 0, 0
    detail: list[Skipped] = []
    learners: set[str] = set()
    learner_count = 0
    if p.action == "publish":
        if p.course_grade:
            await grades.bring_current(session, course_id)
        for course_grade in targets:
            row = await repository.publish(session, course_grade=course_grade, audience=condition, params=params)
            changed, skipped = changed + row.changed, skipped + row.skipped
            detail += row.detail
            learners |= set(row.learners)
            learner_count = max(learner_count, row.learner_count)
    else:
        done: set[tuple[str, str | None]] = set()
        for course_grade in targets:
            done |= await repository.retract(session, course_grade=course_grade, audience=condition, params=params)
        changed = len(done)
        learners = {lr for lr, _ in done}
        learner_count = len(learners)
        if audience.get("learners"):
            wanted: list[tuple[str, str | None]] = [(lr, a) for lr in audience["learners"] for a in p.assessments]
            wanted += [(lr, None) for lr in audience["learners"] if p.course_grade]
            missing = [w for w in wanted if w not in done]
            skipped = len(missing)
            detail = [Skipped(lr, a, "not_published") for lr, a in missing]
    if audience.get("learners"):
        enrolled = await repository.enrolled_of(session, course_id, audience["learners"])
        strangers = [lr for lr in audience["learners"] if lr not in enrolled]
        skipped += len(strangers)
        detail = [Skipped(lr, None, "not_enrolled") for lr in strangers] + detail
    if changed:
        await events.emit(
            session,
            organization_id,
            "results.published" if p.action == "publish" else "results.unpublished",
            {
                "course": await repository.course_external_id(session, course_id),
                "publication": publication_id,
                "assessments": list(p.assessments),
                "course_grade": p.course_grade,
                "show": p.show,
                "trigger": p.trigger,
                "learner_count": max(learner_count, len(learners)),
                "learners": sorted(learners)[:1000],
            },
        )
    await repository.record_outcome(
        session, publication_id, now, changed, skipped, jsonutil.dumps([asdict(d) for d in detail[:MAX_SKIPPED_DETAIL]])
    )


async def due_publications(session: AsyncSession) -> list[int]:
    return await repository.due_publication_ids(session, clock.now())


async def run_scheduled(sessionmaker: async_sessionmaker[AsyncSession], publication_id: int) -> str:
    """Run a scheduled publication whose time has come (once: the row lock and status decide)."""
    async with sessionmaker() as session:
        row = await repository.lock_scheduled(session, publication_id)
        if row is None:
            return "not scheduled (already run or cancelled)"
        if row.publish_at > clock.now():
            return "not due yet"
        await _execute(session, row.organization_id, row.course_id, publication_id, row.created_by)
        await session.commit()
        return "published"


async def cancel(
    session: AsyncSession, ref: CourseRef, principal: Principal, publication_id: int, actor: str
) -> PublicationRow:
    """Cancel a scheduled publication (a done one is undone by a retraction instead). A publisher
    limited to some assessments cancels only publications within their scope."""
    row = await repository.lock_publication(session, ref.id, publication_id)
    if row is None:
        raise NotFound(f"Publication {publication_id} not found in this course.")
    await check_publisher_scope(session, ref.id, principal, row.assessments, row.course_grade)
    if row.status != "scheduled":
        raise Conflict("Only a scheduled publication can be cancelled; retract published results instead.")
    await repository.mark_cancelled(session, publication_id, clock.now())
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "publication.cancelled",
        old={"publication": publication_id, "status": "scheduled"},
        new={"publication": publication_id, "status": "cancelled"},
    )
    await session.commit()
    return await get(session, ref, publication_id)


# --- release modes --------------------------------------------------------------------------------


async def release_due(session: AsyncSession, course_id: int) -> list[int]:
    """Publish what the course's release modes say is due (each assessment's results not yet
    published or changed since); one publication per assessment with something to publish. Returns
    the publications made."""
    org = await repository.course_organization(session, course_id)
    if org is None:
        return []
    made = []
    for due in await repository.due_releases(session, course_id, clock.now()):
        if not await repository.publishable_count(session, due.id):
            continue
        release = due.release
        body = PublicationRequest(
            assessments=[due.external_id],
            audience=Audience(unpublished=True),
            show=release.get("show", "total_only"),
            notify_email=release.get("notify_email", False),
        )
        trigger = "automatic" if release["mode"] == "automatic" else "scheduled"
        publication_id = await _insert(session, course_id, body, "done", trigger, SYSTEM_ACTOR)
        await _execute(session, org, course_id, publication_id, SYSTEM_ACTOR)
        made.append(publication_id)
    return made


# --- reads ----------------------------------------------------------------------------------------


async def get(session: AsyncSession, ref: CourseRef, publication_id: int) -> PublicationRow:
    row = await repository.publication(session, ref.id, publication_id)
    if row is None:
        raise NotFound(f"Publication {publication_id} not found in this course.")
    return row


async def list_publications(
    session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None
) -> Page[PublicationRow]:
    """Most recent first."""
    return await repository.publications_page(session, ref.id, limit, cursor)


@dataclass(frozen=True, slots=True)
class AssessmentSummary(AssessmentPublished):
    """An assessment's publication figures, its release mode (manual where none is set), and whether every
    participant's result is published."""

    fully_published: bool


@dataclass(frozen=True, slots=True)
class CourseGradeSummary(GradesPublished):
    """The course grade's publication figures, and whether every participant's grade is published."""

    fully_published: bool


@dataclass(frozen=True, slots=True)
class PublicationSummary:
    assessments: list[AssessmentSummary]
    course_grade: CourseGradeSummary


async def summary(session: AsyncSession, ref: CourseRef) -> PublicationSummary:
    """Per assessment: participants (attempts not cancelled), results ready to publish, published, and
    whether it is fully published; the same for the course grade."""
    rows = await repository.published_by_assessment(session, ref.id)
    grade = await repository.grades_published(session, ref.id)
    return PublicationSummary(
        assessments=[
            AssessmentSummary(
                **(asdict(r) | {"release": r.release or {"mode": "manual"}}),
                fully_published=r.participants > 0 and r.published == r.participants,
            )
            for r in rows
        ],
        course_grade=CourseGradeSummary(
            **asdict(grade), fully_published=grade.participants > 0 and grade.published >= grade.participants
        ),
    )


@dataclass(frozen=True, slots=True)
class MyResults:
    """A learner's own published results in a course, their published course grade and their review sessions."""

    course: str
    learner: str
    results: list[MyPublishedResult]
    course_grade: MyPublishedGrade | None
    review_sessions: list[LearnerReviewSession]


async def my_results(session: AsyncSession, principal: Principal, course: str) -> MyResults:
    """A learner's own published results in a course (their user token's `sub` is their enrollment's
    external id): snapshots only, item detail only where it was published with items; the feedback
    written for them, never the markers' marks, comments or names."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    return MyResults(
        course=course,
        learner=principal.subject,
        results=await repository.published_results_of(session, enrollment_id),
        course_grade=await repository.published_grade_of(session, enrollment_id),
        review_sessions=await reviews.for_learner(session, enrollment_id),
    )
