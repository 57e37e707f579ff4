"""The SQL of candidate mailings: the request and its letters, the learner's documents, and the worker's
preparing, sending, settling and sweeping. Functions flush, never commit: the use cases
(gradeflow/mailings/service.py) own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.certificates.repository.certificates import Selection
from gradeflow.certificates.repository.eligibility import SHOWN_TO_LEARNER, shown_to_learner
from gradeflow.core import jsonutil, names
from gradeflow.core.paging import Page
from gradeflow.db.paging import newest_first
from gradeflow.notify import mail
from gradeflow.reports.repository.records import TAKEN_IN_PERIOD

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


# --- the request ----------------------------------------------------------------------------------

_NEW_MAILING = text(
    "INSERT INTO candidate_mailings (course_id, kind, params, requested_by, created_at)"
    " VALUES (:c, :kind, CAST(:params AS jsonb), :actor, :now) RETURNING id"
)


async def new_mailing(
    session: AsyncSession, course_id: int, kind: str, params: dict[str, Any], actor: str, now: datetime
) -> int:
    """Record a mailing (queued); its id."""
    mailing_id: int = await session.scalar(
        _NEW_MAILING, {"c": course_id, "kind": kind, "params": jsonutil.dumps(params), "actor": actor, "now": now}
    )
    return mailing_id


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
"""  # noqa: S608  (constant SQL; `who` is the reports' Who's fixed conditions)


async def write_report_letters(
    session: AsyncSession,
    mailing_id: int,
    now: datetime,
    course_id: int,
    assessment_id: int | None,
    who: tuple[str, dict[str, Any]],
    since: datetime | None,
    until: datetime | None,
) -> list[str]:
    """One letter per learner `who` (a condition on `e` and its parameters) selects, for a mailing of
    kind reports; the letters' statuses."""
    condition, named = who
    values = {"m": mailing_id, "now": now, "c": course_id, "a": assessment_id, "since": since, "until": until}
    return list((await session.scalars(text(_REPORT_LETTERS.format(who=condition)), values | named)).all())


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
      WHEN NOT {SHOWN_TO_LEARNER} THEN '{NO_RESULT}'
      WHEN e.status = 'unenrolled' THEN '{UNENROLLED}'
      WHEN e.email IS NULL THEN '{NO_EMAIL}' END AS why) x
    WHERE e.course_id = :c AND {{learners}} AND {{issued}}
    RETURNING status
"""  # noqa: S608  (constant SQL; the selection's fixed conditions)


async def write_certificate_letters(
    session: AsyncSession, mailing_id: int, now: datetime, chosen: Selection
) -> list[str]:
    """One letter per learner the certificates' selection covers, for a mailing of kind certificates;
    the letters' statuses."""
    sql = _CERTIFICATE_LETTERS.format(
        certification=chosen.certification, learners=chosen.learners, issued=chosen.issued
    )
    return list((await session.scalars(text(sql), {"m": mailing_id, "now": now} | chosen.params)).all())


# A mailing is done once none of its letters is open (nothing to prepare, send or retry).
_SETTLE = text(
    """
    UPDATE candidate_mailings m SET status = 'done', done_at = :now
    WHERE m.id = :m AND m.status IN ('queued', 'preparing', 'sending')
      AND NOT EXISTS (SELECT 1 FROM candidate_letters l WHERE l.mailing_id = m.id
                      AND l.status IN ('preparing', 'queued', 'sending'))
    """
)


async def settle(session: AsyncSession, mailing_id: int, now: datetime) -> None:
    """Mark the mailing done if none of its letters is open any more."""
    await session.execute(_SETTLE, {"m": mailing_id, "now": now})


# --- reads ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LetterCounts:
    """A mailing's letters per status; they add up to `total`."""

    total: int
    preparing: int
    queued: int
    sending: int
    sent: int
    failed: int
    skipped: int


@dataclass(frozen=True, slots=True)
class MailingView:
    """A mailing with the count of its letters per status."""

    id: int
    course: str
    kind: str
    params: dict[str, Any]
    status: str
    counts: LetterCounts
    requested_by: str
    created_at: datetime
    done_at: datetime | None
    error: str | None


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
_VIEW_ONE = text(_VIEW + " WHERE m.id = :id AND m.course_id = :c")


def _view(row: Any) -> MailingView:
    return MailingView(
        id=row["id"],
        course=row["course"],
        kind=row["kind"],
        params=row["params"],
        status=row["status"],
        counts=LetterCounts(
            *(row[k] for k in ("total", "preparing", "queued", "sending", "sent", "failed", "skipped"))
        ),
        requested_by=row["requested_by"],
        created_at=row["created_at"],
        done_at=row["done_at"],
        error=row["error"],
    )


async def mailing_in(session: AsyncSession, course_id: int, mailing_id: int) -> MailingView | None:
    """The course's mailing `mailing_id` with its counts (None: the course has none of that id)."""
    row = (await session.execute(_VIEW_ONE, {"id": mailing_id, "c": course_id})).mappings().first()
    return None if row is None else _view(row)


