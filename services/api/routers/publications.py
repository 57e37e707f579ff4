"""Publishing results to learners (publishers), and what is published (staff who oversee results)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Response, status

from services.api.deps import (
    Cursor,
    Limit,
    PrincipalDep,
    PublicationRead,
    Publish,
    RecordId,
    RedisDep,
    SessionDep,
    actor,
)
from services.api.errors import CONFLICT
from services.api.schemas.common import PageOut
from services.api.schemas.publishing import PublicationOut, PublicationSummary
from shared.services import publishing
from shared.services.inputs import PublicationRequest

router = APIRouter(prefix="/v1/courses/{course}", tags=["publishing"])


@router.post("/publications", status_code=status.HTTP_201_CREATED)
async def create_publication(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: Publish,
    body: PublicationRequest,
    response: Response,
) -> PublicationOut:
    """Publish (or retract) results: assessments and/or the course grade, for all learners, a list,
    cohorts, groups, or every result not yet published. Only graded (and, with manual marking,
    confirmed) results are published; the answer lists what was skipped and why. With `publish_at`
    in the future the publication is scheduled and the worker runs it then. Needs the publisher role."""
    view = await publishing.create(session, queue, ref, principal, body, actor(principal))
    response.headers["Location"] = f"/v1/courses/{quote(ref.external_id, safe='')}/publications/{view['id']}"
    return PublicationOut.model_validate(view)


@router.get("/publications")
async def list_publications(
    session: SessionDep, ref: PublicationRead, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[PublicationOut]:
    """Publications and retractions, most recent first, with their e-mail counts."""
    page = await publishing.list_publications(session, ref, limit, cursor)
    return PageOut(items=[PublicationOut.model_validate(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/publications/{publication_id}")
async def get_publication(session: SessionDep, ref: PublicationRead, publication_id: RecordId) -> PublicationOut:
    """One publication: what it published, what it skipped and why, e-mails sent and failed."""
    return PublicationOut.model_validate(await publishing.get(session, ref, publication_id))


@router.post("/publications/{publication_id}:cancel", responses=CONFLICT)
async def cancel_publication(
    session: SessionDep, principal: PrincipalDep, ref: Publish, publication_id: RecordId
) -> PublicationOut:
    """Cancel a scheduled publication before it runs (409 once it has run: retract instead). A
    publisher limited to some assessments may cancel only publications within them (403)."""
    return PublicationOut.model_validate(
        await publishing.cancel(session, ref, principal, publication_id, actor(principal))
    )


@router.get("/publication-summary")
async def publication_summary(session: SessionDep, ref: PublicationRead) -> PublicationSummary:
    """Per assessment and for the course grade: participants, published, and whether every
    participant's result is published."""
    return PublicationSummary.model_validate(await publishing.summary(session, ref))
