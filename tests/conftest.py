"""Fixtures: the real PostgreSQL, Redis and SeaweedFS, one migrated database per run, one
organization per test (tests are independent because every test works in its own tenant).

The services and the app are imported and started only by the fixtures that need them, so the pure
tests (`make test-fast`: tests/unit and tests/contract) start quickly and run without any service.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from gradeflow.core.settings import S3Settings, Settings, SmtpSettings, WebhookSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from gradeflow.devstack import infra, mailsink

# Its own Redis db index per test process: `make test` runs two (pytest-xdist workers gw0 and gw1 take 13 and 14);
# two test runs at once on one machine each set another base.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
TEST_REDIS_DB = int(os.environ.get("GRADEFLOW_TEST_REDIS_DB", "13")) + int(_WORKER.removeprefix("gw") or 0)


# Set by `make test-fast`: that tier runs without PostgreSQL, Redis and SeaweedFS.
NO_SERVICES = os.environ.get("GRADEFLOW_TEST_NO_SERVICES") == "1"


# Set by `make test-fast`: property tests try at most this many examples each (the full suite tries what each
# test's @settings asks for).
MAX_EXAMPLES = int(os.environ.get("GRADEFLOW_TEST_MAX_EXAMPLES", "0"))


def _fewer_examples(items: list[pytest.Item]) -> None:
    # Hypothesis keeps a test's @settings on the test function, where its own @seed decorator changes them too.
    from hypothesis import settings

    for item in items:
        test = getattr(item, "obj", None)
        chosen = getattr(test, "_hypothesis_internal_use_settings", None)
        if chosen is not None and chosen.max_examples > MAX_EXAMPLES:
            test._hypothesis_internal_use_settings = settings(chosen, max_examples=MAX_EXAMPLES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MAX_EXAMPLES:
        _fewer_examples(items)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[infra.Stack]:
    if NO_SERVICES:
        pytest.fail("this test needs PostgreSQL, Redis or SeaweedFS: it belongs in the full suite, not the fast tier")
    from gradeflow.devstack import infra

    with infra.running(tmp_path_factory.mktemp("stack")) as s:
        yield s


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[mailsink.Memory, int]]:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""
    from gradeflow.devstack import mailsink

    handler = mailsink.Memory()
    with mailsink.running(handler) as port:
        yield handler, port


@pytest.fixture
def mailbox(smtp_server: tuple[mailsink.Memory, int]) -> mailsink.Memory:
    """The messages received during this test (filter by recipient: the worker may also send other
    tests' queued mail)."""
    smtp_server[0].messages.clear()
    return smtp_server[0]


@pytest.fixture(scope="session")
async def settings(stack: infra.Stack, smtp_server: tuple[mailsink.Memory, int]) -> AsyncIterator[Settings]:
    from gradeflow import jobs
    from gradeflow.db.migrate import upgrade
    from gradeflow.devstack import infra

    name = f"gradeflow_test_{os.getpid()}"
    await infra.create_database(stack.database_admin_url, name, drop_first=True)
    url = stack.database_url(name)
    await asyncio.to_thread(upgrade, url)
    redis_url = stack.redis_url.rsplit("/", 1)[0] + f"/{TEST_REDIS_DB}" if "://" in stack.redis_url else ""
    if stack.redis_url.startswith("unix://"):
        redis_url = stack.redis_url.split("?db=")[0] + f"?db={TEST_REDIS_DB}"
    s3 = S3Settings(bucket="gradeflow-test", **stack.s3) if stack.s3 else S3Settings()
    test_settings = Settings(
        database_url=url,
        redis_url=redis_url,
        s3=s3,
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_server[1], timeout_seconds=5),
        results_url_template="https://lms.example/courses/{course}/me",
        webhooks=WebhookSettings(allow_private=["127.0.0.0/8", "::1/128"], timeout_seconds=3),
        bootstrap_api_key=None,
        rate_limit="",  # tests of their own set limits; a fuzzer's burst must not be throttled
        worker_metrics_port=0,
    )
    redis = await jobs.connect(redis_url)
    await redis.flushdb()  # job ids restart with the new database; stale results would dedupe them
    await redis.aclose()
    yield test_settings
    await infra.drop_database(stack.database_admin_url, name)


