"""Anonymous marking: THE rule for who is hidden from whom, the candidate numbers graders know learners
by, the label that stands for a learner, and lifting anonymity.

An assessment is anonymous while `anonymous` is true and anonymity has not been lifted. On it, user
tokens whose course roles include grader or moderator but not planner ("concealed" callers) see a
candidate label (`candidate-4821`) wherever a learner's id would be, and address work by that label;
a real learner id from them is 404, as an unknown label is, so ids cannot be probed. Planners and API
keys (the LMS) always see identities. Audit entries keep naming the real learner (planners read them).

A concealed caller never gets a hidden assessment's per-learner results next to identities, whatever
other role (viewer, publisher) they hold: the results table, dashboard, gradebook (JSON and CSV) and a
learner's progress leave hidden assessments out (and withhold the averages of their categories; the
course grade stays, it mixes every assessment), statistics narrowed to a cohort, group or session refuse
them (403), a publication's skipped list leaves them out, and reports - one file for the course, read by
overseers, not maskable per reader - are 403 to read while the course has a hidden assessment
(`refuse_course_files`). Lists of a hidden assessment they get (queue, attempts, scores, marks) are
ordered and paged by candidate number, never by attempt id (attempts are created in the LMS's, often
the roster's, order).

Turning `anonymous` off (PATCH) shows identities to graders as a lift does; turning it on again hides
them again with the same candidate numbers, unless anonymity was lifted: a lift is final.

Candidate numbers are drawn when first needed (work allocated, a concealed caller's view of an assessment);
drawing only flushes, and the use case that shows or uses the numbers commits them: a write with its own
changes, a read before it answers (`keep_numbers`), so the labels it showed hold for the next request.
Routers ask one question, `concealed(principal, ref)`, and hand the answer (`hide`) to the use case; use
cases resolve a label in a path with `resolve` and see a list through `view`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.anonymity import repository
from gradeflow.anonymity.repository import HIDDEN, LiftState
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, Forbidden, NotFound

# HIDDEN (the SQL condition) lives in the repository; other domains' SQL still takes it from here.
__all__ = [
    "HIDDEN",
    "LABEL_PREFIX",
    "Mask",
    "Named",
    "Shown",
    "concealed",
    "ensure_numbers",
    "hidden_assessments",
    "keep_numbers",
    "label",
    "lift",
    "not_found",
    "refuse_course_files",
    "refuse_hidden",
    "resolve",
    "view",
]

LABEL_PREFIX = "candidate-"
_LABEL = re.compile(r"^candidate-([1-9][0-9]{0,9})$")
_MAX_NUMBER = 2**31 - 1  # candidate_numbers.number is an int4
# Course roles that mark work and are kept from identities on an anonymous assessment, unless planner too.
_MARKING_ROLES = frozenset({"grader", "moderator"})


def label(number: int) -> str:
    """How a candidate number is shown and addressed: one form everywhere."""
    return f"{LABEL_PREFIX}{number}"


def concealed(principal: Principal, ref: CourseRef) -> bool:
    """Whether anonymous assessments hide identities from this caller: a user token that marks
    (grader or moderator) and does not plan the course. API keys and planners always see identities.
    The one question a router asks about anonymity: its answer (`hide`) goes to the use case."""
    return not principal.is_key and bool(ref.roles & _MARKING_ROLES) and "planner" not in ref.roles


async def hidden_assessments(session: AsyncSession, course_id: int) -> frozenset[str]:
    """The course's assessments that hide identities now (external ids): what a concealed caller's
    per-learner views (gradebook, progress) leave out."""
    return await repository.hidden_assessments(session, course_id)


async def refuse_course_files(session: AsyncSession, principal: Principal, ref: CourseRef) -> None:
    """Reports are made once for the whole course (every learner's results, anonymous assessments
    included) and cannot be masked per reader: a concealed caller may not read one while the course has
    an assessment that hides identities from them (403)."""
    if concealed(principal, ref) and await hidden_assessments(session, ref.id):
        raise Forbidden(
            "The course has an anonymous assessment: reports name learners beside its results, so those who"
            " mark it (grader or moderator, not planner) may read reports only once its anonymity is lifted."
        )


async def refuse_hidden(session: AsyncSession, principal: Principal, ref: CourseRef, assessment: str | None) -> None:
    """Who holds an anonymous assessment's certificate pairs learners with its results: a concealed caller may not
    list them, or read a diploma of it, until anonymity is lifted (403)."""
    if assessment is not None and concealed(principal, ref) and assessment in await hidden_assessments(session, ref.id):
        raise Forbidden(
            f"{assessment!r} is marked anonymously: those who mark it (grader or moderator, not planner) may not see"
            " who holds its certificate until its anonymity is lifted."
        )


def not_found(assessment: str) -> NotFound:
    """The one 404 for a concealed caller's learner: an unknown label and a real learner id alike."""
    return NotFound(f"No such candidate at {assessment!r}.")


async def ensure_numbers(session: AsyncSession, course_id: int, assessment_ids: list[int] | None = None) -> bool:
    """Give every learner with an attempt at the course's anonymous assessments (or these) a candidate
    number, set-based; whether it drew any. Cheap when all have one (one EXISTS). It does not commit:
    the use case that shows or uses the numbers keeps them (commits). Concurrent callers wait for each
    other on a per-course lock (held until the transaction ends)."""
    if not await repository.unnumbered_exist(session, course_id, assessment_ids):
        return False
    await repository.lock_numbering(session, course_id)
    while True:  # each round leaves only the few whose drawn number was taken (a tenth at most)
        await repository.draw_numbers(session, course_id, assessment_ids)
        if not await repository.unnumbered_exist(session, course_id, assessment_ids):
            return True


