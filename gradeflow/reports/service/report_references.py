"""What a report request names must exist, checked when the report is asked for.

A typo in an assessment, a learner, a group or a cohort of the course, or in the language of the
labels, is a 422 naming the field, never a queued job that fails later or, worse, an empty file that
reads as "nobody did anything". Groups and cohorts exist only as labels on enrollments, so one with
nobody in it cannot be told from a misspelt one: it is refused, with the names the course has. An
empty report stays legitimate when its selection has learners but nothing matches (no graded result
yet, filters that match no attempt).

The worker checks the assessment again: it may be deleted between the request and the build. A
language removed meanwhile is not an error there: the labels fall back to English.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.certificates.service import certifications
from gradeflow.core.commands import Command
from gradeflow.core.errors import FieldError, ValidationFailed
from gradeflow.courses.service import sessions
from gradeflow.reports.commands import (
    GroupProgressionParams,
    IndividualProgressionParams,
    SkillsXlsxParams,
)
from gradeflow.reports.labels import languages
from gradeflow.reports.repository import references as repository
from gradeflow.reports.repository.references import Label
from gradeflow.reports.service import progression_report, skills_report

# How many unknown learners, or known groups and cohorts, an error names (the rest are counted).
NAMED = 20


# A kind's own check, run once the references are known to exist: more field errors.
KindCheck = Callable[[AsyncSession, int, Any], Awaitable[list[FieldError]]]


async def check(session: AsyncSession, course_id: int, params: Command, kind_check: KindCheck | None = None) -> None:
    """Raise ValidationFailed naming each reference in `params` that the course (or the label
    catalogue) does not have, then what the kind's own check (`kind_check`) finds."""
    errors: list[FieldError] = []
    language = getattr(params, "language", None)
    if language is not None and language not in languages():
        choices = ", ".join(languages())
        errors.append(FieldError("/params/language", f"No labels in {language!r}; the languages are {choices}."))
    assessment = getattr(params, "assessment", None)
    if assessment is not None and not await repository.has_assessment(session, course_id, assessment):
        errors.append(FieldError("/params/assessment", f"The course has no assessment {assessment!r}."))
    learners: list[str] | None = getattr(params, "learners", None)
    if learners is not None:
        errors += await _unknown_learners(session, course_id, learners)
    fields: tuple[Label, ...] = ("group", "cohort")
    for field in fields:
        label = getattr(params, field, None)
        if label is not None:
            errors += await _empty_label(session, course_id, field, label)
    course_session = getattr(params, "session", None)
    if course_session is not None and await sessions.unknown(session, course_id, course_session):
        errors.append(FieldError("/params/session", f"The course has no session {course_session!r}."))
    if kind_check is not None and not errors:
        errors += await kind_check(session, course_id, params)
    if getattr(params, "kind", None) == "certificates" and assessment is not None and not errors:  # a mailing
        errors += await certified(session, course_id, params)
    if errors:
        raise ValidationFailed(errors)


# --- the kinds' own checks (gradeflow/reports/kinds.py names each kind's) ----------------------------


async def skills_fit(session: AsyncSession, course_id: int, params: SkillsXlsxParams) -> list[FieldError]:
    """The skills file fits a sheet."""
    too_wide = (await skills_report.layout(session, course_id, params.assessment)).too_wide()
    return [] if too_wide is None else [FieldError("/params/assessment", too_wide)]


async def has_initial(
    session: AsyncSession, course_id: int, params: GroupProgressionParams | IndividualProgressionParams
) -> list[FieldError]:
    """A progression report compares a final test with the initial test it names: it must name one."""
    return await _no_initial(session, course_id, params.assessment)


async def certified(session: AsyncSession, course_id: int, params: Any) -> list[FieldError]:
    """An assessment's certificates (the ZIP of diplomas, a certificate mailing) exist only under its
    certification."""
    assessment = getattr(params, "assessment", None)
    return [] if assessment is None else await _not_certified(session, course_id, assessment)


async def _no_initial(session: AsyncSession, course_id: int, final: str) -> list[FieldError]:
    """A progression report compares a final test with the initial test it names: it must name one."""
    if await progression_report.initial_of(session, course_id, final) is not None:
        return []
    return [FieldError("/params/assessment", f"The assessment {final!r} has no initial assessment.")]


async def _not_certified(session: AsyncSession, course_id: int, assessment: str) -> list[FieldError]:
    """An assessment's certificates exist only under its certification."""
    if await certifications.certifies(session, course_id, assessment):
        return []
    return [FieldError("/params/assessment", f"The assessment {assessment!r} has no certification.")]


async def _unknown_learners(session: AsyncSession, course_id: int, learners: list[str]) -> list[FieldError]:
    unknown = await repository.unknown_learners(session, course_id, learners)
    errors = [
        FieldError(f"/params/learners/{u.index}", f"{u.learner!r} is not enrolled in this course.")
        for u in unknown[:NAMED]
    ]
    if len(unknown) > NAMED:
        errors.append(FieldError("/params/learners", f"... and {len(unknown) - NAMED:,} more not enrolled."))
    return errors


async def _empty_label(session: AsyncSession, course_id: int, field: Label, label: str) -> list[FieldError]:
    if await repository.has_members(session, course_id, field, label):
        return []
    known = await repository.labels(session, course_id, field, NAMED + 1)
    shown = ", ".join(repr(x) for x in known[:NAMED]) + (", ..." if len(known) > NAMED else "")
    where = f"the course's {field}s are {shown}" if known else f"the course has no {field}s"
    return [FieldError(f"/params/{field}", f"Nobody in the course is in {field} {label!r} ({where}).")]
