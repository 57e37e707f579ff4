"""Course certificates: the allow list, generating certificates, revoking them, and who holds one
(planners manage them; those who oversee results read the list)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from gradeflow.anonymity import service as anonymity
from gradeflow.certificates.commands import GenerateIn, ReinstateIn, RevokeIn
from gradeflow.certificates.schemas.certificates import AllowanceOut, CertificateOut, GenerationOut, GenerationResult
from gradeflow.certificates.service import certificates
from gradeflow.core.commands import ExternalId, Moment
from gradeflow.courses.commands import AllowanceIn
from gradeflow.http.deps import CertificateRead, Certificates, Cursor, Limit, PrincipalDep, RedisDep, SessionDep, actor
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.readside.router.common import LearnerFilters

router = APIRouter(prefix="/v1/courses/{course}/certificates", tags=["certificates"])


@router.get("/allowlist")
async def list_allowlist(
    session: SessionDep, ref: Certificates, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[AllowanceOut]:
    """Learners on the course's allow list (eligible for a certificate whatever their track or grade),
    in the order they were added."""
    page = await certificates.list_allowlist(session, ref, limit, cursor)
    return PageOut(items=[AllowanceOut.model_validate(a) for a in page.items], next_cursor=page.next_cursor)


@router.put("/allowlist/{learner}")
async def allow(
    session: SessionDep, principal: PrincipalDep, ref: Certificates, learner: ExternalId, body: AllowanceIn
) -> AllowanceOut:
    """Put an enrolled learner on the allow list, or change their notes (404 if they are not enrolled).
    They are eligible from the next generation on. Audited as `certificate.allowlisted`."""
    return AllowanceOut.model_validate(await certificates.allow(session, ref, learner, body.notes, actor(principal)))


@router.delete("/allowlist/{learner}", status_code=status.HTTP_204_NO_CONTENT)
async def disallow(session: SessionDep, principal: PrincipalDep, ref: Certificates, learner: ExternalId) -> None:
    """Take a learner off the allow list (idempotent: 204 whether or not they were on it; 404 if they
    are not enrolled). A certificate they hold stays until the next generation. Audited as
    `certificate.allowlist_removed` when they were on it."""
    await certificates.disallow(session, ref, learner, actor(principal))


@router.post(":generate", status_code=status.HTTP_201_CREATED)
async def generate(
    session: SessionDep, queue: RedisDep, principal: PrincipalDep, ref: Certificates, body: GenerateIn | None = None
) -> GenerationResult:
    """Generate certificates of a certification: the course's (no body, or no `assessment`) or an
    assessment's (`{"assessment": ...}`; 404 when it has no certification). Records who is eligible at
    this moment and makes that certification's certificates agree.
    The course's: enrolled learners on the allow list (any track, any grade), and enrolled learners on
    a track other than `audit` whose course grade (served policy version, brought current first) passes
    (rule course_passing) or reaches the threshold percent (course_percent).
    An assessment's: enrolled learners whose result at it is final (graded, not excused, confirmed where
    it has manual items) and at least the threshold percent (exactly the threshold passes).
    Each gets, or keeps, a certificate of this generation typed by their track; learners no longer
    eligible lose theirs; a revoked certificate is left as it is (not issued again until reinstated).
    The diplomas are then rendered by a worker. Audited (`certificates.generated` with the counts,
    `certificate.issued` and `certificate.removed` per learner) and announced by the
    `certificates.generated` event; the result's `removed` counts the certificates the generation took
    away (`certificate.removed` per learner - not a revocation, which is staff's `:revoke`)."""
    assessment = body.assessment if body is not None else None
    return GenerationResult.model_validate(
        await certificates.generate(session, queue, ref, assessment, actor(principal))
    )


@router.get("/generations")
async def list_generations(
    session: SessionDep, ref: Certificates, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[GenerationOut]:
    """Certificate generations of the course, latest first (the latest is the truth)."""
    page = await certificates.list_generations(session, ref, limit, cursor)
    return PageOut(items=[GenerationOut.model_validate(g) for g in page.items], next_cursor=page.next_cursor)


@dataclass
class CertificateFilters:
    """Which certificates: of one certification (`assessment`, absent for the course's), issued in
    [since, until), and valid ones (revoked=false, the default) or revoked ones; with the results
    table's learner filters (the read side's LearnerFilters). With `assessment`, `session` keeps the learners
    whose attempt at that assessment is in the session (as the results table of it does)."""

    assessment: Annotated[
        ExternalId | None, Query(description="An assessment's certificates (absent: the course's).")
    ] = None
    since: Annotated[Moment | None, Query(description="Issued at or after this time.")] = None
    until: Annotated[Moment | None, Query(description="... and before this time (later than since).")] = None
    revoked: Annotated[bool, Query(description="true: the revoked certificates instead of the valid ones.")] = False


@router.get("")
async def list_certificates(
    session: SessionDep,
    principal: PrincipalDep,
    ref: CertificateRead,
    filters: Annotated[CertificateFilters, Depends()],
    learners: Annotated[LearnerFilters, Depends()],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> PageOut[CertificateOut]:
    """Learners holding a certificate of the course (or of `assessment`), in enrollment order: name,
    e-mail, verification code, type (their track), reason (`passing` or `allowlist`), the generation
    that issued or last confirmed it, when it was issued, and for revoked ones who revoked it and why.
    Readable by planners, viewers and publishers (those who oversee results), not by graders; a
    publisher limited to some assessments reads only those assessments' certificates (403 otherwise), and
    those who mark an anonymous assessment (grader or moderator, not planner) not its certificates (403).
    422 when `until` is not later than `since`."""
    await anonymity.refuse_hidden(session, principal, ref, filters.assessment)
    f = certificates.CertificateFilter(**vars(filters), **vars(learners))
    page = await certificates.list_certificates(session, ref, principal, f, limit, cursor)
    return PageOut(items=[CertificateOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor)


@router.post("/{learner}:revoke", responses=CONFLICT)
async def revoke(
    session: SessionDep, principal: PrincipalDep, ref: Certificates, learner: ExternalId, body: RevokeIn
) -> CertificateOut:
    """Revoke a learner's certificate of the course (or of `assessment`), giving the reason: it is no
    longer valid, shown to the learner or sent, from now on, and generations leave it revoked until it
    is reinstated. 404 when they hold none, 409 when it is already revoked. Audited and announced as
    `certificate.revoked`."""
    held = await certificates.revoke(session, ref, learner, body.assessment, body.reason, actor(principal))
    return CertificateOut.model_validate(held)


@router.post("/{learner}:reinstate", responses=CONFLICT)
async def reinstate(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Certificates,
    learner: ExternalId,
    body: ReinstateIn | None = None,
) -> CertificateOut:
    """Reinstate a revoked certificate: valid again at once, with its code (404 when they hold none,
    409 when it is not revoked). Audited and announced as `certificate.reinstated`."""
    assessment = body.assessment if body is not None else None
    return CertificateOut.model_validate(
        await certificates.reinstate(session, ref, learner, assessment, actor(principal))
    )