class Shown(Protocol):
    """A row (a frozen dataclass) that names a learner: what a mask shows by candidate label."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def learner(self) -> str: ...


R = TypeVar("R", bound=Shown)


@dataclass
class Mask:
    """How one caller sees the learners of one assessment: `hidden` when they get labels."""

    hidden: bool
    assessment: str
    assessment_id: int | None = None
    labels: dict[str, str] = field(default_factory=dict)  # learner external id -> label
    # The assessment's own allowed attempts: what a hidden row shows instead of the learner's (an extension
    # granted to a learner, or to a group on the roster, would narrow down who the candidate is).
    allowed_attempts: int = 1
    # Numbers were drawn in this transaction: the use case commits to keep them (a caller was shown them).
    drawn: bool = False

    def show(self, learner: str) -> str:
        """The learner as this caller sees them."""
        if not self.hidden:
            return learner
        return self.labels.get(learner, "")

    def rows(self, rows: Iterable[R]) -> list[R]:
        """Rows as this caller sees them: the learner by label, and the assessment's own allowed attempts
        where a row has them, when hidden."""
        if not self.hidden:
            return list(rows)
        return [
            replace(
                r,
                learner=self.show(r.learner),
                **({"allowed_attempts": self.allowed_attempts} if "allowed_attempts" in r.__dataclass_fields__ else {}),
            )
            for r in rows
        ]

    def reals(self, given: list[str] | None) -> tuple[list[str] | None, list[str]]:
        """Learners named by the caller (labels, when hidden): their ids, and what names no candidate."""
        if not self.hidden or given is None:
            return given, []
        by_label = {shown: ext for ext, shown in self.labels.items()}
        return [by_label[g] for g in given if g in by_label], [g for g in given if g not in by_label]


@dataclass(frozen=True, slots=True)
class Named:
    """A learner named in a path: as the caller named them (`shown`: the label, when hidden), who they are
    (`learner`: the id), and the caller's mask of the assessment."""

    mask: Mask
    learner: str
    shown: str


async def view(session: AsyncSession, ref: CourseRef, hide: bool, assessment: str) -> Mask:
    """The view of the assessment's learners of a caller (`hide`: `concealed()` of the caller), all labels
    loaded at once when hidden. An unknown assessment is not hidden: the caller's service answers its 404.
    Numbers it draws are not committed (`Mask.drawn`): the use case commits."""
    if not hide:
        return Mask(False, assessment)
    found = await repository.anonymity_of(session, ref.id, assessment)
    if found is None or not found.hidden:
        return Mask(False, assessment, None if found is None else found.id)
    drawn = await ensure_numbers(session, ref.id, [found.id])
    numbers = await repository.numbers_of(session, found.id)
    labels = {ext: label(number) for ext, number in numbers.items()}
    return Mask(True, assessment, found.id, labels, found.allowed_attempts, drawn)


async def resolve(session: AsyncSession, ref: CourseRef, hide: bool, assessment: str, given: str) -> Named:
    """Resolve a learner named in a path: for a concealed caller on a hidden assessment `given` must be a
    candidate label (a real learner id is 404 like an unknown label); otherwise it is the learner id.
    The mask's `labels` hold just this learner. Numbers it draws are not committed (`Mask.drawn`)."""
    if not hide:
        return Named(Mask(False, assessment), given, given)
    found = await repository.anonymity_of(session, ref.id, assessment)
    if found is None or not found.hidden:
        return Named(Mask(False, assessment, None if found is None else found.id), given, given)
    drawn = await ensure_numbers(session, ref.id, [found.id])
    match = _LABEL.match(given)
    ext = None
    # The grammar allows numbers beyond the column (int4): such a label names no candidate either.
    if match is not None and int(match.group(1)) <= _MAX_NUMBER:
        ext = await repository.learner_numbered(session, found.id, int(match.group(1)))
    if ext is None:
        raise not_found(assessment)
    return Named(Mask(True, assessment, found.id, {ext: given}, found.allowed_attempts, drawn), ext, given)


async def keep_numbers(session: AsyncSession, m: Mask) -> None:
    """A read that drew numbers keeps them (commits), so the labels it shows hold for the next request."""
    if m.drawn:
        await session.commit()


async def lift(session: AsyncSession, ref: CourseRef, assessment: str, actor: str) -> LiftState:
    """Lift anonymity (final): graders see identities from now on. Audited as `assessment.anonymity_lifted`.
    Lifting again answers the first lift; an assessment that is not anonymous is 409."""
    state = await repository.lock_lift_state(session, ref.id, assessment)
    if state is None:
        raise NotFound(f"Assessment {assessment!r} not found in this course.")
    if state.anonymity_lifted_at is not None:
        return state
    if not state.anonymous:
        raise Conflict(f"Assessment {assessment!r} is not anonymous: there is no anonymity to lift.")
    now = clock.now()
    await repository.lift(session, state.id, now, actor)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "assessment.anonymity_lifted",
        assessment=assessment,
        old={"anonymous": True, "anonymity_lifted_at": None},
        new={"anonymous": True, "anonymity_lifted_at": now.isoformat()},
    )
    await session.commit()
    return replace(state, anonymity_lifted_at=now, anonymity_lifted_by=actor)
