"""Diploma rendering: every valid certificate of a course gets a stored diploma that says what it would
print now.

`render_diplomas` renders, chunk by chunk, the certificates whose stored diploma is missing or stale
(its digest differs from what the certificate's diploma would print now), uploads each under a key
naming its digest, and records it only if that digest is still the current one (a change made
meanwhile wins, and is rendered on the next pass). Replaced objects are deleted, and at the end the
course's objects no certificate points to any more (`diplomas.sweep`). It can run twice, or at the
same time as itself: what it records is checked against the database, never assumed.

A change made while it runs is rendered: the job moves its round on (`diplomas.render_started`)
before it looks for stale diplomas, so whoever asks after that (a link, a generation, a changed
certification or image) queues another job instead of being deduplicated against this one. Only one
job renders a course at a time (`diplomas.render_lock`): the next one waits, deferred, without moving
the round on, so requests made meanwhile join it instead of each starting a render of its own.
"""

from __future__ import annotations

import asyncio
import logging

from arq import Retry

from gradeflow.certificates.service import diplomas
from gradeflow.certificates.service.diplomas import Diploma
from gradeflow.certificates.writers.diplomas import diploma
from gradeflow.jobs import WorkerContext
from gradeflow.reports.builders import Drawing
from gradeflow.storage.s3 import ObjectStore

log = logging.getLogger(__name__)

# Fewer stale diplomas than this in a chunk are drawn on a thread: starting a process per core (each
# loading the fonts) costs more than drawing a few.
PROCESSES_FROM = 8
# Uploads under way at once.
UPLOADS = 8
# Passes over the course: a pass that rendered something is followed by another, for diplomas that
# changed while it ran; this many at most (a change also queues a job of its own, see above).
PASSES = 3
# A job finding another rendering the course tries again after this long (as often as it must:
# MAX_TRIES, far more than a render of the largest course lasts).
RETRY_SECONDS = 3
MAX_TRIES = 2000


async def render_diplomas(ctx: WorkerContext, course_id: int) -> str:
    """Render the course's stale diplomas of valid certificates, then delete the course's diploma files
    no certificate points to (idempotent)."""
    async with diplomas.render_lock(ctx["sessionmaker"], course_id) as mine:
        if not mine:  # another job renders the course: this one runs after it (the round is not moved on)
            raise Retry(defer=RETRY_SECONDS)
        await diplomas.render_started(ctx["redis"], course_id)
        return await _render(ctx, course_id)


async def _render(ctx: WorkerContext, course_id: int) -> str:
    sessionmaker, store = ctx["sessionmaker"], ctx["store"]
    images: dict[str, bytes] = {}
    drawing: Drawing | None = None
    rendered = recorded = 0
    try:
        for _ in range(PASSES):
            after, this_pass = 0, 0
            while True:
                async with sessionmaker() as session:
                    rows = await diplomas.stale(session, course_id, after)
                if not rows:
                    break
                after = rows[-1].id
                await diplomas.load_images(store, rows, images)
                records = [diplomas.diploma_of(r, images) for r in rows]
                if len(records) >= PROCESSES_FROM and drawing is None:
                    drawing = Drawing(diploma)
                drawn = await _draw(drawing if len(records) >= PROCESSES_FROM else None, records)
                done = await _upload(store, course_id, drawn)
                async with sessionmaker() as session:
                    garbage = await diplomas.store_rendered(session, done)
                for key in garbage:
                    await store.delete(key)
                rendered += len(done)
                recorded += len(done) - sum(1 for _, _, key, _ in done if key in garbage)
                this_pass += len(done)
            if this_pass == 0:
                break
    finally:
        if drawing is not None:
            drawing.__exit__(None, None, None)
    async with sessionmaker() as session:
        swept = await diplomas.sweep(session, store, course_id)
    log.info("course %s: %s diplomas rendered, %s recorded, %s old files deleted", course_id, rendered, recorded, swept)
    return f"{recorded} diplomas rendered"


async def _draw(drawing: Drawing | None, records: list[Diploma]) -> list[tuple[Diploma, bytes]]:
    if drawing is None:
        return [(r, await asyncio.to_thread(diploma, r)) for r in records]
    return [(r, content) async for r, content in drawing.each(records)]


async def _upload(
    store: ObjectStore, course_id: int, drawn: list[tuple[Diploma, bytes]]
) -> list[tuple[int, str, str, int]]:
    """Upload each diploma under its digest's key; (certificate id, digest, key, bytes) of each."""
    gate = asyncio.Semaphore(UPLOADS)

    async def one(d: Diploma, content: bytes) -> tuple[int, str, str, int]:
        key = diplomas.object_key(course_id, d.certificate_id, d.digest)
        async with gate:
            await store.put_bytes(key, content, "application/pdf")
        return d.certificate_id, d.digest, key, len(content)

    return list(await asyncio.gather(*(one(d, content) for d, content in drawn)))
