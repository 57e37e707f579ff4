"""A learner's progress: every assessment with its score, the category averages with the dropped
assessments marked, the total, the cutoffs and the pass mark, and what is still needed for each
cutoff, all from the grading engine under the served policy version.

Staff see the learner's current scores; the learner (with their own user token) sees only what has
been published to them, graded by the same engine. Staff who also mark (anonymity.concealed) do not get
an anonymous assessment's score next to the learner while its anonymity holds: it is left out, and the
averages of its category are withheld (the course grade stays: it mixes every assessment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import Action, course_access
from gradeflow.access.service.auth import Principal
from gradeflow.anonymity import service as anonymity
from gradeflow.core.errors import NotFound
from gradeflow.grades.service import catalogue, sheets
from gradeflow.grading import engine
from gradeflow.grading.policy import Cutoff as PolicyCutoff
from gradeflow.grading.policy import Policy
from gradeflow.grading.results import GradeResult, LearnerResult
from gradeflow.grading.sheet import EXCUSED, GRADED, Sheet
from gradeflow.readside.repository import progress as repository
from gradeflow.readside.repository.progress import OwnDates

# What-if steps for "still needed": the share of the remaining points, 0 to 100 % by 0.1 %.
_STEPS = np.linspace(0.0, 1.0, 1001)


@dataclass(frozen=True)
class Viewer:
    course_id: int
    enrollment_id: int
    learner: str
    published_only: bool
    hidden: frozenset[str] = field(default_factory=frozenset)  # assessments left out for a concealed caller


async def viewer(session: AsyncSession, principal: Principal, course: str, learner: str) -> Viewer:
    """The learner themselves (a user token whose `sub` is the learner: published results only), or
    staff who may read grades in the course."""
    published_only = principal.kind == "user" and principal.subject == learner
    hidden: frozenset[str] = frozenset()
    if published_only:
        course_id = await repository.course_id(session, principal.organization_id, course)
    else:
        ref = await course_access(session, principal, course, Action.GRADE_READ)
        course_id = ref.id
        if anonymity.concealed(principal, ref):
            hidden = await anonymity.hidden_assessments(session, ref.id)
    enrollment_id = await repository.enrollment_id(session, course_id, learner)
    if course_id is None or enrollment_id is None:
        raise NotFound(f"Learner {learner!r} not found in course {course!r}.")
    return Viewer(int(course_id), int(enrollment_id), learner, published_only, hidden)


@dataclass(frozen=True, slots=True)
class ProgressAssessment:
    """An assessment's score as the learner's progress shows it, with their own due date and attempts."""

    assessment: str
    title: str
    category: str
    graded: bool
    excused: bool
    earned: float | None
    possible: float
    percent: float | None
    dropped: bool
    due_at: datetime | None
    allowed_attempts: int


@dataclass(frozen=True, slots=True)
class ProgressCategory:
    """A category's averages (None where withheld) and the assessments its drop rules drop."""

    name: str
    weight: float | None
    current_percent: float | None
    final_percent: float | None
    dropped: list[str]


@dataclass(frozen=True, slots=True)
class Cutoff:
    """A cutoff: reached already, out of reach, or the share of the remaining points that reaches it."""

    grade: str
    min: float
    reached: bool
    reachable: bool
    needed_share_of_remaining: float | None


@dataclass(frozen=True, slots=True)
class Progress:
    learner: str
    published_only: bool
    policy_version: int
    preset: str
    assessments: list[ProgressAssessment]
    categories: list[ProgressCategory]
    current: GradeResult
    final: GradeResult
    pass_mark: float | None
    cutoffs: list[Cutoff]


async def progress(session: AsyncSession, who: Viewer) -> Progress:
    version = await repository.served_version(session, who.course_id)
    if version is None:
        raise NotFound("The course has no grading policy yet.")
    policy = await catalogue.course_policy(session, who.course_id, version)
    ids = np.array([who.enrollment_id], dtype=np.int64)
    if who.published_only:
        sheet = await _published_sheet(session, policy, who.enrollment_id)
    else:
        sheet = await sheets.load_sheet(session, who.course_id, policy, ids)
    result = engine.PRESETS[policy.preset](policy, sheet)[0]
    own = await repository.own_dates(session, who.course_id, who.enrollment_id)
    return Progress(
        learner=who.learner,
        published_only=who.published_only,
        policy_version=version,
        preset=policy.preset,
        assessments=_assessments(who, policy, sheet, result, own),
        categories=_categories(who, policy, result),
        current=result.current,
        final=result.final,
        pass_mark=policy.pass_mark(),
        cutoffs=still_needed(policy, sheet, result.final),
    )


