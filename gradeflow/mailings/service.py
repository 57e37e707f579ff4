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
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.service import access
from gradeflow.access.service.access import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.certificates.service import certificates, diplomas
from gradeflow.core import clock, jsonutil, names
from gradeflow.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from gradeflow.core.paging import Page, newest_first
from gradeflow.core.settings import SmtpSettings
from gradeflow.courses.service import enrollments
from gradeflow.mailings.commands import MailingRequest
from gradeflow.notify import mail
from gradeflow.reports import labels as report_labels
from gradeflow.reports.service import report_data, report_references
from gradeflow.reports.service.report_records import TAKEN_IN_PERIOD
from gradeflow.storage.s3 import ObjectStore

log = logging.getLogger(__name__)

# Why a letter is skipped (never sent).
NO_RESULT = "no published result of the assessment"
NO_EMAIL = "no e-mail address"
UNENROLLED = "unenrolled"
RESULT_WITHDRAWN = "the result is no longer published"
RESULT_SUPERSEDED = "the result was published again since the report was made"
REVOKED = "certificate revoked"
NO_CERTIFICATE = "no certificate"
CERTIFICATE_GONE = "the certificate no longer exists"
CANCELLED = "cancelled"

# A worker preparing or sending a mailing stamps a letter's claimed_at at least this often; a mailing
# with work left that has been silent for LOST_AFTER lost its worker, whose job arq still holds as in
# progress for hours: the sweep gives it a new job id.
HEARTBEAT_SECONDS = 30
LOST_AFTER = timedelta(minutes=2)

# One outbox with results e-mails (gradeflow/notify/mail.py): a letter put back in the queue after its
# mailing was cancelled is skipped instead.
LETTERS = mail.Outbox(
    "candidate_letters",
    "mailing_id",
    stopped="EXISTS (SELECT 1 FROM candidate_mailings m WHERE m.id = x.mailing_id AND m.status = 'cancelled')",
)

# A learner's document shows (on their documents page, and so a letter may announce it) while it is not
# expired and the assessment's result is still published to them as it was when it was made (a
# re-published change supersedes it). Alias `d` is learner_documents; :now the time.
DOCUMENT_SHOWS = """(d.expires_at IS NULL OR d.expires_at > :now)
      AND EXISTS (SELECT 1 FROM published_results pr WHERE pr.enrollment_id = d.enrollment_id
                  AND pr.assessment_id = d.assessment_id AND pr.published_at <= d.created_at)"""


def job_id(mailing_id: int, suffix: str = "") -> str:
    return f"mailing-{mailing_id}{suffix}"


# --- the request ----------------------------------------------------------------------------------

# Kind reports: every learner the filters select (with an attempt taken in the period, when one is
# given); skipped without a published result of the assessment, once unenrolled, or without an address.
# The certificate of the assessment goes with the report where the learner holds a valid one.
_REPORT_LETTERS = f"""
    INSERT INTO candidate_letters (mailing_id, enrollment_id, status, certificate_id, error, next_try_at)
    SELECT :m, e.id,
           CASE WHEN pr.enrollment_id IS NULL OR e.status = 'unenrolled' OR e.email IS NULL THEN 'skipped'
                ELSE 'preparing' END,
           cert.id,
           CASE WHEN pr.enrollment_id IS NULL THEN '{NO_RESULT}' WHEN e.status = 'unenrolled' THEN '{UNENROLLED}'
                WHEN e.email IS NULL THEN '{NO_EMAIL}' END,
           :now
    FROM enrollments e
    LEFT JOIN published_results pr ON pr.enrollment_id = e.id AND pr.assessment_id = :a
    LEFT JOIN certificates cert ON cert.enrollment_id = e.id AND cert.assessment_id = :a AND cert.revoked_at IS NULL
    WHERE e.course_id = :c AND {{who}}
      AND (CAST(:since AS timestamptz) IS NULL AND CAST(:until AS timestamptz) IS NULL
           OR EXISTS (SELECT 1 FROM attempts t WHERE t.enrollment_id = e.id AND t.assessment_id = :a
                      AND t.status <> 'cancelled' AND {TAKEN_IN_PERIOD}))
    RETURNING status
"""  # noqa: S608  (constant SQL; `who` is report_data.Who's fixed conditions)

