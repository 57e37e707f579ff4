"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

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
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

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
