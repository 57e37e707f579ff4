"""Moderation: a planner picks a sample of marked attempts, stratified by grader; a moderator agrees
with the graders' marks or adjusts them (the moderator's marks are kept beside the graders', and decide
the item's score), and may scale one grader's marks on the assessment. Every score a decision changes
goes through the one score path (totals, grades, audit, confirmation reopened); every decision is
audited. When the assessment requires moderation, grading cannot be confirmed until it is complete.

An attempt belongs to the grader who marked it first (the stratum it is sampled in). Only graders' marks
are moderated: attempts whose manual items were scored without marks (imported, PUT) are outside the
sample, and an assessment with none marked does not wait for moderation (marking.moderation_state). A
grader who changes a mark of a decided attempt sends it back to pending (marking.put_mark). Scores follow
marks only through marking.rescore, under marking.lock. Moderators see learners as graders do: by
candidate label on an anonymous assessment (gradeflow/anonymity/service.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.anonymity import service as anonymity
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.service.assessments import AssessmentView, get_assessment
from gradeflow.marking.commands import ModerationAdjustment, ModerationAgreement, ModerationSampleRequest, ScalingIn
from gradeflow.marking.repository import marking as marks_repository
from gradeflow.marking.repository import moderation as repository
from gradeflow.marking.repository.marking import Mark
from gradeflow.marking.repository.moderation import Sample, SampledAttempt
from gradeflow.marking.service import marking
from gradeflow.marking.service.views import (
    ModerationStatus,
    SampleAdded,
    SampleItem,
    SampleView,
    ScalingSet,
    extended,
)


async def sample(
    session: AsyncSession, ref: CourseRef, assessment: str, body: ModerationSampleRequest, actor: str
) -> SampleAdded:
    """Add to the assessment's moderation sample: the listed learners' marked attempts, then a percentage
    of each grader's marked attempts (rounded up, at least one per grader who marked; attempts already in
    the grader's stratum count towards it), at random. Nothing is ever taken out of the sample. Audited as
    `moderation.sampled` with the learners picked."""
    view = await get_assessment(session, ref, assessment)
    a = view.assessment.id
    # Two samplings at once would both count the strata before either adds: one at a time per assessment.
    await repository.lock_sampling(session, a)
    added: list[int] = []
    if body.learners is not None:
        rows = await repository.listed_attempts(session, ref.id, a, list(body.learners))
        problems = [
            FieldError(
                f"/learners/{r.ord - 1}",
                "not enrolled in this course" if r.enrollment is None else "has no marked attempt at this assessment",
            )
            for r in rows
            if r.attempt_id is None
        ]
        if problems:
            raise ValidationFailed(problems)
        added += await repository.add_listed(session, a, actor, [r.attempt_id for r in rows], [r.grader for r in rows])
    if body.percent is not None:
        added += await repository.add_percent(session, a, actor, body.percent)
    picked = await repository.picked(session, a, added)
    per_grader: dict[str, int] = defaultdict(int)
    for p in picked:
        per_grader[p.grader] += 1
    if picked:
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "moderation.sampled",
            assessment=assessment,
            new={
                "percent": None if body.percent is None else float(body.percent),
                "learners": [p.learner for p in picked],
                "per_grader": dict(per_grader),
            },
        )
    await session.commit()
    return extended(await _status(session, view), SampleAdded, added=len(picked), added_per_grader=dict(per_grader))


async def status(session: AsyncSession, ref: CourseRef, assessment: str) -> ModerationStatus:
    """The assessment's moderation status, counts per grader and the graders' scalings."""
    return await _status(session, await get_assessment(session, ref, assessment))


async def _status(session: AsyncSession, view: AssessmentView) -> ModerationStatus:
    a = view.assessment
    graders = await repository.grader_counts(session, a.id)
    sampled = sum(g.sampled for g in graders)
    pending = sum(g.pending for g in graders)
    state = marking.moderation_state(view, sum(g.marked for g in graders), sampled, pending)
    factors = await repository.scalings_of(session, a.id)
    return ModerationStatus(a.external_id, a.moderation_required, state, sampled, pending, graders, factors)


# --- the sample -----------------------------------------------------------------------------------


async def list_samples(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    hide: bool,
    limit: int,
    cursor: str | None,
    state: str | None = None,
) -> Page[SampleView]:
    """The sampled attempts in the order they were picked (optionally those of one status), each with its
    manual items: every grader's mark, the moderator's, and the item's score. Concealed callers (`hide`)
    see candidate labels on an anonymous assessment."""
    view = await get_assessment(session, ref, assessment)
    masked = await anonymity.view(session, ref, hide, assessment)
    rows = await repository.samples_after(session, view.assessment.id, last_id_after(cursor), state, limit + 1)
    page = page_of(rows, limit, lambda r: r.id)
    details = await _details(session, view, [r.attempt_id for r in page.items])
    await anonymity.keep_numbers(session, masked)
    return Page([_sample_view(r, masked, details[r.attempt_id]) for r in page.items], page.next_cursor)


async def _details(session: AsyncSession, view: AssessmentView, attempts: list[int]) -> dict[int, list[SampleItem]]:
    """attempt -> its manual items: each with the marks (graders' and moderator's) and the score."""
    manual = [i for i in view.items if i.marking == "manual"]
    marks: dict[tuple[int, int], list[Mark]] = defaultdict(list)
    for m in await marks_repository.marks_of_attempts(session, attempts, None):
        marks[(m.attempt, m.item)].append(m)
    scores = await marks_repository.item_scores_of(session, attempts)
    return {
        attempt: [
            _item(item.external_id, item.points_possible, marks[(attempt, item.id)], scores.get((attempt, item.id)))
            for item in manual
        ]
        for attempt in attempts
    }


def _item(item: str, possible: Decimal, marks: list[Mark], score: marks_repository.ItemScore | None) -> SampleItem:
    """One manual item of a sampled attempt: the graders' marks, the moderator's latest, the score."""
    moderator = [m for m in marks if m.role == "moderator"]
    return SampleItem(
        item,
        possible,
        [m for m in marks if m.role != "moderator"],
        moderator[-1] if moderator else None,
        None if score is None else score.earned,
    )


def _sample_view(row: Sample, masked: anonymity.Mask, items: list[SampleItem]) -> SampleView:
    return extended(replace(row, learner=masked.show(row.learner)), SampleView, items=items)


# --- decisions ------------------------------------------------------------------------------------


async def _sampled(
    session: AsyncSession, ref: CourseRef, view: AssessmentView, learner: str, moderator: str
) -> SampledAttempt:
    """The learner's sampled attempt, read under the marking locks (marking.lock: a grader's mark, a scaling
    and this decision on the attempt happen one after the other). A moderator never decides work they (or
    one of their workgroups) marked."""
    attempt = await repository.attempt_of(session, ref.id, view.assessment.id, learner)
    found = None
    if attempt is not None:
        await marking.lock(session, view.assessment.id, [attempt])
        found = await repository.lock_sampled(session, view.assessment.id, attempt)
    if found is None:
        raise NotFound(f"The learner's attempt at {view.assessment.external_id!r} is not in the moderation sample.")
    if await repository.marked_by_any(session, found.attempt_id, await marking.identities(session, ref, moderator)):
        raise Forbidden("You marked this attempt: another moderator decides it.")
    return found


async def _moderator_marks(session: AsyncSession, attempt: int) -> dict[str, float]:
    return {item: float(points) for item, points in (await repository.moderator_marks(session, attempt)).items()}


async def agree(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    given: str,
    hide: bool,
    body: ModerationAgreement,
    moderator: str,
) -> SampleView:
    """The moderator agrees with the graders' marks of a sampled attempt: they stand (an earlier
    adjustment of the attempt is withdrawn and its items' scores follow the graders' marks again, or
    are removed where the graders' marks give no score yet); a planner's override of an item stands.
    Audited as `moderation.agreed`."""
    named = await anonymity.resolve(session, ref, hide, assessment, given)
    view = await get_assessment(session, ref, assessment)
    found = await _sampled(session, ref, view, named.learner, moderator)
    old_marks = await _moderator_marks(session, found.attempt_id)
    await repository.withdraw_moderator_marks(session, found.attempt_id)
    await repository.decide(session, found.id, "agreed", moderator, clock.now(), body.note)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        moderator,
        "moderation.agreed",
        learner=named.learner,
        assessment=assessment,
        old={"status": found.status, "moderator_marks": old_marks, "note": found.note},
        new={"status": "agreed", "moderator_marks": {}, "note": body.note},
    )
    # The graders' marks stand; a planner's override of an item stands too (as under a scaling).
    await marking.rescore(session, ref, view, [found.attempt_id], moderator)
    await session.commit()
    return await _one(session, view, named.mask, found.id)


async def adjust(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    given: str,
    hide: bool,
    body: ModerationAdjustment,
    moderator: str,
) -> SampleView:
    """The moderator's own marks for items of a sampled attempt, stored beside the graders' marks (which
    stay as given) as marks of role moderator; each becomes the item's score through the score path,
    replacing a planner's override of that item (the moderator decided it last). Audited as
    `moderation.adjusted` (the moderator's marks before and after)."""
    named = await anonymity.resolve(session, ref, hide, assessment, given)
    view = await get_assessment(session, ref, assessment)
    items = {i.external_id: i for i in view.items}
    problems = []
    for n, mark in enumerate(body.items):
        item = items.get(mark.item)
        if item is None:
            problems.append(FieldError(f"/items/{n}/item", f"no item {mark.item!r} in this assessment"))
        elif item.marking != "manual":
            problems.append(FieldError(f"/items/{n}/item", "scored automatically: it is not moderated"))
        elif mark.points > item.points_possible:
            problems.append(
                FieldError(f"/items/{n}/points", f"at most the item's {item.points_possible.normalize()} points")
            )
    if problems:
        raise ValidationFailed(problems)
    found = await _sampled(session, ref, view, named.learner, moderator)
    attempt = found.attempt_id
    ids = [items[m.item].id for m in body.items]
    marked = await repository.graders_marked_items(session, attempt)
    unmarked = [
        FieldError(f"/items/{n}/item", "no grader has marked this item of the attempt: nothing to moderate")
        for n, item_id in enumerate(ids)
        if item_id not in marked
    ]
    if unmarked:
        raise ValidationFailed(unmarked)
    old_marks = await _moderator_marks(session, attempt)
    # The moderator's latest decision on an item replaces any earlier moderator's mark on it.
    await repository.replace_moderator_marks(
        session, attempt, moderator, body.note, ids, [m.points for m in body.items]
    )
    await repository.decide(session, found.id, "adjusted", moderator, clock.now(), body.note)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        moderator,
        "moderation.adjusted",
        learner=named.learner,
        assessment=assessment,
        old={"status": found.status, "moderator_marks": old_marks, "note": found.note},
        new={"status": "adjusted", "moderator_marks": await _moderator_marks(session, attempt), "note": body.note},
    )
    # The moderator decided these items just now: their marks replace a planner's override of them.
    await marking.rescore(session, ref, view, [attempt], moderator, replace={(attempt, i) for i in ids})
    await session.commit()
    return await _one(session, view, named.mask, found.id)


