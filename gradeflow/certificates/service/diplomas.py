"""Diplomas: what a certificate's diploma prints, whether the stored PDF still says it, and links to it.

One SQL source (`_DIPLOMAS`) says what each certificate's diploma prints: its certification's title,
text, language, signatory and images (the default diploma when the course or assessment has no
certification row), the course and assessment titles, the learner's name (the reports' rule), the
code and the issue date; and `digest`, a hash of all of it computed in SQL, so that a listing tells a
stale diploma from a current one set-based (`diploma_digest` is the digest it was rendered from).

The worker renders stale diplomas of valid (not revoked) certificates (`render_diplomas`), stores them
in object storage and records the digest; a link is handed out only for a current one. A revoked
certificate's diploma is never issued: staff are told it is revoked (409), the learner does not see it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.service.access import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core import clock, names
from gradeflow.core.errors import Conflict, NotFound
from gradeflow.courses.service import enrollments
from gradeflow.reports.labels import labels
from gradeflow.storage.s3 import ObjectStore

if TYPE_CHECKING:  # certifications and certificates ask for renders here
    from gradeflow.certificates.service.certificates import Selection
    from gradeflow.certificates.service.certifications import Scope

# Part of every digest: raise it when the layout changes, and every stored diploma is rendered again.
LAYOUT = 1
# How long a client waits before asking again for a diploma being rendered (Retry-After, seconds).
RETRY_AFTER = 5
# Certificates rendered per pass of `render_diplomas`, and listed per chunk of the ZIP.
CHUNK = 500

# One row per certificate `k` (aliases: `e` enrollment, `c` course, `a` its assessment or none, `cf` its
# certification or none, `li`/`si` the logo and signature images, `x` the name and language printed).
# The name is gradeflow.core.names' rule; the date is the UTC day the certificate was issued
# (a date, so the digest reads the same in every session's time zone).
_DIPLOMAS = """
    SELECT k.id, k.course_id, k.enrollment_id, k.code, k.type, k.created_at AS issued_at, k.revoked_at,
           k.diploma_key, k.diploma_digest, k.diploma_bytes,
           e.external_id AS learner, x.name, c.external_id AS course_ref, c.organization_id,
           c.title AS course, a.external_id AS assessment, a.title AS assessment_title,
           cf.title, cf.body, x.language, cf.signatory_name, cf.signatory_title,
           li.object_key AS logo_key, li.sha256 AS logo_sha256, li.content_type AS logo_type,
           si.object_key AS signature_key, si.sha256 AS signature_sha256, si.content_type AS signature_type,
           md5(jsonb_build_array(
             {layout}, x.name, c.title, a.title, cf.title, cf.body, x.language, cf.signatory_name,
             cf.signatory_title, li.sha256, si.sha256, k.code, x.issued_on, k.type
           )::text) AS digest
    FROM certificates k
    JOIN enrollments e ON e.id = k.enrollment_id
    JOIN courses c ON c.id = k.course_id
    LEFT JOIN assessments a ON a.id = k.assessment_id
    LEFT JOIN certifications cf ON cf.course_id = k.course_id AND cf.assessment_id IS NOT DISTINCT FROM k.assessment_id
    LEFT JOIN certificate_images li ON li.organization_id = c.organization_id AND li.name = cf.logo_image
    LEFT JOIN certificate_images si ON si.organization_id = c.organization_id AND si.name = cf.signature_image
    CROSS JOIN LATERAL (
      SELECT {name} AS name,
             coalesce(cf.language, 'en') AS language,
             CAST(k.created_at AT TIME ZONE 'UTC' AS date) AS issued_on
    ) x
