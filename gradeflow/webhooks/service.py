"""Webhook subscriptions of an organization, their deliveries, redelivery and replay.

Every change is on the organization's audit trail (no course): created, updated, secret_rotated,
deleted, and what makes Gradeflow send data to an endpoint (pinged, replayed, redelivered). A URL's
password is shown back, and audited, as `***`; the stored URL keeps it for sending."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import NotFound, ValidationFailed
from gradeflow.core.paging import Page, newest_first
from gradeflow.core.settings import WebhookSettings
from gradeflow.notify import events
from gradeflow.notify.webhooks import Refused, check_target, new_secret, redacted
from gradeflow.webhooks.commands import WebhookIn, WebhookPatch

_COLUMNS = "id, url, events, description, active, disabled_reason, failing_since, created_at, updated_at"


_AUDITED = ("url", "events", "description", "active")


def _view(row: Any, secret: str | None = None) -> dict[str, Any]:
    view = dict(row)
    view["url"] = redacted(row["url"])
    view["secret"] = secret  # shown once: when created or rotated
    return view


def _audited(row: Any, fields: tuple[str, ...] = _AUDITED) -> dict[str, Any]:
    """What the audit trail keeps of an endpoint: never a secret, the URL without its password."""
    return {"webhook": row["id"]} | {f: redacted(row[f]) if f == "url" else row[f] for f in fields}


async def _check_url(url: str, targets: WebhookSettings, pointer: str = "/url") -> None:
    try:
        await check_target(url, targets.allow_private, targets.deny_ports)
    except Refused as exc:
        raise ValidationFailed.one(pointer, str(exc)) from exc


async def create(
    session: AsyncSession, organization_id: int, body: WebhookIn, targets: WebhookSettings, actor: str
) -> dict[str, Any]:
    """Subscribe an endpoint; its signing secret is in this answer only."""
    await _check_url(body.url, targets)
    secret = new_secret()
    row = (
        (
            await session.execute(
                text(
                    f"""
                    INSERT INTO webhooks (organization_id, url, events, description, active, secret, updated_at)
                    VALUES (:o, :url, :events, :d, :active, :secret, :now) RETURNING {_COLUMNS}
                    """  # noqa: S608  (constant columns)
                ),
                {
                    "o": organization_id,
                    "url": body.url,
                    "events": sorted(set(body.events)),
                    "d": body.description,
                    "active": body.active,
                    "secret": secret,
                    "now": clock.now(),
                },
            )
        )
        .mappings()
        .one()
    )
    await audit.record(session, organization_id, None, actor, "webhook.created", new=_audited(row))
    await session.commit()
    return _view(row, secret)


async def _row(session: AsyncSession, organization_id: int, webhook_id: int) -> Any:
    row = (
        (
            await session.execute(
                text(f"SELECT {_COLUMNS} FROM webhooks WHERE id = :id AND organization_id = :o"),  # noqa: S608
                {"id": webhook_id, "o": organization_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return row


async def get(session: AsyncSession, organization_id: int, webhook_id: int) -> dict[str, Any]:
    return _view(await _row(session, organization_id, webhook_id))


async def list_webhooks(session: AsyncSession, organization_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(f"SELECT {_COLUMNS} FROM webhooks WHERE organization_id = :o ORDER BY id"),  # noqa: S608
        {"o": organization_id},
    )
    return [_view(r) for r in rows.mappings()]


async def update(
    session: AsyncSession,
    organization_id: int,
    webhook_id: int,
    body: WebhookPatch,
    targets: WebhookSettings,
    grace: timedelta,
    actor: str,
) -> dict[str, Any]:
    """Change the URL, events, description or active flag (re-activating clears the failure record);
    `rotate_secret` issues a new secret, shown in this answer, while the old one keeps signing for
    the grace period. The URL as shown (password as `***`) or as stored leaves the URL unchanged."""
    old = await _row(session, organization_id, webhook_id)
    url = None if body.url in (old["url"], redacted(old["url"])) else body.url
    if url is not None:
        await _check_url(url, targets)
    secret = new_secret() if body.rotate_secret else None
    row = (
        (
            await session.execute(
                text(
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
                ),
                {
                    "id": webhook_id,
                    "url": url,
                    "events": sorted(set(body.events)) if body.events is not None else None,
                    "set_description": "description" in body.model_fields_set,
                    "d": body.description,
                    "active": body.active,
                    "secret": secret,
                    "until": clock.now() + grace,
                    "now": clock.now(),
                },
            )
        )
        .mappings()
        .one()
    )
    entries = []
    if changed := tuple(f for f in _AUDITED if old[f] != row[f]):
        entries.append({"action": "webhook.updated", "old": _audited(old, changed), "new": _audited(row, changed)})
    if secret is not None:
        entries.append({"action": "webhook.secret_rotated", "new": {"webhook": webhook_id}})
    await audit.record_many(session, organization_id, None, actor, entries)
    await session.commit()
    return _view(row, secret)


async def delete(session: AsyncSession, organization_id: int, webhook_id: int, actor: str) -> None:
    """Unsubscribe; the deliveries still owed go with the endpoint."""
    old = await _row(session, organization_id, webhook_id)
    await session.execute(text("DELETE FROM webhooks WHERE id = :id"), {"id": webhook_id})
    await audit.record(session, organization_id, None, actor, "webhook.deleted", old=_audited(old))
    await session.commit()


async def ping(session: AsyncSession, organization_id: int, webhook_id: int, actor: str) -> None:
    """A test event for this endpoint only (sent even if the endpoint does not list it)."""
    await _row(session, organization_id, webhook_id)
    await events.emit(session, organization_id, events.PING, {"webhook": webhook_id}, only_webhook=webhook_id)
    await audit.record(session, organization_id, None, actor, "webhook.pinged", new={"webhook": webhook_id})
    await session.commit()


async def deliveries(
    session: AsyncSession, organization_id: int, webhook_id: int, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Most recent first, each with its attempts (time, status code, latency, start of the answer)."""
    await _row(session, organization_id, webhook_id)
    sql = """
        SELECT d.id, d.event_id, e.type AS event_type, d.status, d.attempts, d.next_attempt_at,
               d.last_status, d.last_error, d.created_at, d.finished_at,
               coalesce((SELECT jsonb_agg(jsonb_build_object('at', a.at, 'status_code', a.status_code,
                           'latency_ms', a.latency_ms, 'response', a.response, 'error', a.error)
                         ORDER BY a.id) FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]') AS attempt_log
        FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id
        WHERE d.webhook_id = :w
    """
    page = await newest_first(session, sql, {"w": webhook_id}, limit, cursor)
    return Page([dict(r) for r in page.items], page.next_cursor)


