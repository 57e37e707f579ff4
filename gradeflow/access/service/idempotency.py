"""Idempotency-Key: the same key and body replay the first response; another body is a conflict."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.repository import idempotency as repository
from gradeflow.core import clock
from gradeflow.core.errors import Conflict
from gradeflow.db.models import IdempotencyRecord


@dataclass
class Stored:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def fingerprint(scope: str, body: bytes) -> bytes:
    """Identifies a request: its method and path, and its body byte for byte."""
    return hashlib.sha256(scope.encode() + b"\n" + body).digest()


async def run_once(
    session: AsyncSession,
    organization_id: int,
    key: str | None,
    scope: str,
    request_fingerprint: bytes,
    ttl: timedelta,
    work: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> Stored:
    """Run `work` (which must not commit) and commit its effects with the stored response.

    Only successful responses are kept: a request that failed left nothing behind and may be
    retried under the same key.
    """
    if key is not None:
        prior = await _lookup(session, organization_id, key, ttl)
        if prior is not None:
            return _replay(prior, scope, request_fingerprint)
    status_code, body = await work()
    if key is not None:
        values = {
            "scope": scope,
            "request_hash": request_fingerprint,
            "status_code": status_code,
            "response": body,
            "created_at": clock.now(),
        }
        # An expired record not yet purged is taken over; a live one means a concurrent request won.
        inserted = await repository.store(session, organization_id, key, values, clock.now() - ttl)
        if inserted is None:  # a concurrent request with this key committed first
            await session.rollback()
            prior = await _lookup(session, organization_id, key, ttl)
            if prior is None:
                raise Conflict("A request with this Idempotency-Key is still in progress; retry shortly.")
            return _replay(prior, scope, request_fingerprint)
    await session.commit()
    return Stored(status_code, body, replayed=False)


def _replay(prior: IdempotencyRecord, scope: str, request_fingerprint: bytes) -> Stored:
    if prior.scope != scope or prior.request_hash != request_fingerprint:
        raise Conflict("This Idempotency-Key was used with a different request.")
    return Stored(prior.status_code, prior.response, replayed=True)


async def _lookup(session: AsyncSession, organization_id: int, key: str, ttl: timedelta) -> IdempotencyRecord | None:
    return await repository.live_record(session, organization_id, key, clock.now() - ttl)


async def purge_expired(session: AsyncSession, ttl: timedelta) -> int:
    """Delete records older than the TTL (run by the worker's cron)."""
    purged = await repository.delete_expired(session, clock.now() - ttl)
    await session.commit()
    return purged
