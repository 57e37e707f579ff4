"""Diplomas: what a certificate's diploma prints, whether the stored PDF still says it, and links to it.

What each certificate's diploma prints, and its `digest` (a hash of all of it computed in SQL), is
the repository's one statement (gradeflow/certificates/repository/diplomas.py): a listing tells a
stale diploma from a current one set-based.

The worker renders stale diplomas of valid (not revoked) certificates (`render_diplomas`), stores them
in object storage and records the digest; a link is handed out only for a current one. A revoked
certificate's diploma is never issued: staff are told it is revoked (409), the learner does not see it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.certificates.repository import diplomas as repository
from gradeflow.certificates.repository.certificates import Selection
from gradeflow.certificates.repository.certifications import Scope
from gradeflow.certificates.repository.diplomas import DiplomaRow
from gradeflow.core import clock, names
from gradeflow.core.errors import Conflict, NotFound
from gradeflow.courses.service import enrollments
from gradeflow.jobs import JobName
from gradeflow.reports.labels import labels
from gradeflow.storage.s3 import ObjectStore

# How long a client waits before asking again for a diploma being rendered (Retry-After, seconds).
RETRY_AFTER = 5
# Certificates rendered per pass of `render_diplomas`, and listed per chunk of the ZIP.
CHUNK = 500


@dataclass(frozen=True)
class Image:
    """An image a diploma prints, with its bytes (read from object storage by the worker)."""

    sha256: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Diploma:
    """What one diploma prints (diplomas' writer draws it; it travels to a drawing process whole)."""

    certificate_id: int
    learner: str  # the enrollment's external id
    name: str
    code: str
    issued_on: date
    course: str
    assessment: str | None  # the assessment's title, for an assessment's certificate
    title: str  # the certification's title, else the default title in `language`
    body: str | None
    language: str
    signatory_name: str | None
    signatory_title: str | None
    logo: Image | None
    signature: Image | None
    digest: str


def diploma_of(row: DiplomaRow, images: dict[str, bytes]) -> Diploma:
    """A diploma row (from `stale`, `chunks`) as its record, with the images' bytes (by sha256)."""

    def image(sha: str | None, content_type: str | None) -> Image | None:
        return None if sha is None or content_type is None else Image(sha, content_type, images[sha])

    return Diploma(
        certificate_id=row.id,
        learner=row.learner,
        name=row.name,
        code=row.code,
        issued_on=row.issued_at.astimezone(UTC).date(),
        course=row.course,
        assessment=row.assessment_title,
        title=title(row.title, row.language),
        body=row.body,
        language=row.language,
        signatory_name=row.signatory_name,
        signatory_title=row.signatory_title,
        logo=image(row.logo_sha256, row.logo_type),
        signature=image(row.signature_sha256, row.signature_type),
        digest=row.digest,
    )


def title(certification_title: str | None, language: str) -> str:
    """What a certificate is called - on its diploma, in the learner's list, in the e-mail sending it:
    its certification's title, else (a course without a certification) the label catalogue's default
    title in the certification's language."""
    return certification_title or labels(language)["diploma.default_title"]


async def load_images(store: ObjectStore, rows: Sequence[DiplomaRow], images: dict[str, bytes]) -> None:
    """Read into `images` (by sha256) the images `rows` print that it does not hold yet: each image
    once per job, however many diplomas print it."""
    for row in rows:
        if row.logo_sha256 is not None and row.logo_key is not None and row.logo_sha256 not in images:
            images[row.logo_sha256] = await store.get_bytes(row.logo_key)
    for row in rows:
        if row.signature_sha256 is not None and row.signature_key is not None and row.signature_sha256 not in images:
            images[row.signature_sha256] = await store.get_bytes(row.signature_key)


# --- the worker's side: rendering stale diplomas ----------------------------------------------------


# arq stops a rendering job after this long (the worker's setting reads it): an object uploaded by a
# job still running is younger than this, so the sweep leaves unrecorded objects alone until then.
RENDER_SECONDS = 3600


def _job_base(course_id: int) -> str:
    """The base of the course's rendering job ids (jobs.request_round adds the round)."""
    return jobs.job_id(JobName.RENDER_DIPLOMAS, course_id)


async def request_render(queue: jobs.Queue, course_id: int) -> None:
    """Have the worker render the course's stale diplomas: the one way every caller asks (a link to a
    stale diploma, a generation, a changed certification or image). One job per course waits at a
    time (it renders whatever is stale when it runs, so asking twice costs nothing), and a request
    made while one runs is never lost (jobs.request_round: it gets a job of its own)."""
    await jobs.request_round(queue, JobName.RENDER_DIPLOMAS, _job_base(course_id), course_id)


@asynccontextmanager
async def render_lock(sessionmaker: async_sessionmaker[AsyncSession], course_id: int) -> AsyncIterator[bool]:
    """Whether this job may render the course now (False: another job is rendering it; try later). One
    render of a course at a time (two would draw the same stale diplomas twice over): a session-level
    advisory lock, held on its own connection for the job and gone with it if the worker dies. The
    session keeps its connection, and so the lock, until the block ends."""
    async with sessionmaker() as session:
        held = await repository.try_render_lock(session, course_id)
        try:
            yield held
        finally:
            if held:
                await repository.render_unlock(session, course_id)


async def render_started(queue: jobs.Queue, course_id: int) -> None:
    """The rendering job calls this before it looks for stale diplomas: a request from now on queues
    another job."""
    await jobs.start_round(queue, _job_base(course_id))


async def request_render_of_courses(queue: jobs.Queue, course_ids: Sequence[int]) -> None:
    """`request_render` for each course (a change that alters the diplomas of several)."""
    for course_id in course_ids:
        await request_render(queue, course_id)


async def stale(session: AsyncSession, course_id: int, after: int, limit: int = CHUNK) -> list[DiplomaRow]:
    """Valid certificates of the course (ids above `after`, ascending) whose stored diploma is missing
    or no longer says what it would print now."""
    return await repository.stale(session, course_id, after, limit)


def object_key(course_id: int, certificate_id: int, digest: str) -> str:
    """Where a diploma rendered from `digest` is kept (a new digest, a new object: a link handed out
    for the previous one never serves a changed diploma)."""
    return f"{prefix(course_id)}{certificate_id}/{digest}.pdf"


async def store_rendered(session: AsyncSession, rendered: Sequence[tuple[int, str, str, int]]) -> list[str]:
    """Record rendered diplomas (certificate id, digest, object key, bytes), each only if the certificate
    is still valid and the digest still what it would print (a change made meanwhile wins: the diploma
    stays stale and is rendered again). Commits; returns the keys of replaced objects, to delete, and
    of the rendered objects that were not recorded."""
    if not rendered:
        return []
    garbage = []
    for stored in await repository.record_rendered(session, rendered):
        if not stored.recorded:
            garbage.append(stored.key)
        elif stored.old_key is not None and stored.old_key != stored.key:
            garbage.append(stored.old_key)
    await session.commit()
    return garbage


def prefix(course_id: int) -> str:
    """Where the course's diplomas are kept (`object_key`)."""
    return f"diplomas/{course_id}/"


def _certificate_of(key: str) -> int | None:
    """The certificate id in an `object_key` (None for an object not named that way)."""
    parts = key.split("/")
    return int(parts[2]) if len(parts) == 4 and parts[2].isascii() and parts[2].isdigit() else None


async def sweep(session: AsyncSession, store: ObjectStore, course_id: int) -> int:
    """Delete the course's diploma objects no certificate points to any more (a certificate a generation
    took away, or removed with its assessment; a replaced diploma whose deletion failed); never the
    object of a current certificate, nor one a rendering job may still record (younger than a
    rendering job can run). One listing page and one query at a time; returns how many went."""
    gone = 0
    before = clock.now() - timedelta(seconds=RENDER_SECONDS)
    async for page in store.list_pages(prefix(course_id)):
        objects = [(key, _certificate_of(key), modified) for key, modified in page]
        garbage = await repository.unreferenced(session, course_id, objects, before)
        await session.commit()  # no transaction held open while the store works
        for key in garbage:
            await store.delete(key)
        gone += len(garbage)
    return gone


# --- the ZIP of diplomas (report kind certificates_zip) ---------------------------------------------


async def count(session: AsyncSession, selection: Selection) -> int:
    """How many valid certificates the selection (certificates.select) holds."""
    return await repository.count_valid(session, selection)


async def chunks(session: AsyncSession, selection: Selection, size: int = CHUNK) -> AsyncIterator[list[DiplomaRow]]:
    """The diploma rows of the selection's valid certificates, chunk by chunk in certificate order."""
    async for rows in repository.valid_chunks(session, selection, size):
        yield rows


# --- links --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiplomaLink:
    """A diploma asked for: `ready`, with a link minted now (never stored), or `rendering` (the worker is drawing
    it: ask again after `retry_after` seconds)."""

    status: Literal["ready", "rendering"]
    code: str
    file_name: str | None = None
    bytes: int | None = None
    download_url: str | None = None
    download_expires_at: datetime | None = None
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class MyCertificate:
    """One of a learner's valid certificates, as they see it in their list."""

    code: str
    assessment: str | None
    title: str
    type: str
    issued_at: datetime
    diploma_ready: bool


async def staff_link(
    session: AsyncSession,
    store: ObjectStore,
    queue: jobs.Queue,
    ref: CourseRef,
    learner: str,
    scope: Scope,
    actor: str,
    link_seconds: int,
) -> DiplomaLink:
    """A learner's diploma of a certification's certificate (certificates.diploma_link resolves it): a
    link minted now when the stored diploma is current, else `rendering` (the render is asked for). 404
    without such a certificate; 409 when it is revoked."""
    row = await repository.diploma_of_learner(session, ref.id, learner, scope)
    if row is None:
        raise NotFound(f"Learner {learner!r} holds no certificate of {scope.of()}.")
    if row.revoked_at is not None:
        raise Conflict(
            f"The certificate of {scope.of()} held by {learner!r} was revoked on {row.revoked_at:%Y-%m-%d}:"
            " its diploma is no longer issued. Reinstate it first."
        )
    return await _link_or_render(session, store, queue, row, actor, link_seconds)


async def my_certificates(session: AsyncSession, principal: Principal, course: str) -> list[MyCertificate]:
    """The caller's valid certificates in the course (their own user token): the course's first, then
    each assessment's in course order. Never a revoked one, nor an assessment's before the result is
    published to them."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    return [
        MyCertificate(r.code, r.assessment, title(r.title, r.language), r.type, r.issued_at, r.current)
        for r in await repository.shown_to(session, enrollment_id)
    ]


async def my_link(
    session: AsyncSession,
    store: ObjectStore,
    queue: jobs.Queue,
    principal: Principal,
    course: str,
    code: str,
    link_seconds: int,
) -> DiplomaLink:
    """The caller's diploma of their certificate `code`: a link minted now, or `rendering`. Someone
    else's certificate, a revoked one, or an assessment's whose result is not published to them, is not
    found."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    row = await repository.shown_by_code(session, enrollment_id, code.upper())
    if row is None:
        raise NotFound(f"You hold no certificate {code!r} in this course.")
    return await _link_or_render(session, store, queue, row, principal.subject, link_seconds)


def file_name(row: DiplomaRow | Mapping[str, Any]) -> str:
    """The download's file name: the course, the learner, the assessment if any and the code, each part
    after `names.safe_name` (the rule of every downloaded file's name)."""
    course_ref, learner, assessment, code = (
        (row["course_ref"], row["learner"], row["assessment"], row["code"])
        if isinstance(row, Mapping)
        else (row.course_ref, row.learner, row.assessment, row.code)
    )
    parts = ["diploma", course_ref, learner, *([assessment] if assessment else [])]
    return f"{'_'.join(names.safe_name(p) for p in parts)[:150]}_{code}.pdf"


async def _link_or_render(
    session: AsyncSession, store: ObjectStore, queue: jobs.Queue, row: DiplomaRow, actor: str, link_seconds: int
) -> DiplomaLink:
    if row.diploma_key is None or not row.current:
        await session.rollback()
        await request_render(queue, row.course_id)
        return DiplomaLink("rendering", row.code, retry_after=RETRY_AFTER)
    name = file_name(row)
    issued = clock.now()
    url = await store.presign_get(row.diploma_key, link_seconds, name)
    await audit.record(
        session,
        row.organization_id,
        row.course_id,
        actor,
        "diploma.link_issued",
        learner=row.learner,
        assessment=row.assessment,
        new={"code": row.code, "file_name": name, "valid_seconds": link_seconds},
    )
    await session.commit()
    return DiplomaLink(
        "ready",
        row.code,
        file_name=name,
        bytes=row.diploma_bytes,
        download_url=url,
        download_expires_at=issued + timedelta(seconds=link_seconds),
    )