"""


def _diplomas(where: str) -> str:
    return _DIPLOMAS.format(layout=LAYOUT, name=names.learner_name_sql("e")) + " WHERE " + where


def shown_to_learner(k: str = "k") -> str:
    """SQL: the learner may see certificate `k` (shown on their list, its diploma handed out, sent to
    them) - valid, and a course certificate (issued by a generation, the release, as Open edX's) or an
    assessment's whose result is published to them (a certificate never tells a learner a result before
    the result itself does)."""
    return f"""({k}.revoked_at IS NULL AND ({k}.assessment_id IS NULL OR EXISTS (
      SELECT 1 FROM published_results pr WHERE pr.enrollment_id = {k}.enrollment_id
        AND pr.assessment_id = {k}.assessment_id)))"""  # noqa: S608  (an alias)


SHOWN_TO_LEARNER = shown_to_learner()


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


def diploma_of(row: Any, images: dict[str, bytes]) -> Diploma:
    """A diploma row (from `stale`, `chunks`) as its record, with the images' bytes (by sha256)."""

    def image(prefix: str) -> Image | None:
        sha = row[f"{prefix}_sha256"]
        return None if sha is None else Image(sha, row[f"{prefix}_type"], images[sha])

    return Diploma(
        certificate_id=row["id"],
        learner=row["learner"],
        name=row["name"],
        code=row["code"],
        issued_on=row["issued_at"].astimezone(UTC).date(),
        course=row["course"],
        assessment=row["assessment_title"],
        title=title(row["title"], row["language"]),
        body=row["body"],
        language=row["language"],
        signatory_name=row["signatory_name"],
        signatory_title=row["signatory_title"],
        logo=image("logo"),
        signature=image("signature"),
        digest=row["digest"],
    )


def title(certification_title: str | None, language: str) -> str:
    """What a certificate is called - on its diploma, in the learner's list, in the e-mail sending it:
    its certification's title, else (a course without a certification) the label catalogue's default
    title in the certification's language."""
    return certification_title or labels(language)["diploma.default_title"]


async def load_images(store: ObjectStore, rows: Sequence[Any], images: dict[str, bytes]) -> None:
    """Read into `images` (by sha256) the images `rows` print that it does not hold yet: each image
    once per job, however many diplomas print it."""
    for prefix in ("logo", "signature"):
        for row in rows:
            sha = row[f"{prefix}_sha256"]
            if sha is not None and sha not in images:
                images[sha] = await store.get_bytes(row[f"{prefix}_key"])


# --- the worker's side: rendering stale diplomas ----------------------------------------------------


# arq stops a rendering job after this long (the worker's setting reads it): an object uploaded by a
# job still running is younger than this, so the sweep leaves unrecorded objects alone until then.
RENDER_SECONDS = 3600


def _job_base(course_id: int) -> str:
    return f"render-diplomas-{course_id}"


async def request_render(queue: jobs.Queue, course_id: int) -> None:
    """Have the worker render the course's stale diplomas: the one way every caller asks (a link to a
    stale diploma, a generation, a changed certification or image). One job per course waits at a
    time (it renders whatever is stale when it runs, so asking twice costs nothing), and a request
    made while one runs is never lost (jobs.request_round: it gets a job of its own)."""
    await jobs.request_round(queue, jobs.RENDER_DIPLOMAS, _job_base(course_id), course_id)


# One render of a course at a time (two would draw the same stale diplomas twice over): a session-level
# advisory lock, held on its own connection for the job and gone with it if the worker dies.
_TRY_RENDER_LOCK = text("SELECT pg_try_advisory_lock(hashtextextended('render_diplomas', :c))")
_RENDER_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended('render_diplomas', :c))")


@asynccontextmanager
async def render_lock(sessionmaker: async_sessionmaker[AsyncSession], course_id: int) -> AsyncIterator[bool]:
    """Whether this job may render the course now (False: another job is rendering it; try later). The
    session keeps its connection, and so the lock, until the block ends."""
    async with sessionmaker() as session:
        held = bool(await session.scalar(_TRY_RENDER_LOCK, {"c": course_id}))
        try:
            yield held
        finally:
            if held:
                await session.execute(_RENDER_UNLOCK, {"c": course_id})


async def render_started(queue: jobs.Queue, course_id: int) -> None:
    """The rendering job calls this before it looks for stale diplomas: a request from now on queues
    another job."""
    await jobs.start_round(queue, _job_base(course_id))


async def request_render_of_courses(queue: jobs.Queue, course_ids: Sequence[int]) -> None:
    """`request_render` for each course (a change that alters the diplomas of several)."""
    for course_id in course_ids:
        await request_render(queue, course_id)


