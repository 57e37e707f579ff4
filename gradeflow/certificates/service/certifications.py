"""Certifications: what a course (or one assessment) certifies - who passes, and what the diploma says.

A course without a certification certifies as Open edX does: a passing course grade, the default
diploma (the label catalogue's title). An assessment certifies only once it is given one (a pass mark
on its final results). Every change that alters anything bumps `revision` (the diplomas' digest reads
it) and is audited as `certification.updated`; removing one as `certification.deleted`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.certificates.commands import CertificationIn
from gradeflow.certificates.repository import certifications as repository
from gradeflow.certificates.repository.certifications import CertificationFields, CertificationRow, Scope
from gradeflow.certificates.service import diplomas
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from gradeflow.courses.repository import assessments as course_assessments
from gradeflow.reports.labels import languages

# The course certification of a course that has none (its title: the label catalogue's default, in `language`).
DEFAULT = CertificationRow(
    rule="course_passing",
    threshold=None,
    title=None,
    body=None,
    language="en",
    signatory_name=None,
    signatory_title=None,
    logo_image=None,
    signature_image=None,
    revision=0,
    updated_by=None,
    updated_at=None,
)


@dataclass(frozen=True, slots=True)
class CertificationView(CertificationRow):
    """A certification as the API shows it: the assessment it certifies (None: the course), and whether the
    course's is its own (`defined`) or the default."""

    assessment: str | None
    defined: bool


async def scope_of(session: AsyncSession, ref: CourseRef, assessment: str | None) -> Scope:
    """The course, or the course's assessment `assessment` (404 naming it when the course has none)."""
    return await scope_in(session, ref.id, assessment)


async def scope_in(session: AsyncSession, course_id: int, assessment: str | None) -> Scope:
    """`scope_of` by the course's id (the worker's side)."""
    if assessment is None:
        return Scope(None, None)
    found = await course_assessments.assessment_id(session, course_id, assessment)
    if found is None:
        raise NotFound(f"Assessment {assessment!r} not found in this course.")
    return Scope(found, assessment)


async def certifies(session: AsyncSession, course_id: int, assessment: str) -> bool:
    """Whether the course's assessment `assessment` has a certification (an assessment's certificates
    exist only under one: its certification cannot be removed while valid ones exist, and removing it
    removes the revoked ones)."""
    return await repository.certifies(session, course_id, assessment)


def _shape(scope: Scope, row: CertificationRow | None) -> CertificationView:
    if row is None:
        return CertificationView(**dataclasses.asdict(DEFAULT), assessment=None, defined=False)
    return CertificationView(**dataclasses.asdict(row), assessment=scope.assessment, defined=True)


def _fields(values: CertificationRow | CertificationIn, rule: str) -> CertificationFields:
    held = {f.name: getattr(values, f.name) for f in dataclasses.fields(CertificationFields)}
    return CertificationFields(**(held | {"rule": rule}))


async def rule_of(session: AsyncSession, ref: CourseRef, scope: Scope) -> tuple[str, Decimal | None]:
    """The pass rule and threshold a generation applies (the default for a course without one); 404 for
    an assessment without a certification."""
    row = await repository.certification_of(session, ref.id, scope)
    if row is None:
        if scope.assessment_id is not None:
            raise NotFound(f"The assessment {scope.assessment!r} has no certification.")
        return DEFAULT.rule, None
    return row.rule, row.threshold


async def get(session: AsyncSession, ref: CourseRef, assessment: str | None) -> CertificationView:
    """The course's certification (the default, `defined: false`, when it has none), or an assessment's
    (404 when it has none)."""
    scope = await scope_of(session, ref, assessment)
    row = await repository.certification_of(session, ref.id, scope)
    if row is None and scope.assessment_id is not None:
        raise NotFound(f"The assessment {assessment!r} has no certification.")
    return _shape(scope, row)