async def _published_sheet(session: AsyncSession, policy: Policy, enrollment_id: int) -> Sheet:
    rows = await repository.published_scores(session, enrollment_id)
    column_of = {a.id: j for j, a in enumerate(policy.assessments)}
    known = [r for r in rows if r.assessment in column_of]
    return sheets.sheet_of(
        policy,
        np.array([enrollment_id], dtype=np.int64),
        np.zeros(len(known), dtype=np.int64),
        np.array([column_of[r.assessment] for r in known], dtype=np.int64),
        np.array([sheets.EXCUSED_STATUS if r.excused else sheets.GRADED_STATUS for r in known], dtype=np.int8),
        np.array([np.nan if r.earned is None else r.earned for r in known], dtype=np.float64),
        np.array([r.possible for r in known], dtype=np.float64),
    )


def _assessments(
    who: Viewer, policy: Policy, sheet: Sheet, result: LearnerResult, own: dict[str, OwnDates]
) -> list[ProgressAssessment]:
    """Every assessment of the policy but those hidden from the caller, with the learner's own dates."""
    dropped = {a for _, _, final in result.categories for a in final.dropped}
    assessments = []
    for j, a in enumerate(policy.assessments):
        if a.id in who.hidden:
            continue
        graded = sheet.state[0, j] == GRADED
        earned = float(sheet.earned[0, j]) if graded else None
        possible = float(sheet.possible[0, j])
        dates = own.get(a.id)
        assessments.append(
            ProgressAssessment(
                assessment=a.id,
                title=a.label or a.id,
                category=a.category,
                graded=bool(graded),
                excused=bool(sheet.state[0, j] == EXCUSED),
                earned=earned,
                possible=possible,
                percent=round(earned / possible * 100, 2) if earned is not None and possible else None,
                dropped=a.id in dropped,
                due_at=dates.due_at if dates else None,
                allowed_attempts=dates.allowed_attempts if dates else 1,
            )
        )
    return assessments


def _categories(who: Viewer, policy: Policy, result: LearnerResult) -> list[ProgressCategory]:
    """The categories' averages; those of a category holding an assessment hidden from the caller withheld."""
    weights = {c.name: c.weight for c in policy.categories}
    withheld = {a.category for a in policy.assessments if a.id in who.hidden}
    return [
        ProgressCategory(name, weights.get(name), None, None, [])
        if name in withheld
        else ProgressCategory(name, weights.get(name), current.percent, final.percent, final.dropped)
        for name, current, final in result.categories
    ]


def still_needed(policy: Policy, sheet: Sheet, final: GradeResult) -> list[Cutoff]:
    """Per cutoff: reached already, out of reach, or the share of the points of everything not yet
    graded that would reach it (the same share on every remaining assessment), found by grading the
    learner once per 0.1 % step in one vectorised call. A cutoff is reached when the preset gives its
    letter or a higher one, so the view agrees with the grade at every boundary."""
    ordered = policy.cutoffs_high_first()
    rank = _letter_rank(ordered)
    final_rank = rank(final.grade)
    what_if_ranks = np.array([rank(grade) for grade in _what_if_letters(policy, sheet)], dtype=np.int64)
    out = []
    for k, cutoff in enumerate(ordered):
        reached = final_rank <= k
        enough = np.nonzero(what_if_ranks <= k)[0]
        needed = float(_STEPS[enough[0]]) if not reached and len(enough) else None
        out.append(Cutoff(cutoff.grade, cutoff.min, reached, reached or needed is not None, needed))
    return out


def _letter_rank(ordered: list[PolicyCutoff]) -> Callable[[str | None], int]:
    """A letter's place among the cutoffs, highest first (its first row); no letter comes after all."""
    places: dict[str, int] = {}
    for k, cutoff in enumerate(ordered):
        places.setdefault(cutoff.grade, k)
    return lambda grade: len(ordered) if grade is None else places.get(grade, len(ordered))


def _what_if_letters(policy: Policy, sheet: Sheet) -> list[str | None]:
    """The learner's final letter per step of `_STEPS`, each step giving that share of the points of
    everything not yet graded or excused; none when nothing remains."""
    remaining = sheet.state[0] != GRADED
    remaining &= sheet.state[0] != EXCUSED
    if not remaining.any():
        return []
    n = len(_STEPS)
    earned = np.repeat(sheet.earned, n, axis=0)
    state = np.repeat(sheet.state, n, axis=0)
    possible = np.repeat(sheet.possible, n, axis=0)
    earned[:, remaining] = _STEPS[:, None] * possible[:, remaining]
    state[:, remaining] = GRADED
    what_if = Sheet(
        learner_ids=[str(k) for k in range(n)],
        assessment_ids=sheet.assessment_ids,
        categories=sheet.categories,
        omit=sheet.omit,
        earned=earned,
        possible=possible,
        state=state,
    )
    return [r.final.grade for r in engine.PRESETS[policy.preset](policy, what_if)]