async def stale(session: AsyncSession, course_id: int, after: int, limit: int = CHUNK) -> list[Any]:
    """Valid certificates of the course (ids above `after`, ascending) whose stored diploma is missing
    or no longer says what it would print now."""
    sql = _diplomas("k.course_id = :c AND k.id > :after AND k.revoked_at IS NULL") + " ORDER BY k.id"
    rows = await session.execute(
        text(f"SELECT * FROM ({sql}) d WHERE d.diploma_digest IS DISTINCT FROM d.digest LIMIT :n"),  # noqa: S608
        {"c": course_id, "after": after, "n": limit},
    )
    return list(rows.mappings())


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
    ids = [r[0] for r in rendered]
    rows = await session.execute(
        text(
            f"""
            WITH new AS (
              SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:digests AS text[]), CAST(:keys AS text[]),
                                   CAST(:sizes AS int[])) AS n(id, digest, key, size)
            ),
            current AS ({_diplomas("k.id = ANY(CAST(:ids AS bigint[])) AND k.revoked_at IS NULL")}),
            locked AS (SELECT k.id, k.diploma_key FROM certificates k JOIN new USING (id) FOR UPDATE OF k),
            recorded AS (
              UPDATE certificates k SET diploma_key = new.key, diploma_digest = new.digest, diploma_bytes = new.size
              FROM new JOIN current ON current.id = new.id AND current.digest = new.digest
              WHERE k.id = new.id
              RETURNING k.id
            )
            SELECT locked.diploma_key AS old_key, new.key, recorded.id IS NOT NULL AS recorded
            FROM new LEFT JOIN locked USING (id) LEFT JOIN recorded USING (id)
            """  # noqa: S608  (constant SQL; a certificate gone meanwhile: its new object is garbage too)
        ),
        {
            "ids": ids,
            "digests": [r[1] for r in rendered],
            "keys": [r[2] for r in rendered],
            "sizes": [r[3] for r in rendered],
        },
    )
    garbage = []
    for old_key, key, recorded in rows:
        if not recorded:
            garbage.append(key)
        elif old_key is not None and old_key != key:
            garbage.append(old_key)
    await session.commit()
    return garbage


def prefix(course_id: int) -> str:
    """Where the course's diplomas are kept (`object_key`)."""
    return f"diplomas/{course_id}/"


def _certificate_of(key: str) -> int | None:
    """The certificate id in an `object_key` (None for an object not named that way)."""
    parts = key.split("/")
    return int(parts[2]) if len(parts) == 4 and parts[2].isascii() and parts[2].isdigit() else None


# Of a page of the course's objects (key, certificate id, last modified): those no certificate points
# to whose certificate is gone (it never comes back: ids are not reused), or that are older than a
# rendering job can run (younger ones may be a running job's, uploaded but not recorded yet).
_GARBAGE = text(
    """
    WITH o AS (
      SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:ids AS bigint[]), CAST(:modified AS timestamptz[]))
        AS o(key, certificate_id, modified)
    ),
    referenced AS (
      SELECT diploma_key FROM certificates WHERE course_id = :c AND diploma_key = ANY(CAST(:keys AS text[]))
    )
    SELECT o.key FROM o
    LEFT JOIN referenced r ON r.diploma_key = o.key
    LEFT JOIN certificates k ON k.id = o.certificate_id
    WHERE r.diploma_key IS NULL
      AND (o.modified < :before OR (o.certificate_id IS NOT NULL AND k.id IS NULL))
    """
)


async def sweep(session: AsyncSession, store: ObjectStore, course_id: int) -> int:
    """Delete the course's diploma objects no certificate points to any more (a certificate a generation
    took away, or removed with its assessment; a replaced diploma whose deletion failed); never the
    object of a current certificate, nor one a rendering job may still record. One listing page
    (1,000 objects) and one query at a time; returns how many went."""
    gone = 0
    before = clock.now() - timedelta(seconds=RENDER_SECONDS)
    async for page in store.list_pages(prefix(course_id)):
        keys = [key for key, _ in page]
        params = {
            "c": course_id,
            "keys": keys,
            "ids": [_certificate_of(key) for key in keys],
            "modified": [modified for _, modified in page],
            "before": before,
        }
        garbage = list(await session.scalars(_GARBAGE, params))
        await session.commit()  # no transaction held open while the store works
        for key in garbage:
            await store.delete(key)
        gone += len(garbage)
    return gone


# --- the ZIP of diplomas (report kind certificates_zip) ---------------------------------------------


async def count(session: AsyncSession, selection: Selection) -> int:
    """How many valid certificates the selection (certificates.select) holds."""
    sql = f"""
        SELECT count(*) FROM certificates k JOIN enrollments e ON e.id = k.enrollment_id
        WHERE {selection.where} AND k.revoked_at IS NULL
    """  # noqa: S608  (constant SQL)
    return int(await session.scalar(text(sql), selection.params) or 0)