async def _one(session: AsyncSession, view: AssessmentView, masked: anonymity.Mask, sample_id: int) -> SampleView:
    row = await repository.sample(session, sample_id)
    details = await _details(session, view, [row.attempt_id])
    return _sample_view(row, masked, details[row.attempt_id])


# --- scaling --------------------------------------------------------------------------------------


async def scale(
    session: AsyncSession, ref: CourseRef, assessment: str, grader: str, body: ScalingIn, moderator: str
) -> ScalingSet:
    """Scale one grader's marks on the assessment: they count times `factor` (capped at the item's points)
    wherever their marks decide an item, for every attempt they marked; the marks themselves stay as given.
    Scores follow at once through the score path (an overridden score stands). Audited as
    `moderation.scaled`."""
    done = await _rescale(session, ref, assessment, grader, moderator, body)
    assert done is not None  # a scaling set is answered
    return done


async def unscale(session: AsyncSession, ref: CourseRef, assessment: str, grader: str, moderator: str) -> None:
    """Take a grader's scaling away: their marks count as given again. Audited as `moderation.unscaled`."""
    await _rescale(session, ref, assessment, grader, moderator, None)


async def _rescale(
    session: AsyncSession, ref: CourseRef, assessment: str, grader: str, moderator: str, body: ScalingIn | None
) -> ScalingSet | None:
    """Set (`body`) or take away (None) a grader's scaling, and rescore every attempt they marked: the one
    shape of `scale` and `unscale`. Answers the scaling set (None when taken away)."""
    view = await get_assessment(session, ref, assessment)
    # Neither way: a grader who also moderates neither scales nor unscales their own marks.
    if grader in await marking.identities(session, ref, moderator):
        raise Forbidden("You cannot scale your own marks.")
    # Exclusive: no mark of this grader lands between finding their attempts and rescoring them.
    await marking.lock(session, view.assessment.id, [], exclusive=True)
    a = view.assessment.id
    if body is None:
        old = await repository.remove_scaling(session, a, grader)
        if old is None:
            raise NotFound(f"{grader!r}'s marks on {assessment!r} are not scaled.")
        attempts = await _marked_by(session, view, grader)
        now = None
    else:
        attempts = await _marked_by(session, view, grader)
        old = await repository.lock_scaling(session, a, grader)
        now = await repository.put_scaling(session, a, grader, body.factor, moderator, body.reason, clock.now())
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        moderator,
        "moderation.unscaled" if body is None else "moderation.scaled",
        assessment=assessment,
        old=None if old is None else {"grader": grader, "factor": float(old.factor), "reason": old.reason},
        new=None if body is None else {"grader": grader, "factor": float(body.factor), "reason": body.reason},
    )
    done = await marking.rescore(session, ref, view, attempts, moderator)
    await session.commit()
    return None if now is None else extended(now, ScalingSet, rescored=done.changed)


async def _marked_by(session: AsyncSession, view: AssessmentView, grader: str) -> list[int]:
    attempts = await repository.attempts_marked_by(session, view.assessment.id, grader)
    if not attempts:
        raise NotFound(f"{grader!r} has no marks on {view.assessment.external_id!r}.")
    return attempts