def _rule(scope: Scope, body: CertificationIn) -> str:
    """The rule the body asks for, or the scope's default; 422 for one the scope cannot have, or a
    percent rule without its threshold."""
    rule: str
    if body.rule is None:
        if scope.assessment_id is not None:
            rule = "assessment_percent"
        else:
            rule = "course_percent" if body.threshold is not None else "course_passing"
    elif scope.assessment_id is not None and body.rule != "assessment_percent":
        raise ValidationFailed.one("/rule", "An assessment's certification has the rule assessment_percent.")
    elif scope.assessment_id is None and body.rule == "assessment_percent":
        raise ValidationFailed.one("/rule", "A course's certification has the rule course_passing or course_percent.")
    else:
        rule = body.rule
    if rule != "course_passing" and body.threshold is None:
        raise ValidationFailed.one("/threshold", f"The rule {rule} needs a threshold (0-100).")
    return rule


async def _check_references(session: AsyncSession, organization_id: int, body: CertificationIn) -> None:
    """422 naming each field that names what does not exist: a language without labels, an image the
    organization has not uploaded. The images found are locked (KEY SHARE) until the commit, so they
    cannot be deleted in between."""
    errors: list[FieldError] = []
    if body.language not in languages():
        choices = ", ".join(languages())
        errors.append(FieldError("/language", f"No labels in {body.language!r}; the languages are {choices}."))
    names = [n for n in (body.logo_image, body.signature_image) if n is not None]
    found = await repository.lock_images_named(session, organization_id, names)
    for field in ("logo_image", "signature_image"):
        name = getattr(body, field)
        if name is not None and name not in found:
            errors.append(FieldError(f"/{field}", f"The organization has no certificate image {name!r}."))
    if errors:
        raise ValidationFailed(errors)


def _comparable(values: CertificationFields) -> CertificationFields:
    # 70 and 70.0000 are one threshold.
    t = values.threshold
    return dataclasses.replace(values, threshold=None if t is None else Decimal(t).normalize())


async def put(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str | None,
    body: CertificationIn,
    actor: str,
) -> CertificationView:
    """Create or replace a certification. Nothing changes (no revision, no audit entry) when the body
    says what is stored already. After a change, the course's diplomas it altered are rendered again
    ahead of time (asked for after the commit), so a link to one rarely has to wait."""
    scope = await scope_of(session, ref, assessment)
    new = _fields(body, _rule(scope, body))
    await _check_references(session, ref.organization_id, body)
    # One change of a course's certifications at a time, and none while a generation decides.
    await repository.lock_course(session, ref.id)
    old_row = await repository.certification_of(session, ref.id, scope, lock=True)
    old = None if old_row is None else _fields(old_row, old_row.rule)
    if old is not None and _comparable(old) == _comparable(new):
        await session.commit()
        return _shape(scope, old_row)
    await repository.save_certification(session, ref.id, scope, new, actor, clock.now())
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "certification.updated",
        assessment=scope.assessment,
        old=None if old is None else dataclasses.asdict(old),
        new=dataclasses.asdict(new),
    )
    await session.commit()
    await diplomas.request_render(queue, ref.id)
    return _shape(scope, await repository.certification_of(session, ref.id, scope))


async def delete(session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str | None, actor: str) -> None:
    """Remove a certification. The course's goes back to the default (nothing to do if it has none;
    its diplomas are rendered again with the default text ahead of time); an assessment's is 404 when
    it has none, and 409 while valid certificates of it exist; its revoked certificates go with it
    (each audited as `certificate.removed`, with who revoked it and why)."""
    scope = await scope_of(session, ref, assessment)
    await repository.lock_course(session, ref.id)
    row = await repository.certification_of(session, ref.id, scope, lock=True)
    if row is None:
        if scope.assessment_id is not None:
            raise NotFound(f"The assessment {assessment!r} has no certification.")
        return
    if scope.assessment_id is not None and assessment is not None:
        held = await repository.count_valid_certificates(session, scope.assessment_id)
        if held:
            raise Conflict(
                f"{held} valid certificate{'s' if held != 1 else ''} of the assessment {assessment!r} exist"
                f"{'' if held != 1 else 's'}: revoke them (or generate after changing the rule) before"
                " removing its certification.",
                extra={"certificates": held},
            )
        await repository.remove_certificates_of_assessment(
            session, audit.stamp(ref.organization_id, ref.id, actor), scope.assessment_id, assessment
        )
    await repository.delete_certification(session, ref.id, scope)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "certification.deleted",
        assessment=scope.assessment,
        old=dataclasses.asdict(_fields(row, row.rule)),
    )
    await session.commit()
    if scope.assessment_id is None:
        await diplomas.request_render(queue, ref.id)
