"""Candidate mailings: "send each candidate their report / certificate".

A request records the mailing and ONE letter per candidate in one statement (a candidate with nothing
to send gets a `skipped` letter saying why, so the counts add up), commits, then enqueues the job. The
worker prepares the letters (kind `reports`: each candidate's individual report, as published to them,
rendered and kept in object storage as a learner document), then sends them under the claim/retry rules
of results e-mails (gradeflow/notify/mail.py): a letter is claimed (`sending`, committed) before it goes
to the SMTP server and marked `sent` after, so it is sent at most once per request (the claim, the
outcome and the back-off are mail.py's `Outbox`/`send_queue`, written once for both). At claim time the
letter is checked again: a certificate revoked since, a result no longer published, or published again
since its report was made (the learner's page no longer lists that report), a learner unenrolled since
(kind `reports`), and the letter is `skipped`.

What the claim-time check cannot cover: a letter claimed (read and checked) before a revocation or a
retraction commits still goes as it was composed: the window is from that letter's claim to the SMTP
server's answer (connecting and sending, each bounded by `smtp.timeout_seconds`), one letter per sender
at a time. Such an e-mail may still say "your certificate: ..." or "your report is available", but it
carries no file nor signed link: the learner's page it links to no longer lists what was revoked or
retracted, and the learner endpoints refuse it.

The e-mail holds one link, to the learner's documents page in the LMS (never a signed link); that page
asks the learner endpoints for a fresh five-minute link.

The SQL is the repository's (gradeflow/mailings/repository.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.access.service import access
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.certificates.service import certificates, diplomas
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from gradeflow.core.paging import Page
from gradeflow.core.settings import SmtpSettings
from gradeflow.courses.repository import assessments as course_assessments
from gradeflow.courses.service import enrollments
from gradeflow.jobs import JobName
from gradeflow.mailings import repository
from gradeflow.mailings.commands import MailingRequest
from gradeflow.mailings.repository import (
    CANCELLED,
    CERTIFICATE_GONE,
    LETTERS,
    NO_EMAIL,
    NO_RESULT,
    RESULT_SUPERSEDED,
    RESULT_WITHDRAWN,
    REVOKED,
    UNENROLLED,
    Candidate,
    Document,
    LetterFacts,
    MailingJob,
    MailingView,
    PreparedDocument,
)
from gradeflow.notify import mail
from gradeflow.readside.service import course_data
from gradeflow.reports import labels as report_labels
from gradeflow.reports.service import report_references
from gradeflow.storage.s3 import ObjectStore

# A worker preparing or sending a mailing stamps a letter's claimed_at at least this often; a mailing
# with work left that has been silent for LOST_AFTER lost its worker, whose job arq still holds as in
# progress for hours: the sweep gives it a new job id.
HEARTBEAT_SECONDS = 30
LOST_AFTER = timedelta(minutes=2)


def job_id(mailing_id: int, lost: datetime | None = None) -> str:
    """The mailing's job id (`lost`: of a new job for a mailing whose worker went silent then)."""
    return jobs.job_id(JobName.SEND_MAILING, mailing_id, None if lost is None else jobs.lost_at(lost))


# --- the request ----------------------------------------------------------------------------------


