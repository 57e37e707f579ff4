"""Course certificates: the allow list, generating certificates, and who holds one (planners)."""

from __future__ import annotations

from fastapi import APIRouter, status

from services.api.deps import Certificates, Cursor, Limit, PrincipalDep, SessionDep, actor
from services.api.schemas.certificates import AllowanceOut, CertificateOut, GenerationOut, GenerationResult
from services.api.schemas.common import PageOut
from shared.services import certificates
from shared.services.inputs import AllowanceIn, ExternalId

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
async def generate(session: SessionDep, principal: PrincipalDep, ref: Certificates) -> GenerationResult:
    """Generate certificates: record who is eligible at this moment and make the certificates agree.
    Eligible: enrolled learners on the allow list (any track, any grade), and enrolled learners on a
    track other than `audit` whose course grade (served policy version, brought current first) passes.
    Each gets, or keeps, a certificate of this generation typed by their track; learners no longer
    eligible lose theirs. Audited (`certificates.generated` with the counts, `certificate.issued` and
    `certificate.revoked` per learner) and announced by the `certificates.generated` event."""
    return GenerationResult.model_validate(await certificates.generate(session, ref, actor(principal)))


@router.get("/generations")
async def list_generations(
    session: SessionDep, ref: Certificates, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[GenerationOut]:
    """Certificate generations of the course, latest first (the latest is the truth)."""
    page = await certificates.list_generations(session, ref, limit, cursor)
    return PageOut(items=[GenerationOut.model_validate(g) for g in page.items], next_cursor=page.next_cursor)


@router.get("")
async def list_certificates(
    session: SessionDep, ref: Certificates, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[CertificateOut]:
    """Learners holding a certificate of the course, in enrollment order: type (their track), reason
    (`passing` or `allowlist`), and the generation that issued or last confirmed it."""
    page = await certificates.list_certificates(session, ref, limit, cursor)
    return PageOut(items=[CertificateOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor)
