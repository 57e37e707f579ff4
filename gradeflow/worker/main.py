"""arq worker: `WorkerSettings` lists the jobs, the crons and the process's resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, ClassVar, cast

from arq import cron, func
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function
from prometheus_client import start_http_server

from gradeflow import jobs
from gradeflow.certificates import tasks as diplomas
from gradeflow.certificates.service import diplomas as diplomas_service
from gradeflow.core.heap import freeze_startup_objects, limit_malloc_arenas
from gradeflow.core.settings import get_settings
from gradeflow.db.engine import make_engine, make_sessionmaker
from gradeflow.deadlines import tasks as late
from gradeflow.grades import tasks as grades
from gradeflow.jobs import JobName, WorkerContext
from gradeflow.mailings import tasks as mailings
from gradeflow.publishing import tasks as publishing
from gradeflow.reports import tasks as reports
from gradeflow.reports.labels import LabelCatalogue
from gradeflow.reports.service import reports as reports_service
from gradeflow.scores import tasks as imports
from gradeflow.storage.s3 import open_store
from gradeflow.system import tasks as maintenance
from gradeflow.webhooks import tasks as webhooks
from gradeflow.worker.observe import job_started, observed


async def startup(ctx: WorkerContext) -> None:
    settings = ctx.setdefault("settings", get_settings())  # tests pass their own
    limit_malloc_arenas()
    LabelCatalogue.load(settings.reports.labels_dir)  # a mistake in a school's catalogue stops start-up, naming it
    ctx["engine"] = make_engine(settings)
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])
    ctx["resources"] = resources = AsyncExitStack()
    ctx["store"] = await resources.enter_async_context(open_store(settings.s3))
    if settings.worker_metrics_port:
        server, _ = start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        resources.callback(server.server_close)  # last: the listening socket
        resources.callback(server.shutdown)  # first: stop serving
    freeze_startup_objects()


async def shutdown(ctx: WorkerContext) -> None:
    await ctx["resources"].aclose()
    await ctx["engine"].dispose()


EVERY_5S, EVERY_10S = set(range(0, 60, 5)), set(range(0, 60, 10))  # cron seconds

Task = Callable[..., Awaitable[Any]]  # a task: `async def task(ctx: WorkerContext, *ids) -> str | int | None`


def task(coroutine: Task, name: JobName, **options: Any) -> Function:
    """arq's `func` for a task taking the typed `WorkerContext` (arq types `ctx` as a plain dict)."""
    return func(cast(WorkerCoroutine, coroutine), name=name.value, **options)


def cron_task(coroutine: Task, **options: Any) -> CronJob:
    """arq's `cron` for a task taking the typed `WorkerContext`."""
    return cron(cast(WorkerCoroutine, coroutine), **options)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [
        task(maintenance.purge_idempotency_records, JobName.PURGE_IDEMPOTENCY),
        # No kept result: the record in PostgreSQL is the result, and a later re-enqueue must not be deduplicated.
        task(grades.recompute_course_grades, JobName.RECOMPUTE_GRADES, timeout=3600, keep_result=0),
        task(grades.follow_up_course, JobName.FOLLOW_UP, timeout=3600, keep_result=0),
        task(publishing.send_notifications, JobName.SEND_NOTIFICATIONS, timeout=3600, keep_result=0),
        task(mailings.send_candidate_mailing, JobName.SEND_MAILING, timeout=3 * 3600, keep_result=0),
        task(
            reports.run_report,
            JobName.RUN_REPORT,
            timeout=3 * 3600,
            keep_result=0,
            max_tries=reports_service.MAX_TRIES + 1,
        ),
        task(imports.run_score_import, JobName.RUN_IMPORT, timeout=1800, keep_result=0),
        task(
            diplomas.render_diplomas,
            JobName.RENDER_DIPLOMAS,
            timeout=diplomas_service.RENDER_SECONDS,
            keep_result=0,
            max_tries=diplomas.MAX_TRIES,
        ),
        task(imports.rescore_item, JobName.RESCORE_ITEM, timeout=3600, keep_result=0),
        task(late.apply_late_policy, JobName.APPLY_LATE_POLICY, timeout=3600, keep_result=0),
    ]
    cron_jobs: ClassVar[list[CronJob]] = [
        cron_task(maintenance.purge_idempotency_records, minute={7}, unique=True, run_at_startup=True),
        # No kept result: a cron's job id is its slot, and a restart within the slot must run it again.
        cron_task(maintenance.sweep_jobs, unique=True, run_at_startup=True, keep_result=0),
        cron_task(reports.expire_reports, minute={17}, unique=True, run_at_startup=True, keep_result=0),
        cron_task(mailings.expire_documents, minute={27}, unique=True, run_at_startup=True, keep_result=0),
        cron_task(
            publishing.publish_due, second=set(range(0, 60, 10)), unique=True, run_at_startup=True, keep_result=0
        ),
        cron_task(
            webhooks.deliver_webhooks, second=set(range(0, 60, 5)), unique=True, run_at_startup=True, keep_result=0
        ),
        cron_task(late.mark_missing, second={40}, unique=True, run_at_startup=True, keep_result=0),
    ]
    functions = [observed(f) for f in functions]
    cron_jobs = [observed(c) for c in cron_jobs]
    on_startup = startup
    on_job_start = job_started
    on_shutdown = shutdown
    redis_settings: RedisSettings = jobs.redis_settings(get_settings().redis_url)
    allow_abort_jobs = True
    max_tries = 5
