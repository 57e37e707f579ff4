"""The API <-> worker contract: job names and ids, the worker's context, the Redis settings, and the
enqueue helper."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from gradeflow.core.settings import Settings
    from gradeflow.storage.s3 import ObjectStore

# What the API holds to enqueue jobs.
Queue = ArqRedis


class JobName(StrEnum):
    """The worker's jobs, by the name the worker registers them under (the queue carries it)."""

    PURGE_IDEMPOTENCY = "purge_idempotency_records"
    RECOMPUTE_GRADES = "recompute_course_grades"
    FOLLOW_UP = "follow_up_score_changes"  # jobs already queued carry this name: renaming it would strand them
    SEND_NOTIFICATIONS = "send_notifications"
    RUN_REPORT = "run_report"
    RUN_IMPORT = "run_score_import"
    RESCORE_ITEM = "rescore_item"
    RENDER_DIPLOMAS = "render_diplomas"
    SEND_MAILING = "send_candidate_mailing"
    APPLY_LATE_POLICY = "apply_late_policy"


# Each job's id starts with its prefix and the id of the record (or course) it works on, so a job
# enqueued twice for the same record (by the API, then by the sweep that thought it lost) runs once.
_PREFIXES: dict[JobName, str] = {
    JobName.PURGE_IDEMPOTENCY: "purge",
    JobName.RECOMPUTE_GRADES: "recompute",
    JobName.FOLLOW_UP: "follow-up",
    JobName.SEND_NOTIFICATIONS: "notify",
    JobName.RUN_REPORT: "report",
    JobName.RUN_IMPORT: "import",
    JobName.RESCORE_ITEM: "rescore",
    JobName.RENDER_DIPLOMAS: "render-diplomas",
    JobName.SEND_MAILING: "mailing",
    JobName.APPLY_LATE_POLICY: "late",
}


def job_id(name: JobName, key: int | str, suffix: int | str | None = None) -> str:
    """The id of `name`'s job for record `key`: `<prefix>-<key>`, or `<prefix>-<key>-<suffix>` for a
    new job of the same record that must not be deduplicated against the old one (a retry's number,
    `lost_at()` of a job whose worker died: arq keeps a dead job's id for hours)."""
    base = f"{_PREFIXES[name]}-{key}"
    return base if suffix is None else f"{base}-{suffix}"


def lost_at(moment: datetime) -> str:
    """The suffix of a new job id for a job found lost at `moment` (whole seconds)."""
    return f"{moment.timestamp():.0f}"


def late_application_id(course_id: int, requested_at: datetime) -> str:
    """The job id of one request to apply a course's late policy (a newer request gets a new id; the same one
    enqueued twice, by the API and by the sweep that finds it lost, is deduplicated)."""
    return job_id(JobName.APPLY_LATE_POLICY, course_id, f"{requested_at.timestamp():.6f}")


class WorkerContext(TypedDict):
    """What a worker task gets as `ctx`: what the worker's start-up puts there (gradeflow/worker/main.py),
    and what arq adds (its Redis pool, and the running job's id and try)."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    resources: AsyncExitStack
    store: ObjectStore
    redis: ArqRedis
    job_id: NotRequired[str]
    job_try: NotRequired[int]
    enqueue_time: NotRequired[datetime]
    score: NotRequired[int]


def redis_settings(url: str) -> RedisSettings:
    if url.startswith("unix://"):
        path, _, db = url[len("unix://") :].partition("?db=")
        return RedisSettings(unix_socket_path=path, database=int(db or 0))
    return RedisSettings.from_dsn(url)


async def connect(url: str) -> ArqRedis:
    return await create_pool(redis_settings(url))


async def enqueue(redis: ArqRedis, name: JobName, job_id: str, *args: Any, defer_by: float | None = None) -> bool:
    """Enqueue a job carrying ids only (after `defer_by` seconds); `job_id` deduplicates. False when it
    was already queued."""
    job = await redis.enqueue_job(str(name), *args, _job_id=job_id, _defer_by=defer_by)
    return job is not None


# How long a job's round number is kept after its last move (far longer than any job runs).
ROUND_TTL_SECONDS = 24 * 3600


def _round_key(base_id: str) -> str:
    return f"gradeflow:round:{base_id}"


async def request_round(redis: ArqRedis, name: JobName, base_id: str, *args: Any) -> bool:
    """Enqueue a job that does whatever is due when it runs (rendering what is stale, say), one waiting
    per `base_id` at a time, without losing a request made while one RUNS (a plain job id would be
    deduplicated against the running job, which may already have looked): the job id carries a round
    number that the job moves on (`start_round`) before it reads anything, so a request made after
    that gets a new id, and one made before is seen by the job that is starting."""
    current = int(await redis.get(_round_key(base_id)) or 0)
    return await enqueue(redis, name, f"{base_id}-{current}", *args)


async def start_round(redis: ArqRedis, base_id: str) -> None:
    """Called by a job enqueued by `request_round` before it reads what is due."""
    key = _round_key(base_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, ROUND_TTL_SECONDS)
        await pipe.execute()


async def queue_depth(redis: ArqRedis) -> int:
    """Jobs waiting in the queue (deferred ones included)."""
    return int(await redis.zcard(default_queue_name))