def settings_env(s: Settings, **overrides: str) -> dict[str, str]:
    """The environment that gives a `gradeflow` child process the same settings as the tests."""
    env = {
        **os.environ,
        "GRADEFLOW_DATABASE_URL": s.database_url.get_secret_value(),
        "GRADEFLOW_REDIS_URL": s.redis_url,
        "GRADEFLOW_S3_ENDPOINT_URL": s.s3.endpoint_url or "",
        "GRADEFLOW_S3_ACCESS_KEY": s.s3.access_key.get_secret_value(),
        "GRADEFLOW_S3_SECRET_KEY": s.s3.secret_key.get_secret_value(),
        "GRADEFLOW_S3_BUCKET": s.s3.bucket,
        "GRADEFLOW_S3_REGION": s.s3.region,
        "GRADEFLOW_SMTP_HOST": s.smtp.host,
        "GRADEFLOW_SMTP_PORT": str(s.smtp.port),
        "GRADEFLOW_WEBHOOKS__ALLOW_PRIVATE": json.dumps(s.webhooks.allow_private),
        "GRADEFLOW_RESULTS_URL_TEMPLATE": s.results_url_template,
        "GRADEFLOW_RATE_LIMIT": s.rate_limit,
        "GRADEFLOW_WORKER_METRICS_PORT": "0",
    }
    return env | {f"GRADEFLOW_{k.upper()}": v for k, v in overrides.items()}


@pytest.fixture(scope="session")
def live_api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`gradeflow api` as a real process on a loopback port (for clients that speak real HTTP)."""
    from gradeflow.devstack import processes

    with processes.api(settings_env(settings), log=tmp_path_factory.mktemp("live") / "api.log") as base_url:
        yield base_url


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    from asgi_lifespan import LifespanManager

    from gradeflow.api.main import create_app

    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gradeflow.test") as c:
        yield c


@pytest.fixture(scope="session")
async def sessionmaker(settings: Settings) -> AsyncIterator[Any]:
    from gradeflow.db.engine import make_engine, make_sessionmaker

    engine = make_engine(settings)
    yield make_sessionmaker(engine)
    await engine.dispose()


@dataclass
class Tenant:
    """An organization of its own with an admin key, and a client that sends that key."""

    slug: str
    id: int
    key: str
    client: httpx.AsyncClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def request(self, method: str, url: str, *, as_: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {as_ or self.key}", **kw.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kw)

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", url, **kw)

    async def put(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("PUT", url, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kw)


async def make_tenant(sessionmaker: Any, client: httpx.AsyncClient) -> Tenant:
    from gradeflow.access.service import auth

    slug = "org-" + secrets.token_hex(6)
    async with sessionmaker() as session:
        org = await auth.create_organization(session, slug, slug)
        _, key = await auth.create_api_key(session, org.id, "test admin", "admin")
    return Tenant(slug, org.id, key, client)


@pytest.fixture
async def tenant(sessionmaker: Any, client: httpx.AsyncClient) -> Tenant:
    return await make_tenant(sessionmaker, client)


@pytest.fixture
async def other_tenant(sessionmaker: Any, client: httpx.AsyncClient) -> Tenant:
    return await make_tenant(sessionmaker, client)


def assert_problem(response: httpx.Response, status: int, *pointers: str) -> dict[str, Any]:
    """The response is problem+json with `status`, naming each of `pointers` among its errors."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("urn:gradeflow:problem:") and body["title"]
    named = {e.get("pointer", e.get("parameter")) for e in body.get("errors") or []}
    for p in pointers:
        assert p in named, f"{p} not in {named}"
    return body


ROOT = Path(__file__).resolve().parent.parent


async def run_worker(settings: Settings, crons: bool = True) -> Any:
    """Run the worker's crons once (as a starting worker does), then the real worker in-process until
    the queue is empty (burst), against the test Redis."""
    from arq.worker import Worker

    from gradeflow import jobs
    from gradeflow.worker.main import WorkerSettings, shutdown, startup

    redis = await jobs.connect(settings.redis_url)
    ctx: dict[str, Any] = {"settings": settings, "redis": redis}
    await startup(ctx)
    try:
        for cron in WorkerSettings.cron_jobs if crons else []:
            await cron.coroutine(ctx)
    finally:
        await shutdown(ctx)
    worker = Worker(
        functions=WorkerSettings.functions,
        redis_pool=redis,
        burst=True,
        poll_delay=0,
        handle_signals=False,
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"settings": settings},
        max_tries=WorkerSettings.max_tries,
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker


@dataclass
class Receiver:
    base: str
    # path -> status (default 200); 0: answer after 2 s, -1: hang once, then 200
    answers: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    from aiohttp import web

    from gradeflow.devstack.infra import free_port

    port = free_port()
    box = Receiver(f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        box.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
        status = box.answers.get(request.path, 200)
        if status == 0:  # no answer in time
            await asyncio.sleep(2)
        if status == -1:  # no answer at all, once: the sender is expected to die meanwhile
            box.answers[request.path] = 200
            await asyncio.sleep(15)
        if status in (301, 302):
            return web.Response(status=status, headers={"Location": box.base + "/elsewhere"})
        return web.Response(status=status, text="x" * 3000 if status >= 500 else "ok")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield box
    await runner.cleanup()