async def chunks(session: AsyncSession, selection: Selection, size: int = CHUNK) -> AsyncIterator[list[Any]]:
    """The diploma rows of the selection's valid certificates, chunk by chunk in certificate order."""
    where, params = f"{selection.where} AND k.revoked_at IS NULL", selection.params
    after = 0
    while True:
        sql = _diplomas(f"{where} AND k.id > :after") + " ORDER BY k.id LIMIT :n"
        rows = list((await session.execute(text(sql), {**params, "after": after, "n": size})).mappings())
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


# --- links --------------------------------------------------------------------------------------------


async def staff_link(
    session: AsyncSession,
    store: ObjectStore,
    queue: jobs.Queue,
    ref: CourseRef,
    learner: str,
    scope: Scope,
    actor: str,
    link_seconds: int,
) -> dict[str, Any]:
    """A learner's diploma of a certification's certificate (certificates.diploma_link resolves it): a
    link minted now when the stored diploma is current, else `rendering` (the render is asked for). 404
    without such a certificate; 409 when it is revoked."""
    where = f"{scope.holds()} AND e.external_id = :l"
    row = (
        (await session.execute(text(_diplomas(where)), {"c": ref.id, "l": learner, **scope.params()}))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Learner {learner!r} holds no certificate of {scope.of()}.")
    if row["revoked_at"] is not None:
        raise Conflict(
            f"The certificate of {scope.of()} held by {learner!r} was revoked on {row['revoked_at']:%Y-%m-%d}:"
            " its diploma is no longer issued. Reinstate it first."
        )
    return await _link_or_render(session, store, queue, row, actor, link_seconds)


async def my_certificates(session: AsyncSession, principal: Principal, course: str) -> list[dict[str, Any]]:
    """The caller's valid certificates in the course (their own user token): the course's first, then
    each assessment's in course order. Never a revoked one, nor an assessment's before the result is
    published to them."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    rows = await session.execute(
        text(_diplomas(f"k.enrollment_id = :e AND {SHOWN_TO_LEARNER}") + " ORDER BY a.position NULLS FIRST, k.id"),
        {"e": enrollment_id},
    )
    return [
        {
            "code": r["code"],
            "assessment": r["assessment"],
            "title": title(r["title"], r["language"]),
            "type": r["type"],
            "issued_at": r["issued_at"],
            "diploma_ready": r["diploma_digest"] == r["digest"] and r["diploma_key"] is not None,
        }
        for r in rows.mappings()
    ]


async def my_link(
    session: AsyncSession,
    store: ObjectStore,
    queue: jobs.Queue,
    principal: Principal,
    course: str,
    code: str,
    link_seconds: int,
) -> dict[str, Any]:
    """The caller's diploma of their certificate `code`: a link minted now, or `rendering`. Someone
    else's certificate, a revoked one, or an assessment's whose result is not published to them, is not
    found."""
    enrollment_id = await enrollments.learner_enrollment(session, principal, course)
    row = (
        (
            await session.execute(
                text(_diplomas(f"k.enrollment_id = :e AND k.code = :code AND {SHOWN_TO_LEARNER}")),
                {"e": enrollment_id, "code": code.upper()},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"You hold no certificate {code!r} in this course.")
    return await _link_or_render(session, store, queue, row, principal.subject, link_seconds)


def file_name(row: Any) -> str:
    """The download's file name: the course, the learner, the assessment if any and the code, each part
    after `names.safe_name` (the rule of every downloaded file's name)."""
    parts = ["diploma", row["course_ref"], row["learner"], *([row["assessment"]] if row["assessment"] else [])]
    return f"{'_'.join(names.safe_name(p) for p in parts)[:150]}_{row['code']}.pdf"


async def _link_or_render(
    session: AsyncSession, store: ObjectStore, queue: jobs.Queue, row: Any, actor: str, link_seconds: int
) -> dict[str, Any]:
    if row["diploma_key"] is None or row["diploma_digest"] != row["digest"]:
        await session.rollback()
        await request_render(queue, row["course_id"])
        return {"status": "rendering", "code": row["code"], "retry_after": RETRY_AFTER}
    name = file_name(row)
    issued = clock.now()
    url = await store.presign_get(row["diploma_key"], link_seconds, name)
    await audit.record(
        session,
        row["organization_id"],
        row["course_id"],
        actor,
        "diploma.link_issued",
        learner=row["learner"],
        assessment=row["assessment"],
        new={"code": row["code"], "file_name": name, "valid_seconds": link_seconds},
    )
    await session.commit()
    return {
        "status": "ready",
        "code": row["code"],
        "file_name": name,
        "bytes": row["diploma_bytes"],
        "download_url": url,
        "download_expires_at": issued + timedelta(seconds=link_seconds),
    }
