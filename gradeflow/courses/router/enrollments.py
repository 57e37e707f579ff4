"""Learners enrolled in a course."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from gradeflow.core.commands import ExternalId
from gradeflow.core.validation import CleanStr
from gradeflow.courses.commands import EnrollmentBatch, EnrollmentFields, EnrollmentPatch
from gradeflow.courses.schemas.records import BatchResult, EnrollmentOut
from gradeflow.courses.service import enrollments
from gradeflow.http.deps import Cursor, EnrollmentRead, EnrollmentWrite, Limit, PrincipalDep, SessionDep, actor
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/courses/{course}/enrollments", tags=["enrollments"])


@router.get("")
async def list_enrollments(
    session: SessionDep,
    ref: EnrollmentRead,
    limit: Limit = 100,
    cursor: Cursor = None,
    status: Literal["enrolled", "unenrolled"] | None = Query(default=None),
    cohort: CleanStr | None = Query(default=None, max_length=255),
) -> PageOut[EnrollmentOut]:
    """Learners of the course, in enrollment order, optionally by status or cohort."""
    page = await enrollments.list_enrollments(session, ref, limit, cursor, status, cohort)
    return PageOut(items=[EnrollmentOut.model_validate(e) for e in page.items], next_cursor=page.next_cursor)


@router.post(":batch")
async def upsert_enrollments(
    session: SessionDep, principal: PrincipalDep, ref: EnrollmentWrite, body: EnrollmentBatch
) -> BatchResult:
    """Create or replace up to 10,000 enrollments at once (all or nothing). Every new or changed
    enrollment is audited (`enrollment.created`, `enrollment.changed`, `enrollment.unenrolled`)."""
    written = await enrollments.upsert_enrollments(session, ref, body.enrollments, actor(principal))
    return BatchResult(written=written)


@router.put("/{learner}")
async def put_enrollment(
    session: SessionDep, principal: PrincipalDep, ref: EnrollmentWrite, learner: ExternalId, body: EnrollmentFields
) -> EnrollmentOut:
    """Create or replace one learner's enrollment (audited like the batch)."""
    enrollment = await enrollments.put_enrollment(session, ref, learner, body, actor(principal))
    return EnrollmentOut.model_validate(enrollment)


@router.patch("/{learner}")
async def patch_enrollment(
    session: SessionDep, principal: PrincipalDep, ref: EnrollmentWrite, learner: ExternalId, body: EnrollmentPatch
) -> EnrollmentOut:
    """Change some fields of an enrollment (for example unenroll a learner; audited)."""
    enrollment = await enrollments.patch_enrollment(session, ref, learner, body, actor(principal))
    return EnrollmentOut.model_validate(enrollment)


@router.get("/{learner}")
async def get_enrollment(session: SessionDep, ref: EnrollmentRead, learner: ExternalId) -> EnrollmentOut:
    """One learner's enrollment."""
    return EnrollmentOut.model_validate(await enrollments.get_enrollment(session, ref, learner))