async def redeliver(session: AsyncSession, organization_id: int, delivery_id: int, actor: str) -> None:
    """Send a delivery again now (its attempts so far are kept)."""
    done = (
        await session.execute(
            text(
                """
                UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = :now, finished_at = NULL,
                       attempts = 0
                FROM webhooks w WHERE d.id = :id AND w.id = d.webhook_id AND w.organization_id = :o
                RETURNING d.webhook_id, d.event_id
                """
            ),
            {"id": delivery_id, "o": organization_id, "now": clock.now()},
        )
    ).first()
    if done is None:
        raise NotFound(f"Delivery {delivery_id} not found.")
    new = {"webhook": done.webhook_id, "delivery": delivery_id, "event": done.event_id}
    await audit.record(session, organization_id, None, actor, "webhook.redelivered", new=new)
    await session.commit()


async def replay(session: AsyncSession, organization_id: int, webhook_id: int, since: datetime, actor: str) -> int:
    """Owe the endpoint every event of its types since `since` once more; how many."""
    await _row(session, organization_id, webhook_id)
    result = await session.execute(
        text(
            """
            INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at)
            SELECT w.id, e.id, :now FROM webhooks w JOIN outbox_events e
              ON e.organization_id = w.organization_id AND e.type = ANY(w.events)
            WHERE w.id = :w AND e.created_at >= :since
            """
        ),
        {"w": webhook_id, "since": since, "now": clock.now()},
    )
    owed = int(result.rowcount)  # type: ignore[attr-defined]
    new = {"webhook": webhook_id, "since": since.isoformat(), "deliveries": owed}
    await audit.record(session, organization_id, None, actor, "webhook.replayed", new=new)
    await session.commit()
    return owed