# Kind certificates: every learner the certificates' selection (certificates.select: the list's and the
# ZIP's) covers - with a certificate issued in the period, when one is given - with their certificate of
# the course (:a null) or of the assessment; skipped without a valid one, before the assessment's result
# is published to them, once unenrolled, or without an address.
_CERTIFICATE_LETTERS = f"""
    INSERT INTO candidate_letters (mailing_id, enrollment_id, status, certificate_id, error, next_try_at)
    SELECT :m, e.id, CASE WHEN x.why IS NULL THEN 'queued' ELSE 'skipped' END, k.id, x.why, :now
    FROM enrollments e
    LEFT JOIN certificates k ON k.enrollment_id = e.id AND {{certification}}
    CROSS JOIN LATERAL (SELECT CASE
      WHEN k.id IS NULL THEN '{NO_CERTIFICATE}'
      WHEN k.revoked_at IS NOT NULL THEN '{REVOKED}'
      WHEN NOT {diplomas.SHOWN_TO_LEARNER} THEN '{NO_RESULT}'
      WHEN e.status = 'unenrolled' THEN '{UNENROLLED}'
      WHEN e.email IS NULL THEN '{NO_EMAIL}' END AS why) x
    WHERE e.course_id = :c AND {{learners}} AND {{issued}}
    RETURNING status
"""  # noqa: S608  (constant SQL; the selection's fixed conditions)


async def _certificate_letters(
    session: AsyncSession, course_id: int, body: MailingRequest
) -> tuple[str, dict[str, Any]]:
    """The statement writing a certificate mailing's letters, and its parameters (but :m and :now)."""
    chosen = await certificates.select(session, course_id, body)
    sql = _CERTIFICATE_LETTERS.format(
        certification=chosen.certification, learners=chosen.learners, issued=chosen.issued
    )
    return sql, chosen.params


# A mailing is done once none of its letters is open (nothing to prepare, send or retry).
_SETTLE = """
    UPDATE candidate_mailings m SET status = 'done', done_at = :now
    WHERE m.id = :m AND m.status IN ('queued', 'preparing', 'sending')
      AND NOT EXISTS (SELECT 1 FROM candidate_letters l WHERE l.mailing_id = m.id
                      AND l.status IN ('preparing', 'queued', 'sending'))
"""


async def create(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, principal: Principal, body: MailingRequest, actor: str
) -> dict[str, Any]:
    """Check what the request names (422 naming the field), record the mailing and one letter per
    candidate (audited with the counts), commit, then enqueue the job."""
    await _check_references(session, ref.id, body)
    # A publisher limited to some assessments sends only theirs; the course certificate is the course's.
    await access.check_publisher_scope(
        session, ref.id, principal, [body.assessment] if body.assessment else [], body.assessment is None
    )
    assessment_id = None
    if body.assessment is not None:
        assessment_id = await session.scalar(
            text("SELECT id FROM assessments WHERE course_id = :c AND external_id = :a"),
            {"c": ref.id, "a": body.assessment},
        )
    params = body.model_dump(mode="json", exclude_none=True, exclude={"kind"})
    now = clock.now()
    mailing_id: int = await session.scalar(
        text(
            "INSERT INTO candidate_mailings (course_id, kind, params, requested_by, created_at)"
            " VALUES (:c, :kind, CAST(:params AS jsonb), :actor, :now) RETURNING id"
        ),
        {"c": ref.id, "kind": body.kind, "params": jsonutil.dumps(params), "actor": actor, "now": now},
    )
    if body.kind == "reports":
        who = await report_data.who_of(session, ref.id, body)
        condition, named = who.named()
        statement = _REPORT_LETTERS.format(who=condition)
        values = {"c": ref.id, "a": assessment_id, "since": body.since, "until": body.until} | named
    else:
        statement, values = await _certificate_letters(session, ref.id, body)
    statuses = (await session.scalars(text(statement), {"m": mailing_id, "now": now} | values)).all()
    await session.execute(text(_SETTLE), {"m": mailing_id, "now": now})
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
    await jobs.enqueue(queue, jobs.SEND_MAILING, job_id(mailing_id), mailing_id)
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

_VIEW = """
    SELECT m.*, c.external_id AS course, counts.*
    FROM candidate_mailings m JOIN courses c ON c.id = m.course_id
    CROSS JOIN LATERAL (
      SELECT count(*) AS total,
             count(*) FILTER (WHERE l.status = 'preparing') AS preparing,
             count(*) FILTER (WHERE l.status = 'queued') AS queued,
             count(*) FILTER (WHERE l.status = 'sending') AS sending,
             count(*) FILTER (WHERE l.status = 'sent') AS sent,
             count(*) FILTER (WHERE l.status = 'failed') AS failed,
             count(*) FILTER (WHERE l.status = 'skipped') AS skipped
      FROM candidate_letters l WHERE l.mailing_id = m.id) counts
"""

