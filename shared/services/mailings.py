"""Candidate mailings: "send each candidate their report / certificate".

A request records the mailing and ONE letter per candidate in one statement (a candidate with nothing
to send gets a `skipped` letter saying why, so the counts add up), commits, then enqueues the job. The
worker prepares the letters (kind `reports`: each candidate's individual report, as published to them,
rendered and kept in object storage as a learner document), then sends them under the claim/retry rules
of results e-mails (shared/notify/mail.py): a letter is claimed (`sending`, committed) before it goes
to the SMTP server and marked `sent` after, so it is sent at most once per request. At claim time the
letter is checked again: a certificate revoked since, or a result no longer published, is `skipped`.

The e-mail holds one link, to the learner's documents page in the LMS (never a signed link); that page
asks the learner endpoints for a fresh five-minute link.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock, jobs, jsonutil, metrics, report_labels
from shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from shared.notify import mail
from shared.services import audit, publishing, report_data, report_references, reviews
from shared.services.access import CourseRef
from shared.services.auth import Principal
from shared.services.inputs import MailingRequest
from shared.services.paging import Page, newest_first
from shared.services.report_records import TAKEN_IN_PERIOD
from shared.settings import SmtpSettings
from shared.storage.s3 import ObjectStore

log = logging.getLogger(__name__)

# Why a letter is skipped (never sent).
NO_RESULT = "no published result of the assessment"
NO_EMAIL = "no e-mail address"
RESULT_WITHDRAWN = "the result is no longer published"
REVOKED = "certificate revoked"
CERTIFICATE_GONE = "the certificate no longer exists"
CANCELLED = "cancelled"

OPEN_LETTERS = ("preparing", "queued", "sending")


def job_id(mailing_id: int, suffix: str = "") -> str:
    return f"mailing-{mailing_id}{suffix}"


# --- the request ----------------------------------------------------------------------------------

# Kind reports: every learner the filters select (with an attempt taken in the period, when one is
# given); skipped without a published result of the assessment or an address. The certificate of the
# assessment goes with the report where the learner holds a valid one.
_REPORT_LETTERS = f"""
    INSERT INTO candidate_letters (mailing_id, enrollment_id, status, certificate_id, error, next_try_at)
    SELECT :m, e.id,
           CASE WHEN pr.enrollment_id IS NULL OR e.email IS NULL THEN 'skipped' ELSE 'preparing' END,
           cert.id,
           CASE WHEN pr.enrollment_id IS NULL THEN '{NO_RESULT}' WHEN e.email IS NULL THEN '{NO_EMAIL}' END,
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

