"""Candidate mailings: prepare each candidate's document (kind `reports`), then send the letters.

The job can run twice, or be cut short anywhere: a letter is prepared (document uploaded and recorded,
letter queued) in one statement per chunk, and sent at most once (claimed before the SMTP server hears
of it). The sweep re-enqueues a mailing whose job was lost or whose retries are due.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator

from arq import Retry
from sqlalchemy.exc import DBAPIError, OperationalError

from gradeflow.core.names import safe_name
from gradeflow.jobs import WorkerContext
from gradeflow.mailings import service as mailings
from gradeflow.mailings.repository import MailingJob, PreparedDocument
from gradeflow.readside.service import course_data
from gradeflow.reports.builders import Drawing
from gradeflow.reports.commands import IndividualReportsParams
from gradeflow.reports.kinds import CONTENT_TYPES
from gradeflow.reports.service import report_records
from gradeflow.reports.service.report_records import LearnerRecord
from gradeflow.reports.writers import pdf
from gradeflow.storage.s3 import TRANSIENT

log = logging.getLogger(__name__)

# Letters prepared (reports drawn, uploaded and recorded) per chunk.
PREPARE_CHUNK = 500
# Tries of a job that meets a storage or database hiccup while preparing, before its letters fail.
PREPARE_TRIES = 5


async def send_candidate_mailing(ctx: WorkerContext, mailing_id: int) -> str:
    """Prepare a mailing's documents, then send its due letters (each at most once); retries are picked
    up by the sweep."""
    sessionmaker, settings = ctx["sessionmaker"], ctx["settings"]
    mailing = await mailings.start(sessionmaker, mailing_id)
    if mailing is None:
        return "not under way (done or cancelled)"
    if mailing.status == "preparing":
        try:
            prepared = await _prepare(ctx, mailing)
        except (*TRANSIENT, OperationalError, DBAPIError, TimeoutError) as exc:
            tries = int(ctx.get("job_try") or 1)
            log.warning("mailing %s: preparing, try %s failed: %r", mailing_id, tries, exc)
            if tries < PREPARE_TRIES:
                raise Retry(defer=5 * tries) from exc
            await mailings.not_prepared(sessionmaker, mailing_id, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug or bad data: the letters fail visibly, never silently
            log.exception("mailing %s: preparing failed", mailing_id)
            await mailings.not_prepared(sessionmaker, mailing_id, f"could not make the report: {exc!r}")
        else:
            log.info("mailing %s: %s reports prepared", mailing_id, prepared)
        if await mailings.start(sessionmaker, mailing_id) is None:  # now sending (or cancelled meanwhile)
            return "cancelled"
    next_due = await mailings.send_due(sessionmaker, settings.smtp, settings.documents_url_template, mailing_id)
    return "done" if next_due is None else f"next retry at {next_due.isoformat()}"


async def _prepare(ctx: WorkerContext, mailing: MailingJob) -> int:
    """Each waiting candidate's individual report (what was published to them, as the ZIP report draws
    it), uploaded and recorded chunk by chunk; returns how many."""
    sessionmaker, store, settings = ctx["sessionmaker"], ctx["store"], ctx["settings"]
    params = mailing.params
    async with sessionmaker() as session:
        course = await course_data.load_course(session, mailing.course_id)

    async def chunks() -> AsyncIterator[tuple[dict[str, int], list[LearnerRecord]]]:
        after = 0
        while True:
            async with sessionmaker() as session:
                batch = await mailings.to_prepare(session, mailing, after, PREPARE_CHUNK)
                if not batch:
                    return
                after = batch[-1].enrollment_id
                # The language was checked when the mailing was asked for; one removed since prints English.
                p = IndividualReportsParams(learners=[learner for _, learner in batch], language=params["language"])
                records = [r async for chunk in report_records.learner_records(session, course, p) for r in chunk]
            yield {learner: enrollment_id for enrollment_id, learner in batch}, records

    done = 0
    beaten = time.monotonic()
    with Drawing(pdf.individual_report) as drawing:
        async for enrollment_of, records in chunks():
            documents = []
            async for record, content in drawing.each(records):
                enrollment_id = enrollment_of[record.learner]
                if time.monotonic() - beaten > mailings.HEARTBEAT_SECONDS:  # alive: the sweep leaves it be
                    await mailings.beat(sessionmaker, mailing.id, enrollment_id)
                    beaten = time.monotonic()
                key = mailings.document_key(mailing, enrollment_id)
                await store.put_bytes(key, content, CONTENT_TYPES["pdf"])
                documents.append(
                    PreparedDocument(
                        enrollment_id=enrollment_id,
                        object_key=key,
                        file_name="_".join(safe_name(x) for x in (mailing.course, params["assessment"], record.learner))
                        + ".pdf",
                        bytes=len(content),
                        sha256=hashlib.sha256(content).hexdigest(),
                    )
                )
            await mailings.documents_ready(sessionmaker, mailing, documents, settings.documents_retention_days)
            done += len(documents)
    return done


async def expire_documents(ctx: WorkerContext) -> int:
    """Cron (hourly): delete the reports sent to candidates once past their retention."""
    async with ctx["sessionmaker"]() as session:
        return await mailings.expire_documents(session, ctx["store"])
