"""The API <-> worker contract: job names, the Redis settings, and the enqueue helper."""

from __future__ import annotations

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


async def queue_depth(redis: ArqRedis) -> int:
    """Jobs waiting in the queue (deferred ones included)."""
    return int(await redis.zcard(default_queue_name))
