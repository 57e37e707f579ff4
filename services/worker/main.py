"""arq worker: `WorkerSettings` lists the jobs, the crons and the process's resources."""

from __future__ import annotations

from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings

from services.worker.tasks import maintenance
from shared import jobs
from shared.db.engine import make_engine, make_sessionmaker
from shared.settings import get_settings


async def startup(ctx: dict[str, Any]) -> None:
    settings = ctx.setdefault("settings", get_settings())  # tests pass their own
    ctx["engine"] = make_engine(settings)
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["engine"].dispose()


class WorkerSettings:
    functions: ClassVar[list[Any]] = [maintenance.purge_idempotency_records]
    cron_jobs: ClassVar[list[Any]] = [
        cron(maintenance.purge_idempotency_records, minute={7}, unique=True, run_at_startup=True)
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings: RedisSettings = jobs.redis_settings(get_settings().redis_url)
    allow_abort_jobs = True
    max_tries = 5
