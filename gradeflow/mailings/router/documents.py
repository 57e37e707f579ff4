"""A learner's own documents: the individual reports made for them to be sent, with their own user token."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import NO_STORE, Cursor, Limit, PrincipalDep, RecordId, SessionDep, SettingsDep, StoreDep
from gradeflow.http.schemas import PageOut
from gradeflow.mailings import service as mailings
from gradeflow.mailings.schemas import DocumentLink, DocumentOut

router = APIRouter(prefix="/v1/me/courses/{course}/documents", tags=["learners"])


@router.get("")
async def my_documents(
    session: SessionDep, principal: PrincipalDep, course: ExternalId, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[DocumentOut]:
    """Your individual reports made to be sent to you in a course (user token whose `sub` is your
    enrollment's external id), most recent first, from the moment each is made (whether or not its
    e-mail reached you): only those whose result is still published to you as it was when the report
    was made, and not expired. Your certificates are at `/v1/me/courses/{course}/certificates`."""
    page = await mailings.my_documents(session, principal, course, limit, cursor)
    return PageOut(items=[DocumentOut.model_validate(d) for d in page.items], next_cursor=page.next_cursor)


@router.get("/{document_id}")
async def my_document(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    course: ExternalId,
    document_id: RecordId,
    response: Response,
) -> DocumentLink:
    """A download link to one of your documents, minted now and valid for five minutes (each issuance is
    in the audit log); 404 for anything not listed for you. Never cached."""
    link = await mailings.my_document_link(
        session, store, principal, course, document_id, settings.reports.link_seconds
    )
    response.headers.update(NO_STORE)
    return DocumentLink.model_validate(link)