_COUNTS = ("total", "preparing", "queued", "sending", "sent", "failed", "skipped")


def _shape(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "course": row["course"],
        "kind": row["kind"],
        "params": row["params"],
        "status": row["status"],
        "counts": {k: row[k] for k in _COUNTS},
        "requested_by": row["requested_by"],
        "created_at": row["created_at"],
        "done_at": row["done_at"],
        "error": row["error"],
    }


async def get(session: AsyncSession, ref: CourseRef, mailing_id: int) -> dict[str, Any]:
    """One mailing with the count of its letters per status (404 outside the course)."""
    row = (
        (await session.execute(text(_VIEW + " WHERE m.id = :id AND m.course_id = :c"), {"id": mailing_id, "c": ref.id}))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Mailing {mailing_id} not found in this course.")
    return _shape(row)


async def list_mailings(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[dict[str, Any]]:
    """The course's mailings, most recent first, with their counts."""
    page = await newest_first(session, _VIEW + " WHERE m.course_id = :c", {"c": ref.id}, limit, cursor)
    return Page([_shape(r) for r in page.items], page.next_cursor)


async def cancel(
    session: AsyncSession, ref: CourseRef, principal: Principal, mailing_id: int, actor: str
) -> dict[str, Any]:
    """Stop a mailing: its letters not sent yet are skipped ('cancelled'); sent ones stay sent, and one
    being sent at this moment ends as it ends. A publisher limited to some assessments stops only what
    they may send (403 otherwise, as when asking). 409 once the mailing is done or cancelled."""
    assessment = (await get(session, ref, mailing_id))["params"].get("assessment")
    await access.check_publisher_scope(
        session, ref.id, principal, [assessment] if assessment else [], assessment is None
    )
    now = clock.now()
    done = await session.scalar(
        text(
            "UPDATE candidate_mailings SET status = 'cancelled', done_at = :now"
            " WHERE id = :id AND course_id = :c AND status IN ('queued', 'preparing', 'sending') RETURNING id"
        ),
        {"id": mailing_id, "c": ref.id, "now": now},
    )
    if done is None:
        view = await get(session, ref, mailing_id)
        raise Conflict(f"The mailing is {view['status']}; only a mailing still under way can be cancelled.")
    stopped = await session.scalar(
        text(
            """
            WITH s AS (UPDATE candidate_letters SET status = 'skipped', error = :why
                       WHERE mailing_id = :id AND status IN ('preparing', 'queued') RETURNING 1)
            SELECT count(*) FROM s
            """
        ),
        {"id": mailing_id, "why": CANCELLED},
    )
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

# The documents a learner sees: each is their own result as published to them, so it shows once it
# is made, whatever became of its letter (a sender that died mid-send may have delivered it; a
# mailing cancelled after it was made does not unmake it), while it is not expired and the
# assessment's result is still published to them as it was when it was made (a re-published change
# supersedes it).
_MY_DOCUMENTS = f"""
    SELECT d.id, d.course_id, d.kind, a.external_id AS assessment, a.title AS assessment_title, d.language,
           d.file_name, d.bytes, d.object_key, d.created_at, d.expires_at
    FROM learner_documents d
    JOIN assessments a ON a.id = d.assessment_id
    WHERE d.enrollment_id = :e AND {DOCUMENT_SHOWS}
"""  # noqa: S608  (constant SQL)


def _document(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "assessment": row["assessment"],
        "assessment_title": row["assessment_title"],
        "language": row["language"],
        "file_name": row["file_name"],
        "bytes": row["bytes"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
    }


async def my_documents(
    session: AsyncSession, principal: Principal, course: str, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """The learner's individual reports made for them that still show, most recent first."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    page = await newest_first(session, _MY_DOCUMENTS, {"e": enrollment_id, "now": clock.now()}, limit, cursor)
    return Page([_document(r) for r in page.items], page.next_cursor)


async def my_document_link(
    session: AsyncSession, store: ObjectStore, principal: Principal, course: str, document_id: int, link_seconds: int
) -> dict[str, Any]:
    """A five-minute link to one of the learner's documents that still shows (404 for anything else:
    another learner's, a retracted or re-published result's, an expired one). The issuance is audited."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    row = (
        (
            await session.execute(
                text(_MY_DOCUMENTS + " AND d.id = :id"), {"e": enrollment_id, "now": clock.now(), "id": document_id}
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Document {document_id} not found.")
    issued = clock.now()
    url = await store.presign_get(row["object_key"], link_seconds, row["file_name"])
    await audit.record(
        session,
        principal.organization_id,
        row["course_id"],
        principal.subject,
        "document.link_issued",
        learner=principal.subject,
        assessment=row["assessment"],
        new={"document": document_id, "file_name": row["file_name"], "valid_seconds": link_seconds},
    )
    await session.commit()
    return {
        "id": document_id,
        "download_url": url,
        "download_expires_at": issued + timedelta(seconds=link_seconds),
        "file_name": row["file_name"],
        "bytes": row["bytes"],
    }


# --- the worker's side: preparing -------------------------------------------------------------------


async def start(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int) -> dict[str, Any] | None:
    """The mailing, moved on from queued (None once it is done or cancelled): `preparing` while a
    letter waits for its document, else `sending`."""
    async with sessionmaker() as session:
        row = (
            (
                await session.execute(
                    text(
                        """
                        UPDATE candidate_mailings m SET status = CASE
                          WHEN EXISTS (SELECT 1 FROM candidate_letters l WHERE l.mailing_id = m.id
                                       AND l.status = 'preparing') THEN 'preparing' ELSE 'sending' END
                        FROM courses c
                        WHERE m.id = :m AND c.id = m.course_id AND m.status IN ('queued', 'preparing', 'sending')
                        RETURNING m.*, c.external_id AS course, c.title AS course_title
                        """
                    ),
                    {"m": mailing_id},
                )
            )
            .mappings()
            .first()
        )
        await session.commit()
    return dict(row) if row else None


async def to_prepare(session: AsyncSession, mailing: dict[str, Any], after: int, size: int) -> list[tuple[int, str]]:
    """The next letters waiting for their document, by enrollment after `after`: (enrollment id,
    learner), stamped as taken now (the mailing's heartbeat). Letters whose result was retracted since
    the request are skipped first."""
    await session.execute(
        text(
            f"""
            UPDATE candidate_letters l SET status = 'skipped', error = '{RESULT_WITHDRAWN}'
            FROM candidate_mailings m
            WHERE l.mailing_id = :m AND m.id = l.mailing_id AND l.status = 'preparing'
              AND NOT EXISTS (SELECT 1 FROM published_results pr JOIN assessments a ON a.id = pr.assessment_id
                              WHERE pr.enrollment_id = l.enrollment_id AND a.course_id = m.course_id
                                AND a.external_id = m.params->>'assessment')
            """  # noqa: S608  (constant SQL)
        ),
        {"m": mailing["id"]},
    )
    rows = await session.execute(
        text(
            """
            WITH taken AS (
              SELECT enrollment_id FROM candidate_letters
              WHERE mailing_id = :m AND status = 'preparing' AND enrollment_id > :after
              ORDER BY enrollment_id LIMIT :n)
            UPDATE candidate_letters l SET claimed_at = :now
            FROM taken, enrollments e
            WHERE l.mailing_id = :m AND l.enrollment_id = taken.enrollment_id AND e.id = l.enrollment_id
            RETURNING l.enrollment_id, e.external_id
            """
        ),
        {"m": mailing["id"], "after": after, "n": size, "now": clock.now()},
    )
    batch = sorted((int(r[0]), str(r[1])) for r in rows)
    await session.commit()
    return batch


async def beat(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int, enrollment_id: int) -> None:
    """The preparing worker is alive (every HEARTBEAT_SECONDS while it draws): the letter it works on
    is stamped."""
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE candidate_letters SET claimed_at = :now WHERE mailing_id = :m AND enrollment_id = :e"),
            {"m": mailing_id, "e": enrollment_id, "now": clock.now()},
        )
        await session.commit()


def document_key(mailing: dict[str, Any], enrollment_id: int) -> str:
    """One object per letter: preparing a letter twice (a worker lost mid-chunk) overwrites it."""
    return f"documents/{mailing['course_id']}/{mailing['id']}/{enrollment_id}.pdf"


async def documents_ready(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailing: dict[str, Any],
    documents: list[dict[str, Any]],
    retention_days: int,
) -> None:
    """Record a chunk's uploaded documents (enrollment_id, object_key, file_name, bytes, sha256) and queue
    their letters, in one statement: a letter is queued with its document or not at all. The letters are
    locked first, so that of two workers preparing the same letter (one thought lost) one records it."""
    if not documents:
        return
    now = clock.now()
    async with sessionmaker() as session:
        await session.execute(
            text(
                """
                WITH d AS (
                  SELECT * FROM jsonb_to_recordset(CAST(:docs AS jsonb))
                    AS x(enrollment_id bigint, object_key text, file_name text, bytes int, sha256 text)),
                open AS (
                  SELECT l.enrollment_id FROM candidate_letters l JOIN d ON d.enrollment_id = l.enrollment_id
                  WHERE l.mailing_id = :m AND l.status = 'preparing' FOR UPDATE OF l),
                made AS (
                  INSERT INTO learner_documents (course_id, enrollment_id, assessment_id, mailing_id, kind, language,
                                                 object_key, file_name, bytes, sha256, created_at, expires_at)
                  SELECT m.course_id, d.enrollment_id, a.id, m.id, 'individual_report', :lang,
                         d.object_key, d.file_name, d.bytes, d.sha256, :now, :expires
                  FROM d JOIN candidate_mailings m ON m.id = :m
                  JOIN assessments a ON a.course_id = m.course_id AND a.external_id = m.params->>'assessment'
                  JOIN open ON open.enrollment_id = d.enrollment_id
                  RETURNING id, enrollment_id)
                UPDATE candidate_letters l SET status = 'queued', document_id = made.id, next_try_at = :now
                FROM made WHERE l.mailing_id = :m AND l.enrollment_id = made.enrollment_id AND l.status = 'preparing'
                """
            ),
            {
                "docs": jsonutil.dumps(documents),
                "m": mailing["id"],
                "lang": mailing["params"].get("language", "en"),
                "now": now,
                "expires": now + timedelta(days=retention_days),
            },
        )
        await session.commit()


async def not_prepared(sessionmaker: async_sessionmaker[AsyncSession], mailing_id: int, error: str) -> None:
    """Letters whose document could not be made (a bug or bad data, not a hiccup): failed, with why."""
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE candidate_letters SET status = 'failed', error = :e"
                " WHERE mailing_id = :m AND status = 'preparing'"
            ),
            {"m": mailing_id, "e": error[:1000]},
        )
        await session.commit()


# --- the worker's side: sending ---------------------------------------------------------------------

# What one letter says, read when it is claimed: the learner, the course, the assessment, and whether
# what it announces still holds (the result published, the report still on the learner's page, the
# certificate valid).
_LETTER = text(
    f"""
    SELECT e.email, {names.learner_name_sql("e")} AS name, e.external_id AS learner,
           c.external_id AS course, c.title AS course_title, m.kind, m.params, a.title AS assessment_title,
           l.document_id, l.certificate_id, cert.id IS NOT NULL AS certificate_exists,
           cert.revoked_at IS NOT NULL AS revoked,
           (cert.id IS NOT NULL AND {diplomas.shown_to_learner("cert")}) AS certificate_shown,
           cf.title AS certificate_title, coalesce(cf.language, 'en') AS certificate_language,
           EXISTS (SELECT 1 FROM published_results pr WHERE pr.enrollment_id = e.id AND pr.assessment_id = a.id)
             AS published,
           coalesce(d.id IS NOT NULL AND {DOCUMENT_SHOWS}, false) AS document_shows,
           e.status = 'unenrolled' AS unenrolled
    FROM candidate_letters l
    JOIN candidate_mailings m ON m.id = l.mailing_id
    JOIN enrollments e ON e.id = l.enrollment_id
    JOIN courses c ON c.id = m.course_id
    LEFT JOIN assessments a ON a.course_id = c.id AND a.external_id = m.params->>'assessment'
    LEFT JOIN learner_documents d ON d.id = l.document_id
    LEFT JOIN certificates cert ON cert.id = l.certificate_id
    LEFT JOIN certifications cf ON cf.course_id = c.id AND cf.assessment_id IS NOT DISTINCT FROM cert.assessment_id
    WHERE l.mailing_id = :m AND l.enrollment_id = :e
    """  # noqa: S608  (constant SQL)
)


def _skip_reason(row: Any) -> str | None:
    """Why a claimed letter must not go (None: it goes)."""
    if row["email"] is None:
        return NO_EMAIL
    if row["kind"] == "reports":
        if row["unenrolled"]:
            return UNENROLLED
        if not row["published"]:
            return RESULT_WITHDRAWN
        return None if row["document_shows"] else RESULT_SUPERSEDED
    if not row["certificate_exists"]:
        return CERTIFICATE_GONE
    if row["revoked"]:
        return REVOKED
    return None if row["certificate_shown"] else NO_RESULT


def compose(row: Any, smtp: SmtpSettings, link_template: str, message_id: str) -> EmailMessage:
    """The plain-text and HTML e-mail of a letter, in the mailing's language where the label catalogue
    has it (else English), naming the course, the assessment and what is available, with one link to
    the learner's documents page in the LMS. Titles and names go into headers on one line. Raises
    mail.TemplateInvalid when the link template cannot be filled in."""
    language = row["params"].get("language", "en")
    t = report_labels.labels(language)
    course, assessment = row["course_title"], row["assessment_title"]
    lines = []
    if row["kind"] == "reports":
        lines.append(t["mail.report"].format(assessment=assessment))
    if row["certificate_shown"]:  # named as its diploma names it
        title = diplomas.title(row["certificate_title"], row["certificate_language"])
        lines.append(t["mail.certificate"].format(title=title))
    context = {
        "language": language,
        "greeting": t["mail.greeting"].format(name=row["name"]),
        "available": t["mail.available"].format(course=course),
        "lines": lines,
        "link_text": t["mail.link"],
        "link": mail.link_of(link_template, row["course"], row["learner"]),
        "footer": t["mail.footer"],
    }
    message = EmailMessage()
    if row["kind"] == "reports":
        message["Subject"] = mail.one_line(t["mail.subject_report"].format(assessment=assessment, course=course))
    else:
        message["Subject"] = mail.one_line(t["mail.subject_certificate"].format(course=course))
    message["From"] = smtp.sender
    message["To"] = mail.recipient(row["name"], row["email"])
    message["Message-ID"] = message_id
    message.set_content(mail.TEMPLATES.get_template("candidate_mailing.txt").render(context))
    message.add_alternative(mail.TEMPLATES.get_template("candidate_mailing.html").render(context), subtype="html")
    return message


async def send_due(
    sessionmaker: async_sessionmaker[AsyncSession], smtp: SmtpSettings, link_template: str, mailing_id: int
) -> datetime | None:
    """Send the mailing's due letters one by one (claimed before, marked after, as results e-mails);
    settle the mailing; return when the next retry is due (or None)."""

    async def letter(session: AsyncSession, enrollment_id: int) -> EmailMessage | dict[str, Any]:
        row = (
            (await session.execute(_LETTER, {"m": mailing_id, "e": enrollment_id, "now": clock.now()})).mappings().one()
        )
        why = _skip_reason(row)
        if why is not None:  # checked again now: never sent, whatever happened since the request
            return mail.skipped(why)
        key = mail.message_id(f"gradeflow.mailing.{mailing_id}.{enrollment_id}", smtp)
        return mail.composed("documents_url_template", lambda: compose(row, smtp, link_template, key), row["email"])

    next_due = await mail.send_queue(sessionmaker, smtp, LETTERS, mailing_id, letter)
    async with sessionmaker() as session:
        await session.execute(text(_SETTLE), {"m": mailing_id, "now": clock.now()})
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
        await session.execute(text(_SETTLE), {"m": mailing_id, "now": now})
    due = await session.execute(
        text(
            """
            SELECT m.id, m.status, greatest(m.created_at, beat.at) AS beat
            FROM candidate_mailings m
            CROSS JOIN LATERAL (SELECT max(l.claimed_at) AS at FROM candidate_letters l WHERE l.mailing_id = m.id) beat
            WHERE m.status IN ('queued', 'preparing', 'sending')
              AND (m.status <> 'sending' AND m.created_at < :t
                   OR EXISTS (SELECT 1 FROM candidate_letters l WHERE l.mailing_id = m.id
                              AND l.status = 'queued' AND l.next_try_at <= :now))
            """
        ),
        {"t": now - timedelta(minutes=1), "now": now},
    )
    return [
        (m, job_id(m, f"-{beat.timestamp():.0f}" if status != "queued" and beat < now - LOST_AFTER else ""))
        for m, status, beat in due.all()
    ]


async def expire_documents(session: AsyncSession, store: ObjectStore) -> int:
    """Delete the files of learner documents past their retention, and their records (the letters
    stay, sent); at most 1,000 a run."""
    rows = (
        await session.execute(
            text("SELECT id, object_key FROM learner_documents WHERE expires_at <= :now ORDER BY id LIMIT 1000"),
            {"now": clock.now()},
        )
    ).all()
    for _, key in rows:
        await store.delete(key)
    await session.execute(
        text("DELETE FROM learner_documents WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": [r[0] for r in rows]}
    )
    await session.commit()
    return len(rows)
