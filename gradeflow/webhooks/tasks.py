"""Webhook delivery (cron every 5 s): send what is due, retry on the schedule, record every attempt."""

from __future__ import annotations

from gradeflow.jobs import WorkerContext
from gradeflow.notify import webhooks


async def deliver_webhooks(ctx: WorkerContext) -> int:
    return await webhooks.deliver_due(ctx["sessionmaker"], ctx["settings"].webhooks)
