"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gradeflow import jobs
from gradeflow.core import metrics
from gradeflow.system.service import backlog, database_answers

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable."}})
async def readyz(request: Request) -> JSONResponse:
    """The database, Redis and object storage all answer."""
    state = request.app.state

    async def database() -> bool:
        return await database_answers(state.engine)

    async def redis() -> bool:
        return bool(await state.redis.ping())

    async def storage() -> bool:
        return bool(await state.store.ping())

    checks: dict[str, Any] = {}
    for name, probe in (("database", database), ("redis", redis), ("storage", storage)):
        try:
            checks[name] = await asyncio.wait_for(probe(), timeout=3)
        except Exception:  # any failure means "not ready"; the reason is not the caller's business
            checks[name] = False
    ready = all(checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}},
)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics of this API process, with the queue depth and the backlogs read now."""
    state = request.app.state
    # Each source on its own: the request metrics are still worth serving; /readyz tells the rest.
    try:
        metrics.QUEUE_DEPTH.set(await asyncio.wait_for(jobs.queue_depth(state.redis), timeout=2))
    except Exception:
        metrics.QUEUE_DEPTH.set(float("nan"))
    try:
        async with state.sessionmaker() as session:
            reports, webhooks = await asyncio.wait_for(backlog(session), timeout=2)
        metrics.REPORTS_WAITING.set(reports)
        metrics.WEBHOOKS_DUE.set(webhooks)
    except Exception:
        metrics.REPORTS_WAITING.set(float("nan"))
        metrics.WEBHOOKS_DUE.set(float("nan"))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
