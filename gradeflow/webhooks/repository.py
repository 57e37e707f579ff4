"""The SQL of webhook subscriptions and their deliveries (the organization's side). Sending them is
gradeflow/notify/webhooks.py's; writing events and the deliveries owed, gradeflow/notify/events.py's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.paging import Page
from gradeflow.db.paging import newest_first


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscription as stored (its secrets aside)."""

    id: int
    url: str
    events: list[str]
    description: str | None
    active: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


_COLUMNS = "id, url, events, description, active, disabled_reason, failing_since, created_at, updated_at"

_CREATE = text(
    f"""
    INSERT INTO webhooks (organization_id, url, events, description, active, secret, updated_at)
    VALUES (:o, :url, :events, :d, :active, :secret, :now) RETURNING {_COLUMNS}
    """  # noqa: S608  (constant columns)
)


async def create_webhook(
    session: AsyncSession,
    organization_id: int,
    url: str,
    events: list[str],
    description: str | None,
    active: bool,
    secret: str,
    now: datetime,
) -> Webhook:
    """Subscribe an endpoint of the organization."""
    params = {
        "o": organization_id,
        "url": url,
        "events": events,
        "d": description,
        "active": active,
        "secret": secret,
        "now": now,
    }
    return Webhook(*(await session.execute(_CREATE, params)).one())


_ONE = text(f"SELECT {_COLUMNS} FROM webhooks WHERE id = :id AND organization_id = :o")  # noqa: S608
_ALL = text(f"SELECT {_COLUMNS} FROM webhooks WHERE organization_id = :o ORDER BY id")  # noqa: S608


async def webhook_of(session: AsyncSession, organization_id: int, webhook_id: int) -> Webhook | None:
    """The organization's endpoint `webhook_id` (None: it has none of that id)."""
    row = (await session.execute(_ONE, {"id": webhook_id, "o": organization_id})).first()
    return None if row is None else Webhook(*row)


async def webhooks_of(session: AsyncSession, organization_id: int) -> list[Webhook]:
    """The organization's endpoints in the order they were created."""
    return [Webhook(*r) for r in await session.execute(_ALL, {"o": organization_id})]


_UPDATE = text(
    f"""
    UPDATE webhooks SET
      url = coalesce(CAST(:url AS text), url),
      events = coalesce(CAST(:events AS text[]), events),
      description = CASE WHEN CAST(:set_description AS boolean) THEN CAST(:d AS text)
                         ELSE description END,
      active = coalesce(CAST(:active AS boolean), active),
      failing_since = CASE WHEN CAST(:active AS boolean) THEN NULL ELSE failing_since END,
      disabled_reason = CASE WHEN CAST(:active AS boolean) THEN NULL ELSE disabled_reason END,
      previous_secret = CASE WHEN CAST(:secret AS text) IS NOT NULL THEN secret
                             ELSE previous_secret END,
      previous_until = CASE WHEN CAST(:secret AS text) IS NOT NULL THEN :until ELSE previous_until END,
      secret = coalesce(CAST(:secret AS text), secret),
      updated_at = :now
    WHERE id = :id RETURNING {_COLUMNS}
    """  # noqa: S608
)


@dataclass(frozen=True, slots=True)
class WebhookChange:
    """What an update changes (None: keeps it); `description` is set when `set_description`, even to None.
    A new `secret` keeps the old one signing until `previous_until`; `active` true clears the failure
    record."""

    url: str | None
    events: list[str] | None
    set_description: bool
    description: str | None
    active: bool | None
    secret: str | None
    previous_until: datetime


async def update_webhook(session: AsyncSession, webhook_id: int, change: WebhookChange, now: datetime) -> Webhook:
    """Change an endpoint; the endpoint as it is now."""
    params = {
        "id": webhook_id,
        "url": change.url,
        "events": change.events,
        "set_description": change.set_description,
        "d": change.description,
        "active": change.active,
        "secret": change.secret,
        "until": change.previous_until,
        "now": now,
    }
    return Webhook(*(await session.execute(_UPDATE, params)).one())


_DELETE = text("DELETE FROM webhooks WHERE id = :id")


async def delete_webhook(session: AsyncSession, webhook_id: int) -> None:
    """Unsubscribe an endpoint (its deliveries go with it)."""
    await session.execute(_DELETE, {"id": webhook_id})


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery to an endpoint, with every attempt (`attempt_log`: at, status_code, latency_ms,
    response, error)."""

    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[dict[str, Any]]


_DELIVERIES = """
    SELECT d.id, d.event_id, e.type AS event_type, d.status, d.attempts, d.next_attempt_at,
           d.last_status, d.last_error, d.created_at, d.finished_at,
           coalesce((SELECT jsonb_agg(jsonb_build_object('at', a.at, 'status_code', a.status_code,
                       'latency_ms', a.latency_ms, 'response', a.response, 'error', a.error)
                     ORDER BY a.id) FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]') AS attempt_log
    FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id
    WHERE d.webhook_id = :w
"""


async def deliveries(session: AsyncSession, webhook_id: int, limit: int, cursor: str | None) -> Page[Delivery]:
    """The endpoint's deliveries, most recent first."""
    page = await newest_first(session, _DELIVERIES, {"w": webhook_id}, limit, cursor)
    return Page([Delivery(**r) for r in page.items], page.next_cursor)


@dataclass(frozen=True, slots=True)
class Redelivery:
    """A delivery owed again: its endpoint and event."""

    webhook_id: int
    event_id: str


_REDELIVER = text(
    """
    UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = :now, finished_at = NULL,
           attempts = 0
    FROM webhooks w WHERE d.id = :id AND w.id = d.webhook_id AND w.organization_id = :o
    RETURNING d.webhook_id, d.event_id
    """
)


async def redeliver(session: AsyncSession, organization_id: int, delivery_id: int, now: datetime) -> Redelivery | None:
    """Owe the organization's delivery `delivery_id` again from `now` (None: it has none of that id)."""
    row = (await session.execute(_REDELIVER, {"id": delivery_id, "o": organization_id, "now": now})).first()
    return None if row is None else Redelivery(*row)


_REPLAY = text(
    """
    INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at)
    SELECT w.id, e.id, :now FROM webhooks w JOIN outbox_events e
      ON e.organization_id = w.organization_id AND e.type = ANY(w.events)
    WHERE w.id = :w AND e.created_at >= :since
    """
)


async def replay(session: AsyncSession, webhook_id: int, since: datetime, now: datetime) -> int:
    """Owe the endpoint every event of its types since `since` once more; how many."""
    result = await session.execute(_REPLAY, {"w": webhook_id, "since": since, "now": now})
    return int(result.rowcount)  # type: ignore[attr-defined]
