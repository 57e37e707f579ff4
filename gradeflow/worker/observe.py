"""Every job runs with its id in the log context and is counted and timed by kind and outcome."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from arq import Retry
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function

from gradeflow.core import context, metrics
from gradeflow.jobs import WorkerContext

# What a task returns when it ended without raising but did not do its work.
_NAMED_OUTCOMES = {"failed", "cancelled"}

J = TypeVar("J", Function, CronJob)


def observed(job: J) -> J:
    """The same job, its coroutine wrapped to count and time it by its outcome."""
    coroutine: Callable[..., Awaitable[Any]] = job.coroutine
    kind = job.name.removeprefix("cron:")

    @functools.wraps(coroutine)
    async def run(ctx: WorkerContext, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await coroutine(ctx, *args, **kwargs)
            outcome = result if result in _NAMED_OUTCOMES else "ok"
            return result
        except Retry:
            outcome = "retry"
            raise
        except asyncio.CancelledError:
            outcome = "aborted"
            raise
        finally:
            metrics.JOBS.labels(kind=kind, outcome=outcome).inc()
            metrics.JOB_SECONDS.labels(kind=kind, outcome=outcome).observe(time.perf_counter() - started)

    return dataclasses.replace(job, coroutine=cast(WorkerCoroutine, run))  # arq types ctx as a plain dict


async def job_started(ctx: WorkerContext) -> None:
    """arq's `on_job_start`: awaited in the job's own task before arq logs the job's start, so that
    line, every line of the job and arq's line about how it ended carry the job id."""
    context.job_id.set(ctx.get("job_id"))
