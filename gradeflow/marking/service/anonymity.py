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
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, Forbidden, NotFound

LABEL_PREFIX = "candidate-"
_LABEL = re.compile(r"^candidate-([1-9][0-9]{0,9})$")
_MAX_NUMBER = 2**31 - 1  # candidate_numbers.number is an int4
# Course roles that mark work and are kept from identities on an anonymous assessment, unless planner too.
_MARKING_ROLES = frozenset({"grader", "moderator"})

# SQL condition: assessment `a` hides identities from concealed callers.
HIDDEN = "(a.anonymous AND a.anonymity_lifted_at IS NULL)"


def label(number: int) -> str:
    """How a candidate number is shown and addressed: one form everywhere."""
    return f"{LABEL_PREFIX}{number}"


def concealed(principal: Principal, ref: CourseRef) -> bool:
    """Whether anonymous assessments hide identities from this caller: a user token that marks
    (grader or moderator) and does not plan the course. API keys and planners always see identities."""
    return not principal.is_key and bool(ref.roles & _MARKING_ROLES) and "planner" not in ref.roles


async def hidden_assessments(session: AsyncSession, course_id: int) -> frozenset[str]:
    """The course's assessments that hide identities now (external ids): what a concealed caller's
    per-learner views (gradebook, progress) leave out."""
    rows = await session.execute(
        text(f"SELECT a.external_id FROM assessments a WHERE a.course_id = :c AND {HIDDEN}"),  # noqa: S608
        {"c": course_id},
    )
    return frozenset(str(r[0]) for r in rows)


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


# Numbers for learners with an attempt and none yet: each drawn at random from 1001 up to ten times the
# assessment's attempts (at least 9,999), so a number says nothing of enrollment order, ids, or when the
# learner started (a late starter's number falls among the others', not above them). A number another
# candidate holds (or drew in the same statement) is skipped: ensure_numbers() draws again for those.
_ASSIGN = text(
    f"""
    WITH missing AS (
      SELECT t.assessment_id, t.enrollment_id FROM attempts t JOIN assessments a ON a.id = t.assessment_id
      WHERE a.course_id = :c AND {HIDDEN} AND (CAST(:ids AS bigint[]) IS NULL OR a.id = ANY(CAST(:ids AS bigint[])))
        AND NOT EXISTS (SELECT 1 FROM candidate_numbers n
                        WHERE n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id)
    ),
    sizes AS (
      SELECT t.assessment_id, greatest(8999, 10 * count(*)) AS size FROM attempts t
      WHERE t.assessment_id IN (SELECT assessment_id FROM missing) GROUP BY t.assessment_id
    )
    INSERT INTO candidate_numbers (assessment_id, enrollment_id, number)
    SELECT m.assessment_id, m.enrollment_id, 1001 + floor(random() * s.size)::int
    FROM missing m JOIN sizes s ON s.assessment_id = m.assessment_id
    ON CONFLICT DO NOTHING
    """  # noqa: S608  (constant SQL)
)

_ANY_MISSING = text(
    f"""
    SELECT EXISTS (
      SELECT 1 FROM attempts t JOIN assessments a ON a.id = t.assessment_id
      WHERE a.course_id = :c AND {HIDDEN} AND (CAST(:ids AS bigint[]) IS NULL OR a.id = ANY(CAST(:ids AS bigint[])))
        AND NOT EXISTS (SELECT 1 FROM candidate_numbers n
                        WHERE n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id))
    """  # noqa: S608  (constant SQL)
)


async def ensure_numbers(session: AsyncSession, course_id: int, assessment_ids: list[int] | None = None) -> None:
    """Give every learner with an attempt at the course's anonymous assessments (or these) a candidate
    number, set-based. Cheap when all have one (one EXISTS). When it assigns, it commits: call it before
    the request's own writes. Concurrent callers wait for each other on a per-course lock."""
    params = {"c": course_id, "ids": assessment_ids}
    if not await session.scalar(_ANY_MISSING, params):
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('candidate_numbers', :c))"), {"c": course_id}
    )
    while True:  # each round leaves only the few whose drawn number was taken (a tenth at most)
        await session.execute(_ASSIGN, params)
        if not await session.scalar(_ANY_MISSING, params):
            break
    await session.commit()


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

    def show(self, learner: str) -> str:
        """The learner as this caller sees them."""
        if not self.hidden:
            return learner
        return self.labels.get(learner, "")

    def rows(self, rows: Iterable[dict[str, Any]], key: str = "learner") -> list[dict[str, Any]]:
        if not self.hidden:
            return list(rows)
        return [
            {
                **r,
                key: self.show(r[key]),
                **({"allowed_attempts": self.allowed_attempts} if "allowed_attempts" in r else {}),
            }
            for r in rows
        ]

    def reals(self, given: list[str] | None) -> tuple[list[str] | None, list[str]]:
        """Learners named by the caller (labels, when hidden): their ids, and what names no candidate."""
        if not self.hidden or given is None:
            return given, []
        by_label = {shown: ext for ext, shown in self.labels.items()}
        return [by_label[g] for g in given if g in by_label], [g for g in given if g not in by_label]

    def confirmation(self, result: dict[str, Any], unknown: list[str]) -> dict[str, Any]:
        """A confirmation's answer as the caller sees it (what named no candidate: skipped, not found)."""
        if not self.hidden:
            return result
        return {
            "confirmed": [self.show(x) for x in result["confirmed"]],
            "skipped": [*self.rows(result["skipped"]), *({"learner": g, "reason": "not found"} for g in unknown)],
        }


