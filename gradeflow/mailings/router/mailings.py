"""Candidate mailings: send each candidate their individual report or certificate by e-mail (publishers)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gradeflow.http.deps import (
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
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.mailings import service as mailings
from gradeflow.mailings.commands import MailingRequest
from gradeflow.mailings.schemas import MailingOut

router = APIRouter(prefix="/v1/courses/{course}/mailings", tags=["mailings"])


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def create_mailing(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: Publish,
    body: MailingRequest,
    response: Response,
) -> MailingOut:
    """Send each candidate their document by e-mail, once per candidate per request (publishers: it
    reaches learners). `reports`: the candidates the filters select get their individual report of the
    `assessment` (only what was published to them), with their certificate of it where they hold a valid
    one; `certificates`: the holders of a valid certificate of the course (no `assessment`) or of the
    assessment get it. One letter per candidate: those with nothing to send (no published result, no
    e-mail address) are counted `skipped`, so the counts add up. The e-mail links to the learner's
    documents page in the LMS, never to a file. What the request names must be in the course (422
    naming the field). Letters go under the rules of results e-mails: at most once, retried with
    back-off; one whose certificate was revoked or whose result was retracted meanwhile is skipped.
    Follow it at the `Location`. Audited as `mailing.requested` with the counts."""
    view = await mailings.create(session, queue, ref, principal, body, actor(principal))
    response.headers["Location"] = f"/v1/courses/{ref.external_id}/mailings/{view.id}"
    return MailingOut.model_validate(view)


@router.get("")
async def list_mailings(
    session: SessionDep, ref: PublicationRead, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[MailingOut]:
    """The course's mailings, most recent first, with their letters' counts."""
    page = await mailings.list_mailings(session, ref, limit, cursor)
    return PageOut(items=[MailingOut.model_validate(m) for m in page.items], next_cursor=page.next_cursor)


@router.get("/{mailing_id}")
async def get_mailing(session: SessionDep, ref: PublicationRead, mailing_id: RecordId) -> MailingOut:
    """A mailing: its status (queued, preparing, sending, done, cancelled) and its letters per status."""
    return MailingOut.model_validate(await mailings.get(session, ref, mailing_id))


@router.post("/{mailing_id}:cancel", responses=CONFLICT)
async def cancel_mailing(
    session: SessionDep, principal: PrincipalDep, ref: Publish, mailing_id: RecordId
) -> MailingOut:
    """Stop a mailing under way: its letters not sent yet are skipped ('cancelled'); those sent stay
    sent. A publisher limited to some assessments may stop only a mailing they could ask for (403).
    409 once it is done or cancelled. Audited as `mailing.cancelled`."""
    return MailingOut.model_validate(await mailings.cancel(session, ref, principal, mailing_id, actor(principal)))