async def create(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, principal: Principal, body: MailingRequest, actor: str
) -> MailingView:
    """Check what the request names (422 naming the field), record the mailing and one letter per
    candidate (audited with the counts), commit, then enqueue the job."""
    await _check_references(session, ref.id, body)
    # A publisher limited to some assessments sends only theirs; the course certificate is the course's.
    await access.check_publisher_scope(
        session, ref.id, principal, [body.assessment] if body.assessment else [], body.assessment is None
    )
    assessment_id = None
    if body.assessment is not None:
        assessment_id = await course_assessments.assessment_id(session, ref.id, body.assessment)
    params = body.model_dump(mode="json", exclude_none=True, exclude={"kind"})
    now = clock.now()
    mailing_id = await repository.new_mailing(session, ref.id, body.kind, params, actor, now)
    if body.kind == "reports":
        who = await course_data.who_of(session, ref.id, body)
        statuses = await repository.write_report_letters(
            session, mailing_id, now, ref.id, assessment_id, who.named(), body.since, body.until
        )
    else:
        chosen = await certificates.select(session, ref.id, body)
        statuses = await repository.write_certificate_letters(session, mailing_id, now, chosen)
    await repository.settle(session, mailing_id, now)
    counts = {s: statuses.count(s) for s in ("preparing", "queued", "skipped")}
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "mailing.requested",
        assessment=body.assessment,
        new={"mailing": mailing_id, "kind": body.kind, "params": params, "total": len(statuses), **counts},
    )
    await session.commit()
    await jobs.enqueue(queue, JobName.SEND_MAILING, job_id(mailing_id), mailing_id)
    return await get(session, ref, mailing_id)


async def _check_references(session: AsyncSession, course_id: int, body: MailingRequest) -> None:
    """The reports' checks (assessment, learners, group, cohort, session, language), whose errors name
    the request's own fields (top level here, under /params in a report request)."""
    try:
        await report_references.check(session, course_id, body)
    except ValidationFailed as exc:
        raise ValidationFailed(
            [FieldError(e.pointer.removeprefix("/params"), e.detail, e.location) for e in exc.errors]
        ) from None


# --- reads ----------------------------------------------------------------------------------------


async def get(session: AsyncSession, ref: CourseRef, mailing_id: int) -> MailingView:
    """One mailing with the count of its letters per status (404 outside the course)."""
    view = await repository.mailing_in(session, ref.id, mailing_id)
    if view is None:
        raise NotFound(f"Mailing {mailing_id} not found in this course.")
    return view


async def list_mailings(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[MailingView]:
    """The course's mailings, most recent first, with their counts."""
    return await repository.mailings_of(session, ref.id, limit, cursor)


async def cancel(
    session: AsyncSession, ref: CourseRef, principal: Principal, mailing_id: int, actor: str
) -> MailingView:
    """Stop a mailing: its letters not sent yet are skipped ('cancelled'); sent ones stay sent, and one
    being sent at this moment ends as it ends. A publisher limited to some assessments stops only what
    they may send (403 otherwise, as when asking). 409 once the mailing is done or cancelled."""
    assessment = (await get(session, ref, mailing_id)).params.get("assessment")
    await access.check_publisher_scope(
        session, ref.id, principal, [assessment] if assessment else [], assessment is None
    )
    if not await repository.cancel(session, ref.id, mailing_id, clock.now()):
        view = await get(session, ref, mailing_id)
        raise Conflict(f"The mailing is {view.status}; only a mailing still under way can be cancelled.")
    stopped = await repository.skip_open_letters(session, mailing_id, CANCELLED)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "mailing.cancelled",
        new={"mailing": mailing_id, "stopped": stopped},
    )
    await session.commit()
    return await get(session, ref, mailing_id)


# --- the learner's documents ----------------------------------------------------------------------


async def my_documents(
    session: AsyncSession, principal: Principal, course: str, limit: int, cursor: str | None
) -> Page[Document]:
    """The learner's individual reports made for them that still show, most recent first: each is their
    own result as published to them, so it shows once it is made, whatever became of its letter, while
    it is not expired and the result is still published to them as it was when it was made."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    return await repository.documents_shown(session, enrollment_id, clock.now(), limit, cursor)


@dataclass(frozen=True, slots=True)
class DocumentLink:
    """A link to one of a learner's documents, minted for this answer (never stored)."""

    id: int
    download_url: str
    download_expires_at: datetime
    file_name: str
    bytes: int