async def mailings_of(session: AsyncSession, course_id: int, limit: int, cursor: str | None) -> Page[MailingView]:
    """The course's mailings, most recent first, with their counts."""
    page = await newest_first(session, _VIEW + " WHERE m.course_id = :c", {"c": course_id}, limit, cursor)
    return Page([_view(r) for r in page.items], page.next_cursor)


_CANCEL = text(
    "UPDATE candidate_mailings SET status = 'cancelled', done_at = :now"
    " WHERE id = :id AND course_id = :c AND status IN ('queued', 'preparing', 'sending') RETURNING id"
)
_SKIP_OPEN_LETTERS = text(
    """
    WITH s AS (UPDATE candidate_letters SET status = 'skipped', error = :why
               WHERE mailing_id = :id AND status IN ('preparing', 'queued') RETURNING 1)
    SELECT count(*) FROM s
    """
)


async def cancel(session: AsyncSession, course_id: int, mailing_id: int, now: datetime) -> bool:
    """Mark the course's mailing cancelled if it is still under way (False: it is not)."""
    return await session.scalar(_CANCEL, {"id": mailing_id, "c": course_id, "now": now}) is not None


async def skip_open_letters(session: AsyncSession, mailing_id: int, why: str) -> int:
    """Skip (with why) the mailing's letters not sent yet nor being sent; how many."""
    return int(await session.scalar(_SKIP_OPEN_LETTERS, {"id": mailing_id, "why": why}) or 0)


# --- the learner's documents ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Document:
    """A learner document as the learner's list shows it, and the object that holds it."""

    id: int
    course_id: int
    kind: str
    assessment: str
    assessment_title: str
    language: str
    file_name: str
    bytes: int
    object_key: str
    created_at: datetime
    expires_at: datetime | None


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
_MY_DOCUMENT = text(_MY_DOCUMENTS + " AND d.id = :id")


async def documents_shown(
    session: AsyncSession, enrollment_id: int, now: datetime, limit: int, cursor: str | None
) -> Page[Document]:
    """The enrollment's documents that still show, most recent first."""
    page = await newest_first(session, _MY_DOCUMENTS, {"e": enrollment_id, "now": now}, limit, cursor)
    return Page([Document(**r) for r in page.items], page.next_cursor)


async def document_shown(session: AsyncSession, enrollment_id: int, document_id: int, now: datetime) -> Document | None:
    """The enrollment's document `document_id` if it still shows."""
    row = (await session.execute(_MY_DOCUMENT, {"e": enrollment_id, "now": now, "id": document_id})).first()
    return None if row is None else Document(*row)


# --- the worker's side: preparing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailingJob:
    """A mailing as its job works on it."""

    id: int
    course_id: int
    course: str
    course_title: str
    kind: str
    params: dict[str, Any]
    status: str


_START = text(
    """
    UPDATE candidate_mailings m SET status = CASE
      WHEN EXISTS (SELECT 1 FROM candidate_letters l WHERE l.mailing_id = m.id
                   AND l.status = 'preparing') THEN 'preparing' ELSE 'sending' END
    FROM courses c
    WHERE m.id = :m AND c.id = m.course_id AND m.status IN ('queued', 'preparing', 'sending')
    RETURNING m.*, c.external_id AS course, c.title AS course_title
    """
)


async def start(session: AsyncSession, mailing_id: int) -> MailingJob | None:
    """Move the mailing on from queued: `preparing` while a letter waits for its document, else
    `sending` (None once it is done or cancelled)."""
    row = (await session.execute(_START, {"m": mailing_id})).mappings().first()
    if row is None:
        return None
    return MailingJob(
        id=row["id"],
        course_id=row["course_id"],
        course=row["course"],
        course_title=row["course_title"],
        kind=row["kind"],
        params=row["params"],
        status=row["status"],
    )


_SKIP_WITHDRAWN = text(
    f"""
    UPDATE candidate_letters l SET status = 'skipped', error = '{RESULT_WITHDRAWN}'
    FROM candidate_mailings m
    WHERE l.mailing_id = :m AND m.id = l.mailing_id AND l.status = 'preparing'
      AND NOT EXISTS (SELECT 1 FROM published_results pr JOIN assessments a ON a.id = pr.assessment_id
                      WHERE pr.enrollment_id = l.enrollment_id AND a.course_id = m.course_id
                        AND a.external_id = m.params->>'assessment')
    """  # noqa: S608  (constant SQL)
)


async def skip_withdrawn(session: AsyncSession, mailing_id: int) -> None:
    """Skip the letters waiting for their document whose result is no longer published."""
    await session.execute(_SKIP_WITHDRAWN, {"m": mailing_id})


class Candidate(NamedTuple):
    enrollment_id: int
    learner: str


_TAKE = text(
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
)


async def take_to_prepare(
    session: AsyncSession, mailing_id: int, after: int, size: int, now: datetime
) -> list[Candidate]:
    """The next `size` letters waiting for their document, by enrollment after `after`, stamped as taken
    at `now`: their candidates in enrollment order."""
    rows = await session.execute(_TAKE, {"m": mailing_id, "after": after, "n": size, "now": now})
    return sorted(Candidate(int(r[0]), str(r[1])) for r in rows)


