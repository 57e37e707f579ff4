"""The worker runs in-process against the real Redis and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from arq.worker import Worker
from sqlalchemy import func, select, update

from services.worker.main import WorkerSettings, shutdown, startup
from shared import clock, jobs
from shared.db.models import IdempotencyRecord
from shared.settings import Settings
from tests.conftest import Tenant
from tests.helpers import assessment, course, enroll


async def test_expired_idempotency_records_are_purged(tenant: Tenant, settings: Settings, sessionmaker: Any) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    await enroll(tenant, "c1", "l1")
    for key in ("old", "new"):
        body = {"scores": [{"assessment": "hw1", "learner": "l1", "earned": 1}]}
        assert (
            await tenant.post("/v1/courses/c1/scores:batch", json=body, headers={"Idempotency-Key": key})
        ).status_code == 200
    async with sessionmaker() as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.organization_id == tenant.id, IdempotencyRecord.key == "old")
            .values(created_at=clock.now() - timedelta(hours=25))
        )
        await session.commit()

    redis = await jobs.connect(settings.redis_url)
    try:
        await redis.flushdb()
        assert await jobs.enqueue(redis, jobs.PURGE_IDEMPOTENCY, "purge-test")
        assert not await jobs.enqueue(redis, jobs.PURGE_IDEMPOTENCY, "purge-test")  # deduplicated by id

        worker = Worker(
            functions=WorkerSettings.functions,
            redis_pool=redis,
            burst=True,
            poll_delay=0,
            handle_signals=False,
            on_startup=startup,
            on_shutdown=shutdown,
            ctx={"settings": settings},
        )
        await worker.main()
        assert worker.jobs_complete == 1 and worker.jobs_failed == 0
        await worker.close()
    finally:
        await redis.aclose()
    async with sessionmaker() as session:
        keys = (
            await session.scalars(select(IdempotencyRecord.key).where(IdempotencyRecord.organization_id == tenant.id))
        ).all()
        assert keys == ["new"]
        assert await session.scalar(select(func.count()).select_from(IdempotencyRecord)) >= 1