# Kind certificates: the holders of a valid certificate of the course (:a null) or of the assessment,
# issued in the period.
_CERTIFICATE_LETTERS = f"""
    INSERT INTO candidate_letters (mailing_id, enrollment_id, status, certificate_id, error, next_try_at)
    SELECT :m, e.id, CASE WHEN e.email IS NULL THEN 'skipped' ELSE 'queued' END, cert.id,
           CASE WHEN e.email IS NULL THEN '{NO_EMAIL}' END, :now
    FROM certificates cert JOIN enrollments e ON e.id = cert.enrollment_id
    WHERE cert.course_id = :c AND cert.assessment_id IS NOT DISTINCT FROM CAST(:a AS bigint)
      AND cert.revoked_at IS NULL AND {{who}}
      AND (CAST(:since AS timestamptz) IS NULL OR cert.created_at >= :since)
      AND (CAST(:until AS timestamptz) IS NULL OR cert.created_at < :until)
    RETURNING status
"""  # noqa: S608

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
    await publishing.check_publisher_scope(
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
    who = await report_data.who_of(session, ref.id, body)
    condition, named = who.named()
    statement = (_REPORT_LETTERS if body.kind == "reports" else _CERTIFICATE_LETTERS).format(who=condition)
    statuses = (
        await session.scalars(
            text(statement),
            {"m": mailing_id, "c": ref.id, "a": assessment_id, "now": now, "since": body.since, "until": body.until}
            | named,
        )
    ).all()
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


async def cancel(session: AsyncSession, ref: CourseRef, mailing_id: int, actor: str) -> dict[str, Any]:
    """Stop a mailing: its letters not sent yet are skipped ('cancelled'); sent ones stay sent, and one
    being sent at this moment ends as it ends. 409 once the mailing is done or cancelled."""
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
_MY_DOCUMENTS = """
    SELECT d.id, d.course_id, d.kind, a.external_id AS assessment, a.title AS assessment_title, d.language,
           d.file_name, d.bytes, d.object_key, d.created_at, d.expires_at
    FROM learner_documents d
    JOIN assessments a ON a.id = d.assessment_id
    JOIN published_results pr ON pr.enrollment_id = d.enrollment_id AND pr.assessment_id = d.assessment_id
    WHERE d.enrollment_id = :e AND pr.published_at <= d.created_at
      AND (d.expires_at IS NULL OR d.expires_at > :now)
"""


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
    enrollment_id = await reviews.learner_enrollment(session, principal, course)
    page = await newest_first(session, _MY_DOCUMENTS, {"e": enrollment_id, "now": clock.now()}, limit, cursor)
    return Page([_document(r) for r in page.items], page.next_cursor)


async def my_document_link(
    session: AsyncSession, store: ObjectStore, principal: Principal, course: str, document_id: int, link_seconds: int
) -> dict[str, Any]:
    """A five-minute link to one of the learner's documents that still shows (404 for anything else:
    another learner's, a retracted or re-published result's, an expired one). The issuance is audited."""
    enrollment_id = await reviews.learner_enrollment(session, principal, course)
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
    learner). Letters whose result was retracted since the request are skipped first."""
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
            SELECT l.enrollment_id, e.external_id FROM candidate_letters l JOIN enrollments e ON e.id = l.enrollment_id
            WHERE l.mailing_id = :m AND l.status = 'preparing' AND l.enrollment_id > :after
            ORDER BY l.enrollment_id LIMIT :n
            """
        ),
        {"m": mailing["id"], "after": after, "n": size},
    )
    batch = [(int(r[0]), str(r[1])) for r in rows]
    await session.commit()
    return batch


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
    their letters, in one statement: a letter is queued with its document or not at all."""
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
                made AS (
                  INSERT INTO learner_documents (course_id, enrollment_id, assessment_id, mailing_id, kind, language,
                                                 object_key, file_name, bytes, sha256, created_at, expires_at)
                  SELECT m.course_id, d.enrollment_id, a.id, m.id, 'individual_report', :lang,
                         d.object_key, d.file_name, d.bytes, d.sha256, :now, :expires
                  FROM d JOIN candidate_mailings m ON m.id = :m
                  JOIN assessments a ON a.course_id = m.course_id AND a.external_id = m.params->>'assessment'
                  JOIN candidate_letters l ON l.mailing_id = m.id AND l.enrollment_id = d.enrollment_id
                   AND l.status = 'preparing'
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

_CLAIM = text(
    """
    UPDATE candidate_letters l SET status = 'sending', tries = l.tries + 1, claimed_at = :now
    WHERE (l.mailing_id, l.enrollment_id) = (
      SELECT mailing_id, enrollment_id FROM candidate_letters
      WHERE mailing_id = :m AND status = 'queued' AND next_try_at <= :now
      ORDER BY enrollment_id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING l.enrollment_id, l.tries
    """
)

# What one letter says, read when it is claimed: the learner, the course, the assessment, and whether
# what it announces still holds (the result published, the certificate valid).
_LETTER = text(
    """
    SELECT e.email, coalesce(e.full_name, e.username, e.external_id) AS name, e.external_id AS learner,
           c.external_id AS course, c.title AS course_title, m.kind, m.params, a.title AS assessment_title,
           l.document_id, l.certificate_id, cert.id IS NOT NULL AS certificate_exists,
           cert.revoked_at IS NOT NULL AS revoked,
           coalesce(cf.title, ca.title, c.title) AS certificate_title,
           EXISTS (SELECT 1 FROM published_results pr WHERE pr.enrollment_id = e.id AND pr.assessment_id = a.id)
             AS published
    FROM candidate_letters l
    JOIN candidate_mailings m ON m.id = l.mailing_id
    JOIN enrollments e ON e.id = l.enrollment_id
    JOIN courses c ON c.id = m.course_id
    LEFT JOIN assessments a ON a.course_id = c.id AND a.external_id = m.params->>'assessment'
    LEFT JOIN certificates cert ON cert.id = l.certificate_id
    LEFT JOIN assessments ca ON ca.id = cert.assessment_id
    LEFT JOIN certifications cf ON cf.course_id = c.id AND cf.assessment_id IS NOT DISTINCT FROM cert.assessment_id
    WHERE l.mailing_id = :m AND l.enrollment_id = :e
    """
)

# A letter put back in the queue after its mailing was cancelled is skipped instead.
_OUTCOME = text(
    """
    UPDATE candidate_letters l SET
      status = CASE WHEN :status = 'queued' AND m.status = 'cancelled' THEN 'skipped' ELSE :status END,
      error = CASE WHEN :status = 'queued' AND m.status = 'cancelled' THEN 'cancelled' ELSE :error END,
      next_try_at = :next, sent_at = :sent
    FROM candidate_mailings m
    WHERE m.id = l.mailing_id AND l.mailing_id = :m AND l.enrollment_id = :e
    """
)


def _skip_reason(row: Any) -> str | None:
    """Why a claimed letter must not go (None: it goes)."""
    if row["email"] is None:
        return NO_EMAIL
    if row["kind"] == "reports":
        return None if row["published"] and row["document_id"] is not None else RESULT_WITHDRAWN
    if not row["certificate_exists"]:
        return CERTIFICATE_GONE
    return REVOKED if row["revoked"] else None


def compose(row: Any, smtp: SmtpSettings, link_template: str, message_id: str) -> EmailMessage:
    """The plain-text and HTML e-mail of a letter, in the mailing's language where the label catalogue
    has it (else English), naming the course, the assessment and what is available, with one link to
    the learner's documents page in the LMS."""
    language = row["params"].get("language", "en")
    t = report_labels.labels(language)
    course, assessment = row["course_title"], row["assessment_title"]
    lines = []
    if row["kind"] == "reports":
        lines.append(t["mail.report"].format(assessment=assessment))
    if row["certificate_exists"] and not row["revoked"]:
        lines.append(t["mail.certificate"].format(title=row["certificate_title"]))
    context = {
        "language": language,
        "greeting": t["mail.greeting"].format(name=row["name"]),
        "available": t["mail.available"].format(course=course),
        "lines": lines,
        "link_text": t["mail.link"],
        "link": link_template.format(course=quote(row["course"], safe=""), learner=quote(row["learner"], safe="")),
        "footer": t["mail.footer"],
    }
    message = EmailMessage()
    if row["kind"] == "reports":
        message["Subject"] = t["mail.subject_report"].format(assessment=assessment, course=course)
    else:
        message["Subject"] = t["mail.subject_certificate"].format(course=course)
    message["From"] = smtp.sender
    message["To"] = formataddr((row["name"], row["email"]))
    message["Message-ID"] = message_id
    message.set_content(mail.TEMPLATES.get_template("candidate_mailing.txt").render(context))
    message.add_alternative(mail.TEMPLATES.get_template("candidate_mailing.html").render(context), subtype="html")
    return message


async def send_due(
    sessionmaker: async_sessionmaker[AsyncSession], smtp: SmtpSettings, link_template: str, mailing_id: int
) -> datetime | None:
    """Send the mailing's due letters one by one (claimed before, marked after); settle the mailing;
    return when the next retry is due (or None)."""
    connection = mail.Connection(smtp)
    try:
        while True:
            async with sessionmaker() as session:
                claimed = (await session.execute(_CLAIM, {"m": mailing_id, "now": clock.now()})).first()
                if claimed is None:
                    break
                enrollment_id, tries = claimed
                row = (await session.execute(_LETTER, {"m": mailing_id, "e": enrollment_id})).mappings().one()
                why = _skip_reason(row)
                if why is not None:  # checked again now: never sent, whatever happened since the request
                    await session.execute(
                        _OUTCOME,
                        {"m": mailing_id, "e": enrollment_id, "status": "skipped", "next": None, "error": why}
                        | {"sent": None},
                    )
                await session.commit()
            if why is not None:
                continue
            try:
                message = compose(
                    row, smtp, link_template, mail.message_id(f"gradeflow.mailing.{mailing_id}.{enrollment_id}", smtp)
                )
            except (KeyError, IndexError, ValueError) as exc:
                outcome = mail.failed(clock.now(), f"documents_url_template is invalid: {exc!r}")
            else:
                outcome = await mail.deliver(connection, message, tries)
            metrics.EMAILS.labels(outcome="retry" if outcome["status"] == "queued" else outcome["status"]).inc()
            async with sessionmaker() as session:
                await session.execute(_OUTCOME, {"m": mailing_id, "e": enrollment_id, **outcome})
                await session.commit()
    finally:
        await connection.close()
    async with sessionmaker() as session:
        await session.execute(text(_SETTLE), {"m": mailing_id, "now": clock.now()})
        next_due: datetime | None = await session.scalar(
            text("SELECT min(next_try_at) FROM candidate_letters WHERE mailing_id = :m AND status = 'queued'"),
            {"m": mailing_id},
        )
        await session.commit()
    return next_due


async def recover(session: AsyncSession, lease: timedelta) -> list[tuple[int, bool]]:
    """For the sweep: letters claimed by a worker that died mid-send are failed (never sent twice);
    mailings with nothing open left are settled. Returns the open mailings that need their job (letters
    due, or a job that never started), each with whether a sender died on it (a new job id then)."""
    now = clock.now()
    interrupted = set(
        (
            await session.scalars(
                text(
                    "UPDATE candidate_letters SET status = 'failed', error = :why"
                    " WHERE status = 'sending' AND claimed_at < :t RETURNING mailing_id"
                ),
                {"t": now - lease, "why": mail.INTERRUPTED},
            )
        ).all()
    )
    for mailing_id in interrupted:
        await session.execute(text(_SETTLE), {"m": mailing_id, "now": now})
    due = await session.scalars(
        text(
            """
            SELECT m.id FROM candidate_mailings m
            WHERE m.status IN ('queued', 'preparing', 'sending')
              AND (m.status <> 'sending' AND m.created_at < :t
                   OR EXISTS (SELECT 1 FROM candidate_letters l WHERE l.mailing_id = m.id
                              AND l.status = 'queued' AND l.next_try_at <= :now))
            """
        ),
        {"t": now - timedelta(minutes=1), "now": now},
    )
    return [(m, m in interrupted) for m in due.all()]


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
