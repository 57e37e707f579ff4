"""Diplomas: a certificate's diploma PDF through a five-minute signed link, for staff who manage
certificates and for the learner who holds it; the learner's own list of certificates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from gradeflow.anonymity import service as anonymity
from gradeflow.certificates.schemas.diplomas import DiplomaOut, MyCertificateOut, MyCertificates
from gradeflow.certificates.service import certificates, diplomas
from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import (
    NO_STORE,
    CertificateRead,
    PrincipalDep,
    RedisDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    actor,
)
from gradeflow.http.errors import CONFLICT

router = APIRouter()
RENDERING: dict[int | str, dict[str, Any]] = {
    202: {
        "model": DiplomaOut,
        "description": "The diploma is being drawn (`status: rendering`): ask again after `Retry-After` seconds.",
    }
}
Code = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Fa-f]+$", description="The certificate's code.")
]


def _answer(view: diplomas.DiplomaLink, response: Response) -> DiplomaOut:
    response.headers.update(NO_STORE)
    if view.status == "rendering":
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Retry-After"] = str(view.retry_after)
    return DiplomaOut.model_validate(view)


@router.get(
    "/v1/courses/{course}/certificates/{learner}/diploma",
    tags=["certificates"],
    responses={**RENDERING, **CONFLICT},
)
async def get_diploma(
    session: SessionDep,
    store: StoreDep,
    queue: RedisDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    ref: CertificateRead,
    learner: ExternalId,
    response: Response,
    assessment: Annotated[
        ExternalId | None, Query(description="The assessment's certificate (absent: the course certificate).")
    ] = None,
) -> DiplomaOut:
    """A learner's diploma (PDF) of the course certificate, or of an assessment's, for whoever may list
    the course's certificates (planners, viewers, publishers): a signed link valid for five minutes,
    minted now (never stored; `Cache-Control: no-store`), its issuance audited as `diploma.link_issued`.
    When the diploma is not drawn yet, or no longer says what it would print now (the learner's name or
    the certification changed), 202 with `status: rendering` and `Retry-After`: the worker draws it.
    404 when the learner holds no such certificate; 409 when it is revoked. A publisher limited to some
    assessments gets only those assessments' diplomas (403 otherwise), and those who mark an anonymous
    assessment (grader or moderator, not planner) not its diplomas."""
    await anonymity.refuse_hidden(session, principal, ref, assessment)
    view = await certificates.diploma_link(
        session, store, queue, ref, principal, learner, assessment, actor(principal), settings.reports.link_seconds
    )
    return _answer(view, response)


@router.get("/v1/me/courses/{course}/certificates", tags=["learners"])
async def my_certificates(session: SessionDep, principal: PrincipalDep, course: ExternalId) -> MyCertificates:
    """Your valid certificates in a course (user token whose `sub` is your enrollment's external id):
    the course certificate first, then each assessment's, with the code that names each diploma. A
    revoked certificate is not listed, nor an assessment's before your result of it is published to you."""
    items = await diplomas.my_certificates(session, principal, course)
    return MyCertificates(course=course, certificates=[MyCertificateOut.model_validate(c) for c in items])


@router.get("/v1/me/courses/{course}/certificates/{code}/diploma", tags=["learners"], responses=RENDERING)
async def my_diploma(
    session: SessionDep,
    store: StoreDep,
    queue: RedisDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    course: ExternalId,
    code: Code,
    response: Response,
) -> DiplomaOut:
    """Your diploma (PDF) of one of your certificates (its `code`, from your list): a signed link valid
    for five minutes, minted now and never stored, or 202 with `status: rendering` and `Retry-After`
    while it is being drawn. 404 for a code that is not one of your valid certificates."""
    view = await diplomas.my_link(session, store, queue, principal, course, code, settings.reports.link_seconds)
    return _answer(view, response)