_BEAT = text("UPDATE candidate_letters SET claimed_at = :now WHERE mailing_id = :m AND enrollment_id = :e")


async def beat(session: AsyncSession, mailing_id: int, enrollment_id: int, now: datetime) -> None:
    """Stamp the letter being worked on (the worker is alive)."""
    await session.execute(_BEAT, {"m": mailing_id, "e": enrollment_id, "now": now})


_DOCUMENTS_READY = text(
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
)


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A document uploaded for one letter."""

    enrollment_id: int
    object_key: str
    file_name: str
    bytes: int
    sha256: str


async def documents_ready(
    session: AsyncSession,
    mailing_id: int,
    documents: Sequence[PreparedDocument],
    language: str,
    now: datetime,
    expires: datetime,
) -> None:
    """Record a chunk's uploaded documents and queue their letters, in one statement; the letters are
    locked first, so that of two workers preparing the same letter one records it."""
    docs = [
        {
            "enrollment_id": d.enrollment_id,
            "object_key": d.object_key,
            "file_name": d.file_name,
            "bytes": d.bytes,
            "sha256": d.sha256,
        }
        for d in documents
    ]
    await session.execute(
        _DOCUMENTS_READY,
        {"docs": jsonutil.dumps(docs), "m": mailing_id, "lang": language, "now": now, "expires": expires},
    )


_NOT_PREPARED = text(
    "UPDATE candidate_letters SET status = 'failed', error = :e WHERE mailing_id = :m AND status = 'preparing'"
)


async def fail_unprepared(session: AsyncSession, mailing_id: int, error: str) -> None:
    """Fail (with why) the mailing's letters still waiting for their document."""
    await session.execute(_NOT_PREPARED, {"m": mailing_id, "e": error})


# --- the worker's side: sending ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LetterFacts:
    """What one letter says, read when it is claimed: the learner, the course, the assessment, and
    whether what it announces still holds (the result published, the report still on the learner's
    page, the certificate valid and shown)."""

    email: str | None
    name: str
    learner: str
    course: str
    course_title: str
    kind: str
    params: dict[str, Any]
    assessment_title: str | None
    document_id: int | None
    certificate_id: int | None
    certificate_exists: bool
    revoked: bool
    certificate_shown: bool
    certificate_title: str | None
    certificate_language: str
    published: bool
    document_shows: bool
    unenrolled: bool


_LETTER = text(
    f"""
    SELECT e.email, {names.learner_name_sql("e")} AS name, e.external_id AS learner,
           c.external_id AS course, c.title AS course_title, m.kind, m.params, a.title AS assessment_title,
           l.document_id, l.certificate_id, cert.id IS NOT NULL AS certificate_exists,
           cert.revoked_at IS NOT NULL AS revoked,
           (cert.id IS NOT NULL AND {shown_to_learner("cert")}) AS certificate_shown,
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


async def letter_facts(session: AsyncSession, mailing_id: int, enrollment_id: int, now: datetime) -> LetterFacts:
    """What the mailing's letter to the enrollment says, as things stand at `now`."""
    return LetterFacts(*(await session.execute(_LETTER, {"m": mailing_id, "e": enrollment_id, "now": now})).one())


class OpenMailing(NamedTuple):
    """A mailing with work left: its status and its last sign of life."""

    id: int
    status: str
    beat: datetime


_OPEN = text(
    """
    SELECT m.id, m.status, greatest(m.created_at, beat.at) AS beat
    FROM candidate_mailings m
    CROSS JOIN LATERAL (SELECT max(l.claimed_at) AS at FROM candidate_letters l WHERE l.mailing_id = m.id) beat
    WHERE m.status IN ('queued', 'preparing', 'sending')
      AND (m.status <> 'sending' AND m.created_at < :t
           OR EXISTS (SELECT 1 FROM candidate_letters l WHERE l.mailing_id = m.id
                      AND l.status = 'queued' AND l.next_try_at <= :now))
    """
)


async def needing_a_job(session: AsyncSession, now: datetime, unstarted_before: datetime) -> list[OpenMailing]:
    """Open mailings that need a job: letters due at `now`, or not sending yet and created before
    `unstarted_before`."""
    return [OpenMailing(*r) for r in await session.execute(_OPEN, {"t": unstarted_before, "now": now})]


class ExpiredDocument(NamedTuple):
    id: int
    object_key: str


_EXPIRED = text("SELECT id, object_key FROM learner_documents WHERE expires_at <= :now ORDER BY id LIMIT 1000")
_DELETE_DOCUMENTS = text("DELETE FROM learner_documents WHERE id = ANY(CAST(:ids AS bigint[]))")


async def expired_documents(session: AsyncSession, now: datetime) -> list[ExpiredDocument]:
    """Learner documents past their retention at `now` (at most 1,000, oldest first)."""
    return [ExpiredDocument(*r) for r in await session.execute(_EXPIRED, {"now": now})]


async def delete_documents(session: AsyncSession, ids: Sequence[int]) -> None:
    await session.execute(_DELETE_DOCUMENTS, {"ids": list(ids)})
