"""The API <-> worker contract: job names, the Redis settings, and the enqueue helper."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name

# What the API holds to enqueue jobs.
Queue = ArqRedis

PURGE_IDEMPOTENCY = "purge_idempotency_records"
RECOMPUTE_GRADES = "recompute_course_grades"
FOLLOW_UP = "follow_up_score_changes"
SEND_NOTIFICATIONS = "send_notifications"
RUN_REPORT = "run_report"
RUN_IMPORT = "run_score_import"
RESCORE_ITEM = "rescore_item"
RENDER_DIPLOMAS = "render_diplomas"
SEND_MAILING = "send_candidate_mailing"
APPLY_LATE_POLICY = "apply_late_policy"


def late_application_id(course_id: int, requested_at: datetime) -> str:
    """The job id of one request to apply a course's late policy (a newer request gets a new id; the same one
    enqueued twice, by the API and by the sweep that finds it lost, is deduplicated)."""
    return f"late-{course_id}-{requested_at.timestamp():.6f}"


def redis_settings(url: str) -> RedisSettings:
    if url.startswith("unix://"):
        path, _, db = url[len("unix://") :].partition("?db=")
        return RedisSettings(unix_socket_path=path, database=int(db or 0))
    return RedisSettings.from_dsn(url)


async def connect(url: str) -> ArqRedis:
    return await create_pool(redis_settings(url))


async def enqueue(redis: ArqRedis, name: str, job_id: str, *args: Any) -> bool:
    """Enqueue a job carrying ids only; `job_id` deduplicates. False when it was already queued."""
    job = await redis.enqueue_job(name, *args, _job_id=job_id)
    return job is not None


# How long a job's round number is kept after its last move (far longer than any job runs).
ROUND_TTL_SECONDS = 24 * 3600


def _round_key(base_id: str) -> str:
    return f"gradeflow:round:{base_id}"


async def request_round(redis: ArqRedis, name: str, base_id: str, *args: Any) -> bool:
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
