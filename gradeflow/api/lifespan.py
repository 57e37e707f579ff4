"""Build the process's resources on start-up and release them on shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from gradeflow import jobs
from gradeflow.access.service.auth import ensure_bootstrap_key
from gradeflow.core.heap import freeze_startup_objects
from gradeflow.core.settings import Settings, check_bootstrap_key
from gradeflow.db.engine import make_engine, make_sessionmaker
from gradeflow.http.rate_limits import RateLimiter
from gradeflow.reports.labels import LabelCatalogue
from gradeflow.scores.service.external import tool_score_writes
from gradeflow.scores.service.scores import score_writes
from gradeflow.storage import open_store

log = logging.getLogger("gradeflow.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    check_bootstrap_key(settings.bootstrap_api_key)  # before anything starts; also for settings not read from env
    # A school's label catalogue with a mistake stops start-up naming the file, not a report request later.
    LabelCatalogue.load(settings.reports.labels_dir)
    async with AsyncExitStack() as stack:
        engine = make_engine(settings)
        stack.push_async_callback(engine.dispose)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.score_writes = score_writes(engine)
        app.state.tool_score_writes = tool_score_writes(engine)
        redis = await jobs.connect(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        app.state.redis = redis
        app.state.limiter = RateLimiter(settings.redis_url, settings.rate_limit)
        store = await stack.enter_async_context(open_store(settings.s3))
        await store.ensure_bucket()
        app.state.store = store
        if settings.bootstrap_api_key is not None:
            async with app.state.sessionmaker() as session:
                await ensure_bootstrap_key(
                    session, settings.bootstrap_organization, settings.bootstrap_api_key.get_secret_value()
                )
        freeze_startup_objects()
        log.info("gradeflow api ready")
        yield