async def _assessment(session: AsyncSession, ref: CourseRef, assessment: str) -> tuple[int, bool, int] | None:
    row = (
        await session.execute(
            text(
                f"SELECT a.id, {HIDDEN}, a.allowed_attempts FROM assessments a"  # noqa: S608
                " WHERE a.course_id = :c AND a.external_id = :a"
            ),
            {"c": ref.id, "a": assessment},
        )
    ).first()
    return None if row is None else (int(row[0]), bool(row[1]), int(row[2]))


async def mask(session: AsyncSession, ref: CourseRef, hide: bool, assessment: str) -> Mask:
    """The view of the assessment's learners of a caller (`hide`: `concealed()` of the caller), all labels
    loaded at once when hidden. An unknown assessment is not hidden: the caller's service answers its 404."""
    if not hide:
        return Mask(False, assessment)
    found = await _assessment(session, ref, assessment)
    if found is None or not found[1]:
        return Mask(False, assessment, None if found is None else found[0])
    await ensure_numbers(session, ref.id, [found[0]])
    rows = await session.execute(
        text(
            """
            SELECT e.external_id, n.number FROM candidate_numbers n JOIN enrollments e ON e.id = n.enrollment_id
            WHERE n.assessment_id = :a
            """
        ),
        {"a": found[0]},
    )
    return Mask(True, assessment, found[0], {ext: label(number) for ext, number in rows}, found[2])


async def learner(session: AsyncSession, ref: CourseRef, hide: bool, assessment: str, given: str) -> Mask:
    """Resolve a learner named in a path: for a concealed caller on a hidden assessment `given` must be a
    candidate label (a real learner id is 404 like an unknown label); otherwise it is the learner id.
    Returns the mask, whose `labels` then hold just this learner; `real(mask, given)` gives the id."""
    if not hide:
        return Mask(False, assessment)
    found = await _assessment(session, ref, assessment)
    if found is None or not found[1]:
        return Mask(False, assessment, None if found is None else found[0])
    await ensure_numbers(session, ref.id, [found[0]])
    match = _LABEL.match(given)
    ext = None
    # The grammar allows numbers beyond the column (int4): such a label names no candidate either.
    if match is not None and int(match.group(1)) <= _MAX_NUMBER:
        ext = await session.scalar(
            text(
                """
                SELECT e.external_id FROM candidate_numbers n JOIN enrollments e ON e.id = n.enrollment_id
                WHERE n.assessment_id = :a AND n.number = :n
                """
            ),
            {"a": found[0], "n": int(match.group(1))},
        )
    if ext is None:
        raise not_found(assessment)
    return Mask(True, assessment, found[0], {ext: given}, found[2])


def real(m: Mask, given: str) -> str:
    """The learner id behind what the caller gave (the label, when hidden)."""
    if not m.hidden:
        return given
    return next(ext for ext, shown in m.labels.items() if shown == given)


async def lift(session: AsyncSession, ref: CourseRef, assessment: str, actor: str) -> dict[str, Any]:
    """Lift anonymity (final): graders see identities from now on. Audited as `assessment.anonymity_lifted`.
    Lifting again answers the first lift; an assessment that is not anonymous is 409."""
    row = (
        await session.execute(
            text(
                """
                SELECT id, anonymous, anonymity_lifted_at, anonymity_lifted_by FROM assessments
                WHERE course_id = :c AND external_id = :a FOR UPDATE
                """
            ),
            {"c": ref.id, "a": assessment},
        )
    ).first()
    if row is None:
        raise NotFound(f"Assessment {assessment!r} not found in this course.")
    if row.anonymity_lifted_at is None:
        if not row.anonymous:
            raise Conflict(f"Assessment {assessment!r} is not anonymous: there is no anonymity to lift.")
        now = clock.now()
        await session.execute(
            text("UPDATE assessments SET anonymity_lifted_at = :now, anonymity_lifted_by = :by WHERE id = :id"),
            {"now": now, "by": actor, "id": row.id},
        )
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
        lifted_at, lifted_by = now, actor
    else:
        lifted_at, lifted_by = row.anonymity_lifted_at, row.anonymity_lifted_by
    return {
        "assessment": assessment,
        "anonymous": bool(row.anonymous),
        "anonymity_lifted_at": lifted_at,
        "anonymity_lifted_by": lifted_by,
    }
