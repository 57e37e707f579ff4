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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.certificates.service import certifications
from gradeflow.core.commands import Command
from gradeflow.core.errors import FieldError, ValidationFailed
from gradeflow.courses.service import sessions
from gradeflow.reports.commands import (
    CertificatesZipParams,
    GroupProgressionParams,
    IndividualProgressionParams,
    SkillsXlsxParams,
)
from gradeflow.reports.labels import languages
from gradeflow.reports.service import progression_report, skills_report

# How many unknown learners, or known groups and cohorts, an error names (the rest are counted).
NAMED = 20


async def check(session: AsyncSession, course_id: int, params: Command) -> None:
    """Raise ValidationFailed naming each reference in `params` that the course (or the label
    catalogue) does not have."""
    errors: list[FieldError] = []
    language = getattr(params, "language", None)
    if language is not None and language not in languages():
        choices = ", ".join(languages())
        errors.append(FieldError("/params/language", f"No labels in {language!r}; the languages are {choices}."))
    assessment = getattr(params, "assessment", None)
    if assessment is not None and not await _has_assessment(session, course_id, assessment):
        errors.append(FieldError("/params/assessment", f"The course has no assessment {assessment!r}."))
    learners: list[str] | None = getattr(params, "learners", None)
    if learners is not None:
        errors += await _unknown_learners(session, course_id, learners)
    for field in ("group", "cohort"):
        label = getattr(params, field, None)
        if label is not None:
            errors += await _empty_label(session, course_id, field, label)
    course_session = getattr(params, "session", None)
    if course_session is not None and await sessions.unknown(session, course_id, course_session):
        errors.append(FieldError("/params/session", f"The course has no session {course_session!r}."))
    if isinstance(params, SkillsXlsxParams) and not errors:
        too_wide = (await skills_report.layout(session, course_id, params.assessment)).too_wide()
        if too_wide is not None:
            errors.append(FieldError("/params/assessment", too_wide))
    if isinstance(params, GroupProgressionParams | IndividualProgressionParams) and not errors:
        errors += await _no_initial(session, course_id, params.assessment)
    certificates = isinstance(params, CertificatesZipParams) or getattr(params, "kind", None) == "certificates"
    if certificates and assessment is not None and not errors:  # the ZIP of diplomas, a certificate mailing
        errors += await _not_certified(session, course_id, assessment)
    if errors:
        raise ValidationFailed(errors)


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


async def _has_assessment(session: AsyncSession, course_id: int, external_id: str) -> bool:
    found = await session.scalar(
        text("SELECT 1 FROM assessments WHERE course_id = :c AND external_id = :a"), {"c": course_id, "a": external_id}
    )
    return found is not None


async def _unknown_learners(session: AsyncSession, course_id: int, learners: list[str]) -> list[FieldError]:
    rows = await session.execute(
        text(
            """
            SELECT l.i - 1, l.learner FROM unnest(CAST(:learners AS text[])) WITH ORDINALITY AS l(learner, i)
            WHERE NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.course_id = :c AND e.external_id = l.learner)
            ORDER BY l.i
            """
        ),
        {"c": course_id, "learners": learners},
    )
    unknown = rows.all()
    errors = [
        FieldError(f"/params/learners/{i}", f"{learner!r} is not enrolled in this course.")
        for i, learner in unknown[:NAMED]
    ]
    if len(unknown) > NAMED:
        errors.append(FieldError("/params/learners", f"... and {len(unknown) - NAMED:,} more not enrolled."))
    return errors


# Enrollments carry one cohort each, and a list of groups.
_MEMBERS = {"cohort": "e.cohort = :label", "group": "CAST(:label AS text) = ANY(e.groups)"}
_LABELS = {"cohort": "SELECT DISTINCT e.cohort", "group": "SELECT DISTINCT unnest(e.groups)"}


async def _empty_label(session: AsyncSession, course_id: int, field: str, label: str) -> list[FieldError]:
    members = await session.scalar(
        text(f"SELECT 1 FROM enrollments e WHERE e.course_id = :c AND {_MEMBERS[field]} LIMIT 1"),  # noqa: S608
        {"c": course_id, "label": label},
    )
    if members is not None:
        return []
    known = (
        await session.scalars(
            text(
                f"SELECT x FROM ({_LABELS[field]} AS x FROM enrollments e WHERE e.course_id = :c) y"  # noqa: S608
                " WHERE x IS NOT NULL ORDER BY x LIMIT :n"
            ),
            {"c": course_id, "n": NAMED + 1},
        )
    ).all()
    shown = ", ".join(repr(x) for x in known[:NAMED]) + (", ..." if len(known) > NAMED else "")
    where = f"the course's {field}s are {shown}" if known else f"the course has no {field}s"
    return [FieldError(f"/params/{field}", f"Nobody in the course is in {field} {label!r} ({where}).")]