async def my_document_link(
    session: AsyncSession, store: ObjectStore, principal: Principal, course: str, document_id: int, link_seconds: int
) -> DocumentLink:
    """A five-minute link to one of the learner's documents that still shows (404 for anything else:
    another learner's, a retracted or re-published result's, an expired one). The issuance is audited."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    row = await repository.document_shown(session, enrollment_id, document_id, clock.now())
    if row is None:
        raise NotFound(f"Document {document_id} not found.")
    issued = clock.now()
    url = await store.presign_get(row.object_key, link_seconds, row.file_name)
    await audit.record(
        session,
        principal.organization_id,
        row.course_id,
        principal.subject,
        "document.link_issued",
        learner=principal.subject,
        assessment=row.assessment,
        new={"document": document_id, "file_name": row.file_name, "valid_seconds": link_seconds},
    )
    await session.commit()
    return DocumentLink(document_id, url, issued + timedelta(seconds=link_seconds), row.file_name, row.bytes)


# --- the worker's side: preparing -------------------------------------------------------------------


async def start(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int) -> MailingJob | None:
    """The mailing, moved on from queued (None once it is done or cancelled): `preparing` while a
    letter waits for its document, else `sending`."""
    async with sessionmaker() as session:
        mailing = await repository.start(session, mailing_id)
        await session.commit()
    return mailing


async def to_prepare(session: AsyncSession, mailing: MailingJob, after: int, size: int) -> list[Candidate]:
    """The next letters waiting for their document, by enrollment after `after`: (enrollment id,
    learner), stamped as taken now (the mailing's heartbeat). Letters whose result was retracted since
    the request are skipped first."""
    await repository.skip_withdrawn(session, mailing.id)
    batch = await repository.take_to_prepare(session, mailing.id, after, size, clock.now())
    await session.commit()
    return batch


async def beat(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int, enrollment_id: int) -> None:
    """The preparing worker is alive (every HEARTBEAT_SECONDS while it draws): the letter it works on
    is stamped."""
    async with sessionmaker() as session:
        await repository.beat(session, mailing_id, enrollment_id, clock.now())
        await session.commit()


def document_key(mailing: MailingJob, enrollment_id: int) -> str:
    """One object per letter: preparing a letter twice (a worker lost mid-chunk) overwrites it."""
    return f"documents/{mailing.course_id}/{mailing.id}/{enrollment_id}.pdf"


async def documents_ready(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailing: MailingJob,
    documents: list[PreparedDocument],
    retention_days: int,
) -> None:
    """Record a chunk's uploaded documents and queue their letters, in one statement: a letter is queued
    with its document or not at all. The letters are locked first, so that of two workers preparing
    the same letter (one thought lost) one records it."""
    if not documents:
        return
    now = clock.now()
    language = mailing.params.get("language", "en")
    async with sessionmaker() as session:
        await repository.documents_ready(
            session, mailing.id, documents, language, now, now + timedelta(days=retention_days)
        )
        await session.commit()


async def not_prepared(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int, error: str) -> None:
    """Letters whose document could not be made (a bug or bad data, not a hiccup): failed, with why."""
    async with sessionmaker() as session:
        await repository.fail_unprepared(session, mailing_id, error[:1000])
        await session.commit()


# --- the worker's side: sending ---------------------------------------------------------------------


def _skip_reason(row: LetterFacts) -> str | None:
    """Why a claimed letter must not go (None: it goes)."""
    if row.email is None:
        return NO_EMAIL
    if row.kind == "reports":
        if row.unenrolled:
            return UNENROLLED
        if not row.published:
            return RESULT_WITHDRAWN
        return None if row.document_shows else RESULT_SUPERSEDED
    if not row.certificate_exists:
        return CERTIFICATE_GONE
    if row.revoked:
        return REVOKED
    return None if row.certificate_shown else NO_RESULT


def compose(row: LetterFacts, smtp: SmtpSettings, link_template: str, message_id: str) -> EmailMessage:
    """The plain-text and HTML e-mail of a letter, in the mailing's language where the label catalogue
    has it (else English), naming the course, the assessment and what is available, with one link to
    the learner's documents page in the LMS. Titles and names go into headers on one line. Raises
    mail.TemplateInvalid when the link template cannot be filled in."""
    language = row.params.get("language", "en")
    t = report_labels.labels(language)
    course, assessment = row.course_title, row.assessment_title
    lines = []
    if row.kind == "reports":
        lines.append(t["mail.report"].format(assessment=assessment))
    if row.certificate_shown:  # named as its diploma names it
        title = diplomas.title(row.certificate_title, row.certificate_language)
        lines.append(t["mail.certificate"].format(title=title))
    context = {
        "language": language,
        "greeting": t["mail.greeting"].format(name=row.name),
        "available": t["mail.available"].format(course=course),
        "lines": lines,
        "link_text": t["mail.link"],
        "link": mail.link_of(link_template, row.course, row.learner),
        "footer": t["mail.footer"],
    }
    message = EmailMessage()
    if row.kind == "reports":
        message["Subject"] = mail.one_line(t["mail.subject_report"].format(assessment=assessment, course=course))
    else:
        message["Subject"] = mail.one_line(t["mail.subject_certificate"].format(course=course))
    message["From"] = smtp.sender
    message["To"] = mail.recipient(row.name, row.email or "")
    message["Message-ID"] = message_id
    message.set_content(mail.TEMPLATES.get_template("candidate_mailing.txt").render(context))
    message.add_alternative(mail.TEMPLATES.get_template("candidate_mailing.html").render(context), subtype="html")
    return message


async def send_due(
    sessionmaker: async_sessionmaker[AsyncSession], smtp: SmtpSettings, link_template: str, mailing_id: int
) -> datetime | None:
    """Send the mailing's due letters one by one (claimed before, marked after, as results e-mails);
    settle the mailing; return when the next retry is due (or None)."""

    async def letter(session: AsyncSession, enrollment_id: int) -> EmailMessage | mail.Outcome:
        row = await repository.letter_facts(session, mailing_id, enrollment_id, clock.now())
        why = _skip_reason(row)
        if why is not None:  # checked again now: never sent, whatever happened since the request
            return mail.skipped(why)
        key = mail.message_id(f"gradeflow.mailing.{mailing_id}.{enrollment_id}", smtp)
        return mail.composed("documents_url_template", lambda: compose(row, smtp, link_template, key), row.email)

    next_due = await mail.send_queue(sessionmaker, smtp, LETTERS, mailing_id, letter)
    async with sessionmaker() as session:
        await repository.settle(session, mailing_id, clock.now())
        await session.commit()
    return next_due


async def recover(session: AsyncSession, lease: timedelta) -> list[tuple[int, str]]:
    """For the sweep: letters claimed by a worker that died mid-send are failed (never sent twice);
    mailings with nothing open left are settled. Returns the open mailings that need a job, each with
    the job id to give it: letters due, or a job that never started, under the mailing's own id (a job
    still waiting keeps it); a mailing being prepared or sent whose worker went silent (no letter
    stamped for LOST_AFTER: killed, or died mid-send) under an id named after its last sign of life, as
    arq keeps a dead worker's job id in progress for hours (the same id for every sweep until it moves)."""
    now = clock.now()
    interrupted = await mail.interrupted(session, LETTERS, lease)
    for mailing_id in interrupted:
        await repository.settle(session, mailing_id, now)
    due = await repository.needing_a_job(session, now, now - timedelta(minutes=1))
    return [(m.id, job_id(m.id, m.beat if m.status != "queued" and m.beat < now - LOST_AFTER else None)) for m in due]


async def expire_documents(session: AsyncSession, store: ObjectStore) -> int:
    """Delete the files of learner documents past their retention, and their records (the letters
    stay, sent); at most 1,000 a run."""
    expired = await repository.expired_documents(session, clock.now())
    for document in expired:
        await store.delete(document.object_key)
    await repository.delete_documents(session, [d.id for d in expired])
    await session.commit()
    return len(expired)
