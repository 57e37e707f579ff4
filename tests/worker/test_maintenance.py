"""The worker runs in-process against the real Redis and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, text, update

from gradeflow import jobs
from gradeflow.core import clock
from gradeflow.core.settings import Settings
from gradeflow.db.models import IdempotencyRecord
from gradeflow.system.tasks import sweep_jobs
from tests.conftest import Tenant, run_worker
from tests.helpers import assessment, course, enroll


async def test_expired_idempotency_records_are_purged(tenant: Tenant, settings: Settings, sessionmaker: Any) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    await enroll(tenant, "c1", "l1")
    for key in ("old", "new"):
        body = {"scores": [{"assessment": "hw1", "learner": "l1", "earned": 1}]}
        r = await tenant.post("/v1/courses/c1/scores:batch", json=body, headers={"Idempotency-Key": key})
        assert r.status_code == 200
    async with sessionmaker() as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.organization_id == tenant.id, IdempotencyRecord.key == "old")
            .values(created_at=clock.now() - timedelta(hours=25))
        )
        await session.commit()
    redis = await jobs.connect(settings.redis_url)
    try:
        assert await jobs.enqueue(redis, jobs.JobName.PURGE_IDEMPOTENCY, "purge-test")
        assert not await jobs.enqueue(redis, jobs.JobName.PURGE_IDEMPOTENCY, "purge-test")  # deduplicated by id
    finally:
        await redis.aclose()
    worker = await run_worker(settings)
    assert worker.jobs_failed == 0
    async with sessionmaker() as session:
        keys = (
            await session.scalars(select(IdempotencyRecord.key).where(IdempotencyRecord.organization_id == tenant.id))
        ).all()
    assert keys == ["new"]


async def test_recompute_lost_from_redis_is_found_by_the_sweep(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    await enroll(tenant, "c1", "l1")
    await tenant.put("/v1/courses/c1/assessments/hw1/scores/l1", json={"earned": 7})
    policy = {"categories": [{"name": "Homework", "weight": 1}], "cutoffs": [{"grade": "P", "min": 0.5}]}
    assert (await tenant.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    redis = await jobs.connect(settings.redis_url)
    try:
        await redis.flushdb()  # Redis restarted: the queued job is gone
        async with sessionmaker() as session:
            await session.execute(
                text(
                    "UPDATE grade_recomputes SET created_at = created_at - interval '5 minutes'"
                    " WHERE course_id = (SELECT id FROM courses WHERE organization_id = :o)"
                ),
                {"o": tenant.id},
            )
            await session.commit()
        assert (await run_worker(settings, crons=False)).jobs_complete == 0  # nothing to run
        assert await sweep_jobs({"sessionmaker": sessionmaker, "redis": redis, "settings": settings}) >= 1
    finally:
        await redis.aclose()
    await run_worker(settings)
    state = (await tenant.get("/v1/courses/c1/policy")).json()
    assert state["recompute"]["status"] == "succeeded" and state["grades_version"] == 1
    assert (await tenant.get("/v1/courses/c1/learners/l1/grade")).json()["final"]["percent"] == 70.0


async def test_import_lost_from_redis_is_found_by_the_sweep(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    await enroll(tenant, "c1", "l1")
    r = await tenant.post(
        "/v1/courses/c1/imports", files={"file": ("s.csv", b"learner,assessment,earned\nl1,hw1,6\n", "text/csv")}
    )
    redis = await jobs.connect(settings.redis_url)
    try:
        await redis.flushdb()
        async with sessionmaker() as session:
            await session.execute(
                text("UPDATE score_imports SET created_at = created_at - interval '5 minutes' WHERE id = :i"),
                {"i": r.json()["id"]},
            )
            await session.commit()
        assert await sweep_jobs({"sessionmaker": sessionmaker, "redis": redis, "settings": settings}) >= 1
    finally:
        await redis.aclose()
    await run_worker(settings)
    assert (await tenant.get(r.headers["location"])).json()["status"] == "succeeded"
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/l1")).json()["earned"] == 6


async def test_a_follow_up_for_a_course_that_is_gone_does_nothing(sessionmaker: Any) -> None:
    from gradeflow.grades.tasks import follow_up_course

    outcome = await follow_up_course({"sessionmaker": sessionmaker, "redis": None}, 2**62)
    assert outcome == "0 grades refreshed, 0 publications"


async def test_results_emails_of_a_sender_that_died_between_two_messages_are_sent(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Any
) -> None:
    """A worker killed after marking one e-mail sent and before claiming the next leaves no claim behind, and its
    job id is still taken in the queue: the sweep gives the publication a new job, which sends the rest once."""
    from tests.helpers import email

    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    learners = ["ann", "bob", "cy"]
    await enroll(tenant, "c1", *learners)
    for learner in learners:
        await tenant.put(f"/v1/courses/c1/assessments/hw1/scores/{learner}", json={"earned": 7})
    body = {"assessments": ["hw1"], "audience": {"all": True}, "notify_email": True}
    r = await tenant.post("/v1/courses/c1/publications", json=body)
    assert r.status_code in (200, 201, 202), r.text
    publication = r.json()["id"]
    gone = clock.now() - timedelta(seconds=settings.smtp.lease_seconds + 60)
    async with sessionmaker() as session:
        # ann's e-mail went out a while ago; the job that sent it died before the next claim.
        await session.execute(
            text(
                """
                UPDATE notifications n SET status = 'sent', tries = 1, claimed_at = :t, sent_at = :t
                FROM enrollments e WHERE e.id = n.enrollment_id AND n.publication_id = :p AND e.external_id = 'ann'
                """
            ),
            {"p": publication, "t": gone},
        )
        await session.commit()
    redis = await jobs.connect(settings.redis_url)
    try:
        taken = jobs.job_id(jobs.JobName.SEND_NOTIFICATIONS, publication)
        assert await redis.exists(f"arq:job:{taken}")  # the dead job's id, still taken
        await sweep_jobs({"sessionmaker": sessionmaker, "redis": redis, "settings": settings})
        assert await redis.keys(f"arq:job:{taken}-*"), "the sweep gave the publication a new job"
    finally:
        await redis.aclose()
    await run_worker(settings)
    assert not mailbox.to(email(tenant, "ann"))
    assert all(len(mailbox.to(email(tenant, learner))) == 1 for learner in ("bob", "cy"))
