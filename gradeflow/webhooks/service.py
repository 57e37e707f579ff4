"""Webhook subscriptions of an organization, their deliveries, redelivery and replay.

Every change is on the organization's audit trail (no course): created, updated, secret_rotated,
deleted, and what makes Gradeflow send data to an endpoint (pinged, replayed, redelivered). A URL's
password is shown back, and audited, as `***`; the stored URL keeps it for sending."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Required, TypedDict, cast

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import NotFound, ValidationFailed
from gradeflow.core.paging import Page
from gradeflow.core.settings import WebhookSettings
from gradeflow.notify import events
from gradeflow.notify.webhooks import Refused, check_target, new_secret, redacted
from gradeflow.webhooks import repository
from gradeflow.webhooks.commands import WebhookIn, WebhookPatch
from gradeflow.webhooks.repository import Delivery, Webhook, WebhookChange

_AUDITED = ("url", "events", "description", "active")


@dataclass(frozen=True, slots=True)
class WebhookView(Webhook):
    """An endpoint as its owner sees it: the URL's password as `***`, and the secret only in the answer
    that created or rotated it."""

    secret: str | None


def _view(row: Webhook, secret: str | None = None) -> WebhookView:
    return WebhookView(**(dataclasses.asdict(row) | {"url": redacted(row.url), "secret": secret}))


class _Audited(TypedDict, total=False):
    """What the audit trail keeps of an endpoint: never a secret, the URL without its password; of a change,
    the fields it changed."""

    webhook: Required[int]
    url: str
    events: list[str]
    description: str | None
    active: bool


def _audited(row: Webhook, fields: tuple[str, ...] = _AUDITED) -> _Audited:
    every: _Audited = {
        "webhook": row.id,
        "url": redacted(row.url),
        "events": row.events,
        "description": row.description,
        "active": row.active,
    }
    return cast(_Audited, {k: v for k, v in every.items() if k == "webhook" or k in fields})


async def _check_url(url: str, targets: WebhookSettings, pointer: str = "/url") -> None:
    try:
        await check_target(url, targets.allow_private, targets.deny_ports)
    except Refused as exc:
        raise ValidationFailed.one(pointer, str(exc)) from exc


async def create(
    session: AsyncSession, organization_id: int, body: WebhookIn, targets: WebhookSettings, actor: str
) -> WebhookView:
    """Subscribe an endpoint; its signing secret is in this answer only."""
    await _check_url(body.url, targets)
    secret = new_secret()
    row = await repository.create_webhook(
        session, organization_id, body.url, sorted(set(body.events)), body.description, body.active, secret, clock.now()
    )
    await audit.record(session, organization_id, None, actor, "webhook.created", new=_audited(row))
    await session.commit()
    return _view(row, secret)


async def _row(session: AsyncSession, organization_id: int, webhook_id: int) -> Webhook:
    row = await repository.webhook_of(session, organization_id, webhook_id)
    if row is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return row


async def get(session: AsyncSession, organization_id: int, webhook_id: int) -> WebhookView:
    return _view(await _row(session, organization_id, webhook_id))


async def list_webhooks(session: AsyncSession, organization_id: int) -> list[WebhookView]:
    return [_view(r) for r in await repository.webhooks_of(session, organization_id)]


async def update(
    session: AsyncSession,
    organization_id: int,
    webhook_id: int,
    body: WebhookPatch,
    targets: WebhookSettings,
    grace: timedelta,
    actor: str,
) -> WebhookView:
    """Change the URL, events, description or active flag (re-activating clears the failure record);
    `rotate_secret` issues a new secret, shown in this answer, while the old one keeps signing for
    the grace period. The URL as shown (password as `***`) or as stored leaves the URL unchanged."""
    old = await _row(session, organization_id, webhook_id)
    url = None if body.url in (old.url, redacted(old.url)) else body.url
    if url is not None:
        await _check_url(url, targets)
    secret = new_secret() if body.rotate_secret else None
    now = clock.now()
    change = WebhookChange(
        url=url,
        events=sorted(set(body.events)) if body.events is not None else None,
        set_description="description" in body.model_fields_set,
        description=body.description,
        active=body.active,
        secret=secret,
        previous_until=now + grace,
    )
    row = await repository.update_webhook(session, webhook_id, change, now)
    entries = []
    if changed := tuple(f for f in _AUDITED if getattr(old, f) != getattr(row, f)):
        entries.append({"action": "webhook.updated", "old": _audited(old, changed), "new": _audited(row, changed)})
    if secret is not None:
        entries.append({"action": "webhook.secret_rotated", "new": {"webhook": webhook_id}})
    await audit.record_many(session, organization_id, None, actor, entries)
    await session.commit()
    return _view(row, secret)


async def delete(session: AsyncSession, organization_id: int, webhook_id: int, actor: str) -> None:
    """Unsubscribe; the deliveries still owed go with the endpoint."""
    old = await _row(session, organization_id, webhook_id)
    await repository.delete_webhook(session, webhook_id)
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
) -> Page[Delivery]:
    """Most recent first, each with its attempts (time, status code, latency, start of the answer)."""
    await _row(session, organization_id, webhook_id)
    return await repository.deliveries(session, webhook_id, limit, cursor)


async def redeliver(session: AsyncSession, organization_id: int, delivery_id: int, actor: str) -> None:
    """Send a delivery again now (its attempts so far are kept)."""
    done = await repository.redeliver(session, organization_id, delivery_id, clock.now())
    if done is None:
        raise NotFound(f"Delivery {delivery_id} not found.")
    new = {"webhook": done.webhook_id, "delivery": delivery_id, "event": done.event_id}
    await audit.record(session, organization_id, None, actor, "webhook.redelivered", new=new)
    await session.commit()


async def replay(session: AsyncSession, organization_id: int, webhook_id: int, since: datetime, actor: str) -> int:
    """Owe the endpoint every event of its types since `since` once more; how many."""
    await _row(session, organization_id, webhook_id)
    owed = await repository.replay(session, webhook_id, since, clock.now())
    new = {"webhook": webhook_id, "since": since.isoformat(), "deliveries": owed}
    await audit.record(session, organization_id, None, actor, "webhook.replayed", new=new)
    await session.commit()
    return owed
