"""Delivering events to webhook endpoints, the Standard Webhooks way.

Headers `webhook-id` (the event id, the same on every retry), `webhook-timestamp` and
`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, one per live secret while a
secret is being rotated). 10 s timeout, redirects not followed. A non-2xx answer or no answer is
retried on a schedule covering more than 24 h, then the delivery fails; an endpoint failing for 5
days in a row is disabled with the reason. The address is checked after DNS resolution at send time:
private, loopback and link-local targets are refused unless allowed by the settings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock, jsonutil, metrics
from shared.settings import WebhookSettings

log = logging.getLogger(__name__)

SCHEDULE = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]
DISABLE_AFTER = timedelta(days=5)
BATCH = 50


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after the `attempts`-th failed try (with jitter), or None when the schedule is over."""
    if attempts > len(SCHEDULE):
        return None
    base = SCHEDULE[attempts - 1]
    return base + timedelta(seconds=base.total_seconds() * random.uniform(0, 0.1))  # noqa: S311 (jitter)


class Refused(Exception):
    """The target address is not allowed."""


async def check_target(url: str, allow: list[str]) -> None:
    """Refuse URLs that are not http(s), and hosts that resolve to private, loopback, link-local or
    otherwise reserved addresses unless they are in `allow` (networks such as 127.0.0.0/8)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 443
        if host:
            host.encode("idna")
    except (ValueError, UnicodeError) as exc:
        raise Refused(f"not a usable URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise Refused("only http and https URLs with a host can receive webhooks")
    allowed = [ipaddress.ip_network(n, strict=False) for n in allow]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"the host does not resolve: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in n for n in allowed):
            continue
        if not address.is_global or address.is_multicast:
            raise Refused(f"{parts.hostname} resolves to {address}, a private or reserved address")


_CLAIM = text(
    """
    UPDATE webhook_deliveries d SET status = 'sending', attempts = d.attempts + 1, next_attempt_at = :lease
    FROM webhooks w, outbox_events e
    WHERE d.id IN (SELECT id FROM webhook_deliveries
                   WHERE status IN ('pending', 'sending') AND next_attempt_at <= :now
                   ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
      AND w.id = d.webhook_id AND e.id = d.event_id
    RETURNING d.id, d.attempts, d.webhook_id, w.url, w.active, w.secret, w.previous_secret, w.previous_until,
              e.id AS event_id, e.type, e.data, e.created_at
    """
)


async def deliver_due(sessionmaker: async_sessionmaker[AsyncSession], settings: WebhookSettings) -> int:
    """Send every delivery that is due, in batches; returns how many were tried."""
    tried = 0
    lease = timedelta(seconds=settings.lease_seconds)
    async with contextlib.AsyncExitStack() as stack:
        client: httpx.AsyncClient | None = None  # made once there is something to send (it costs ~25 ms)
        while True:
            now = clock.now()
            async with sessionmaker() as session:
                claimed = (
                    (await session.execute(_CLAIM, {"now": now, "lease": now + lease, "n": BATCH})).mappings().all()
                )
                await session.commit()
            if not claimed:
                return tried
            if client is None:
                client = await stack.enter_async_context(
                    httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False)
                )
            outcomes = await asyncio.gather(*(_send(client, settings, d) for d in claimed))
            async with sessionmaker() as session:
                await _record(session, claimed, outcomes)
                await session.commit()
            tried += len(claimed)
    return tried


def payload(event_id: str, type_: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    return jsonutil.dumps({"id": event_id, "type": type_, "timestamp": created_at.isoformat(), "data": data}).encode()


async def _send(client: httpx.AsyncClient, settings: WebhookSettings, d: Any) -> dict[str, Any]:
    if not d["active"]:
        return {"status_code": None, "latency_ms": None, "response": None, "error": "the endpoint is disabled"}
    body = payload(d["event_id"], d["type"], d["created_at"], d["data"])
    timestamp = int(time.time())
    secrets_ = [d["secret"]]
    if d["previous_secret"] and d["previous_until"] and d["previous_until"] > clock.now():
        secrets_.append(d["previous_secret"])
    headers = {
        "content-type": "application/json",
        "user-agent": "Gradeflow-Webhooks/1",
        "webhook-id": d["event_id"],
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, d["event_id"], timestamp, body) for s in secrets_),
    }
    started = time.perf_counter()
    try:
        await check_target(d["url"], settings.allow_private)
        response = await client.post(d["url"], content=body, headers=headers)
    except Refused as exc:
        return {"status_code": None, "latency_ms": None, "response": None, "error": f"refused: {exc}"}
    except httpx.HTTPError as exc:
        latency = int((time.perf_counter() - started) * 1000)
        return {"status_code": None, "latency_ms": latency, "response": None, "error": f"{type(exc).__name__}: {exc}"}
    latency = int((time.perf_counter() - started) * 1000)
    snippet = response.content[:1024].decode("utf-8", "replace")
    return {"status_code": response.status_code, "latency_ms": latency, "response": snippet, "error": None}


_LOG_ATTEMPTS = text(
    """
    INSERT INTO webhook_attempts (delivery_id, at, status_code, latency_ms, response, error)
    SELECT u.d, :now, u.code, u.latency, u.response, u.error
    FROM unnest(CAST(:d AS bigint[]), CAST(:code AS int[]), CAST(:latency AS int[]), CAST(:response AS text[]),
                CAST(:error AS text[])) AS u(d, code, latency, response, error)
    """
)
_SET_OUTCOMES = text(
    """
    UPDATE webhook_deliveries d SET status = u.status, next_attempt_at = u.next, last_status = u.code,
           last_error = u.error, finished_at = u.finished
    FROM unnest(CAST(:d AS bigint[]), CAST(:status AS text[]), CAST(:next AS timestamptz[]), CAST(:code AS int[]),
                CAST(:error AS text[]), CAST(:finished AS timestamptz[])) AS u(d, status, next, code, error, finished)
    WHERE d.id = u.d
    """
)
# An endpoint that answered is healthy again; one that failed has been failing since its first failure,
# and is disabled once that is 5 days ago.
_ENDPOINT_HEALTH = text(
    """
    UPDATE webhooks w SET
      failing_since = CASE WHEN u.ok THEN NULL ELSE coalesce(w.failing_since, :now) END,
      active = CASE WHEN NOT u.ok AND coalesce(w.failing_since, :now) <= :cutoff THEN false ELSE w.active END,
      disabled_reason = CASE WHEN NOT u.ok AND coalesce(w.failing_since, :now) <= :cutoff
        THEN 'disabled after failing for 5 days in a row; last error: ' || u.error ELSE w.disabled_reason END
    FROM unnest(CAST(:w AS bigint[]), CAST(:ok AS boolean[]), CAST(:error AS text[])) AS u(w, ok, error)
    WHERE w.id = u.w
    """
)


async def _record(session: AsyncSession, claimed: Sequence[Any], outcomes: list[dict[str, Any]]) -> None:
    """Every attempt of a batch, the deliveries' new state and the endpoints' health: three statements."""
    now = clock.now()
    statuses, nexts, errors, finished = [], [], [], []
    health: dict[int, tuple[bool, str | None]] = {}
    for d, o in zip(claimed, outcomes, strict=True):
        ok = o["status_code"] is not None and 200 <= o["status_code"] < 300
        delay = None if ok else retry_delay(d["attempts"])
        status = "succeeded" if ok else ("pending" if delay is not None else "failed")
        error = o["error"] or (None if ok else f"HTTP {o['status_code']}")
        statuses.append(status)
        metrics.WEBHOOK_DELIVERIES.labels(outcome="succeeded" if ok else status.replace("pending", "retry")).inc()
        nexts.append(now + (delay or timedelta(0)))
        errors.append(error)
        finished.append(None if status == "pending" else now)
        if d["active"]:
            health[d["webhook_id"]] = (
                (ok, error) if not ok or d["webhook_id"] not in health else health[d["webhook_id"]]
            )
    ids = [d["id"] for d in claimed]
    codes = [o["status_code"] for o in outcomes]
    await session.execute(
        _LOG_ATTEMPTS,
        {
            "now": now,
            "d": ids,
            "code": codes,
            "latency": [o["latency_ms"] for o in outcomes],
            "response": [o["response"] for o in outcomes],
            "error": [o["error"] for o in outcomes],
        },
    )
    await session.execute(
        _SET_OUTCOMES,
        {"d": ids, "status": statuses, "next": nexts, "code": codes, "error": errors, "finished": finished},
    )
    if health:
        await session.execute(
            _ENDPOINT_HEALTH,
            {
                "now": now,
                "cutoff": now - DISABLE_AFTER,
                "w": list(health),
                "ok": [h[0] for h in health.values()],
                "error": [h[1] for h in health.values()],
            },
        )
