"""Certifications (what a course or an assessment certifies, planners) and the organization's certificate
images (logos and signatures diplomas print; API keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from gradeflow.access.service.access import require_key
from gradeflow.certificates.commands import CertificationIn, ImageName
from gradeflow.certificates.schemas.certificates import CertificateImageLink, CertificateImageOut, CertificationOut
from gradeflow.certificates.service import certificate_images, certifications
from gradeflow.core.commands import ExternalId
from gradeflow.core.errors import TooLarge
from gradeflow.http.deps import (
    NO_STORE,
    CertificateRead,
    Certificates,
    Cursor,
    Limit,
    PrincipalDep,
    RedisDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    actor,
)
from gradeflow.http.errors import CONFLICT, UNSUPPORTED_MEDIA
from gradeflow.http.schemas import PageOut

router = APIRouter(tags=["certificates"])
COURSE = "/v1/courses/{course}/certification"
ASSESSMENT = "/v1/courses/{course}/assessments/{assessment}/certification"


@router.get(COURSE)
async def get_course_certification(session: SessionDep, ref: CertificateRead) -> CertificationOut:
    """What the course certifies: its pass rule and diploma. A course without a certification of its own
    answers the default (`defined: false`): a passing course grade (Open edX's rule) and the label
    catalogue's title."""
    return CertificationOut.model_validate(await certifications.get(session, ref, None))


@router.put(COURSE)
async def put_course_certification(
    session: SessionDep, queue: RedisDep, principal: PrincipalDep, ref: Certificates, body: CertificationIn
) -> CertificationOut:
    """Set what the course certifies: rule `course_passing` (a passing course grade) or `course_percent`
    (a course grade of at least `threshold` percent), and the diploma (title, text, language of its
    labels, signatory, logo and signature images of the organization). The next generation applies the
    rule; `revision` goes up on every change, and the diplomas it changes are rendered again at once.
    Audited as `certification.updated` (old and new)."""
    return CertificationOut.model_validate(await certifications.put(session, queue, ref, None, body, actor(principal)))


@router.delete(COURSE, status_code=status.HTTP_204_NO_CONTENT)
async def delete_course_certification(
    session: SessionDep, queue: RedisDep, principal: PrincipalDep, ref: Certificates
) -> None:
    """Go back to the default certification (idempotent); the diplomas are rendered again with the
    default text. Audited as `certification.deleted`."""
    await certifications.delete(session, queue, ref, None, actor(principal))


@router.get(ASSESSMENT)
async def get_assessment_certification(
    session: SessionDep, ref: CertificateRead, assessment: ExternalId
) -> CertificationOut:
    """What the assessment certifies (404 when it has no certification)."""
    return CertificationOut.model_validate(await certifications.get(session, ref, assessment))


@router.put(ASSESSMENT)
async def put_assessment_certification(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: Certificates,
    assessment: ExternalId,
    body: CertificationIn,
) -> CertificationOut:
    """Set what the assessment certifies: rule `assessment_percent`, a final result of at least
    `threshold` percent, and the diploma (its diplomas are rendered again at once). Audited as
    `certification.updated`."""
    return CertificationOut.model_validate(
        await certifications.put(session, queue, ref, assessment, body, actor(principal))
    )


@router.delete(ASSESSMENT, status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT)
async def delete_assessment_certification(
    session: SessionDep, queue: RedisDep, principal: PrincipalDep, ref: Certificates, assessment: ExternalId
) -> None:
    """Remove the assessment's certification: 404 when it has none, 409 (naming how many) while
    certificates of it exist. Audited as `certification.deleted`."""
    await certifications.delete(session, queue, ref, assessment, actor(principal))


# --- images ---------------------------------------------------------------------------------------

_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def _body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused (413) as soon as it is longer than `max_bytes`."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > max_bytes:
            raise TooLarge(f"An image is at most {max_bytes} bytes.")
    return bytes(data)


@router.put("/v1/certificate-images/{name}", openapi_extra=_IMAGE_BODY, responses=UNSUPPORTED_MEDIA)
async def put_image(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    queue: RedisDep,
    principal: PrincipalDep,
    name: ImageName,
) -> CertificateImageOut:
    """Upload or replace the organization's image `name` (a logo or a signature diplomas print): the raw
    body, Content-Type image/png or image/jpeg (415 otherwise), at most 2 MB (413) and 4096 pixels a
    side; it must decode as the type it says (422 otherwise). Diplomas printing it are rendered again
    with the new one. API keys only. Audited as `certificate_image.set`."""
    require_key(principal)
    content_type = certificate_images.media_type(request.headers.get("content-type"))
    data = await _body(request, certificate_images.MAX_BYTES)
    image = await certificate_images.put(
        session, store, queue, principal.organization_id, name, content_type, data, actor(principal)
    )
    return CertificateImageOut.model_validate(image)


@router.get("/v1/certificate-images")
async def list_images(
    session: SessionDep, principal: PrincipalDep, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[CertificateImageOut]:
    """The organization's certificate images, oldest first (read one for a download link). API keys only."""
    require_key(principal)
    page = await certificate_images.list_images(session, principal.organization_id, limit, cursor)
    return PageOut(items=[CertificateImageOut.model_validate(i) for i in page.items], next_cursor=page.next_cursor)


@router.get("/v1/certificate-images/{name}")
async def get_image(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    name: ImageName,
    response: Response,
) -> CertificateImageLink:
    """An image's description with a download link valid five minutes (its issuance is audited as
    `certificate_image.link_issued`). Never cached. API keys only."""
    require_key(principal)
    image = await certificate_images.get(
        session, store, principal.organization_id, name, actor(principal), settings.reports.link_seconds
    )
    response.headers.update(NO_STORE)
    return CertificateImageLink.model_validate(image)


@router.delete("/v1/certificate-images/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT)
async def delete_image(session: SessionDep, store: StoreDep, principal: PrincipalDep, name: ImageName) -> None:
    """Remove an image (404 when there is none; 409 while a certification prints it). API keys only.
    Audited as `certificate_image.deleted`."""
    require_key(principal)
    await certificate_images.delete(session, store, principal.organization_id, name, actor(principal))
