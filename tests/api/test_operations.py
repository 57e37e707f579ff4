"""What operators rely on: metrics, request ids, JSON logs without secrets, shared rate limits."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from gradeflow.api.main import create_app
from gradeflow.api.observe import Observe
from gradeflow.core import context, logs
from gradeflow.core.settings import Settings
from gradeflow.worker.observe import job_started
from tests.conftest import Tenant, assert_problem


async def test_metrics_count_requests_by_route_template(tenant: Tenant, client: httpx.AsyncClient) -> None:
    await tenant.post("/v1/courses", json={"external_id": "c1", "title": "C"})
    assert (await tenant.get("/v1/courses/c1")).status_code == 200
    assert_problem(await tenant.get("/v1/courses/nope"), 404)
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    route = 'route="/v1/courses/{course}"'
    assert any(
        line.startswith("gradeflow_http_requests_total{") and route in line and 'status="404"' in line for line in lines
    )
    assert any(line.startswith("gradeflow_http_request_duration_seconds_bucket{") and route in line for line in lines)
    assert any(line.startswith("gradeflow_queue_depth ") for line in lines)
    assert "c1" not in r.text and "nope" not in r.text  # paths with ids never become labels


async def test_an_unknown_method_is_counted_and_logged_as_other(client: httpx.AsyncClient) -> None:
    # A method is any token a client sends: it must not grow the metrics' labels or carry a secret into the log.
    out = io.StringIO()
    access = logging.getLogger("gradeflow.access")
    handler, level = logs.json_handler(out), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        r = await client.request("GFK_SECRETSECRET123", "/v1/courses")
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert r.status_code == 405
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["method"] == "OTHER" and line["message"].startswith("OTHER ") and "nothing_to_redact" not in line
    metrics = (await client.get("/metrics")).text
    assert "SECRETSECRET" not in metrics and 'method="OTHER"' in metrics


async def test_request_id_is_echoed_or_made_up(tenant: Tenant) -> None:
    r = await tenant.get("/v1/courses", headers={"X-Request-ID": "lms-abc.123"})
    assert r.headers["x-request-id"] == "lms-abc.123"
    made = (await tenant.get("/v1/courses", headers={"X-Request-ID": "bad id with spaces"})).headers["x-request-id"]
    assert made != "bad id with spaces" and len(made) == 32


def test_log_lines_are_json_with_ids_and_without_secrets() -> None:
    out = io.StringIO()
    log = logging.getLogger("gradeflow.test-logs")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(logs.json_handler(out))
    token = context.request_id.set("req-1")
    try:
        log.info(
            "link %s for %s with key %s, token %s",
            "https://s3.example/b/k?X-Amz-Signature=abc&X-Amz-Credential=x",
            "ada@example.org",
            "gfk_SecretSecret123",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl",
        )
        try:
            raise ValueError("postgresql://gradeflow:hunter2@db/gradeflow failed for bob@example.org")
        except ValueError:
            log.exception("boom")
    finally:
        context.request_id.reset(token)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["request_id"] == "req-1" and first["level"] == "INFO" and "time" in first and "job_id" in first
    text = out.getvalue()
    for secret in ("X-Amz-Signature", "ada@example.org", "SecretSecret123", "eyJzdWIiOiJ1MSJ9", "hunter2", "bob@"):
        assert secret not in text, secret
    assert "https://s3.example/b/k?[redacted]" in first["message"] and "ValueError" in second["exc_info"]


async def _replica(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"rate_limit": "5/minute"}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica.test") as c:
            yield c


async def test_rate_limit_is_per_key_and_shared_by_replicas(
    tenant: Tenant, other_tenant: Tenant, settings: Settings
) -> None:
    one, two = _replica(settings), _replica(settings)
    a, b = await anext(one), await anext(two)
    try:
        answers = [(await (a if i % 2 else b).get("/v1/courses", headers=tenant.headers)).status_code for i in range(6)]
        assert answers == [200] * 5 + [429]
        r = await a.get("/v1/courses", headers=tenant.headers)
        assert_problem(r, 429)
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert (await b.get("/v1/courses", headers=other_tenant.headers)).status_code == 200  # another key
    finally:
        for gen in (one, two):
            await gen.aclose()


async def test_past_the_in_flight_cap_requests_get_503_with_retry_after_at_once() -> None:
    release = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=Observe(slow_app, max_in_flight=2))
    async with httpx.AsyncClient(transport=transport, base_url="http://capped.test") as c:
        busy = [asyncio.create_task(c.get("/work")) for _ in range(2)]
        await asyncio.sleep(0.05)
        r = await asyncio.wait_for(c.get("/more"), timeout=2)
        assert_problem(r, 503)
        assert r.headers["retry-after"] == "1"
        release.set()
        assert [x.status_code for x in await asyncio.gather(*busy)] == [200, 200]
        assert (await c.get("/again")).status_code == 200


async def test_a_jobs_log_lines_carry_its_id_and_only_its_own() -> None:
    out = io.StringIO()
    log = logging.getLogger("gradeflow.test-job-logs")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(logs.json_handler(out))

    async def job(job_id: str) -> None:  # as arq runs it: on_job_start, then the job, in one task
        await job_started({"job_id": job_id})
        await asyncio.sleep(0)
        log.info("working")

    await asyncio.gather(asyncio.create_task(job("report-7")), asyncio.create_task(job("notify-3")))
    log.info("outside")
    ids = [json.loads(line)["job_id"] for line in out.getvalue().splitlines()]
    assert sorted(ids[:2]) == ["notify-3", "report-7"] and ids[2] is None
