"""Webhooks (admin API keys): subscriptions, deliveries, redelivery, replay, and the event catalogue."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status

from gradeflow.access.service.access import require_key
from gradeflow.http.deps import Cursor, Limit, PrincipalDep, RecordId, SessionDep, SettingsDep, actor
from gradeflow.http.schemas import PageOut
from gradeflow.webhooks import service as webhooks
from gradeflow.webhooks.commands import ReplayRequest, WebhookIn, WebhookPatch
from gradeflow.webhooks.schemas import DeliveryOut, ReplayOut, WebhookOut

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, body: WebhookIn, response: Response
) -> WebhookOut:
    """Subscribe an endpoint to event types. The answer holds the signing secret (`whsec_...`), once.
    The URL must be http(s) to a host name or a dotted-decimal IPv4 / bracketed IPv6 address that
    resolves to public addresses only (422 `/url` otherwise). A password in the URL is used for
    sending and shown back as `***`. Audited as `webhook.created`."""
    require_key(principal, admin=True)
    view = await webhooks.create(session, principal.organization_id, body, settings.webhooks, actor(principal))
    response.headers["Location"] = f"/v1/webhooks/{view.id}"
    return WebhookOut.model_validate(view)


@router.get("")
async def list_webhooks(session: SessionDep, principal: PrincipalDep) -> list[WebhookOut]:
    """The organization's endpoints (without secrets)."""
    require_key(principal, admin=True)
    return [WebhookOut.model_validate(w) for w in await webhooks.list_webhooks(session, principal.organization_id)]


@router.get("/{webhook_id}")
async def get_webhook(session: SessionDep, principal: PrincipalDep, webhook_id: RecordId) -> WebhookOut:
    """One endpoint, with why it was disabled if it was."""
    require_key(principal, admin=True)
    return WebhookOut.model_validate(await webhooks.get(session, principal.organization_id, webhook_id))


@router.patch("/{webhook_id}")
async def update_webhook(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, webhook_id: RecordId, body: WebhookPatch
) -> WebhookOut:
    """Change an endpoint; `rotate_secret` answers with a new secret while the old one keeps signing
    (both signatures are sent) for the grace period. Sending the URL as shown (password as `***`)
    keeps the stored one. Audited as `webhook.updated` (old and new of the changed fields) and
    `webhook.secret_rotated`."""
    require_key(principal, admin=True)
    grace = timedelta(hours=settings.webhooks.rotation_grace_hours)
    view = await webhooks.update(
        session, principal.organization_id, webhook_id, body, settings.webhooks, grace, actor(principal)
    )
    return WebhookOut.model_validate(view)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(session: SessionDep, principal: PrincipalDep, webhook_id: RecordId) -> None:
    """Unsubscribe (deliveries still owed are dropped). Audited as `webhook.deleted`."""
    require_key(principal, admin=True)
    await webhooks.delete(session, principal.organization_id, webhook_id, actor(principal))


@router.post("/{webhook_id}:ping", status_code=status.HTTP_202_ACCEPTED)
async def ping_webhook(session: SessionDep, principal: PrincipalDep, webhook_id: RecordId) -> None:
    """Send a `webhook.ping` test event to this endpoint. Audited as `webhook.pinged`."""
    require_key(principal, admin=True)
    await webhooks.ping(session, principal.organization_id, webhook_id, actor(principal))


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    session: SessionDep, principal: PrincipalDep, webhook_id: RecordId, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[DeliveryOut]:
    """Deliveries to the endpoint, most recent first, each with every attempt."""
    require_key(principal, admin=True)
    page = await webhooks.deliveries(session, principal.organization_id, webhook_id, limit, cursor)
    return PageOut(items=[DeliveryOut.model_validate(d) for d in page.items], next_cursor=page.next_cursor)


@router.post("/deliveries/{delivery_id}:redeliver", status_code=status.HTTP_202_ACCEPTED)
async def redeliver(session: SessionDep, principal: PrincipalDep, delivery_id: RecordId) -> None:
    """Send one delivery again (same event id). Audited as `webhook.redelivered`."""
    require_key(principal, admin=True)
    await webhooks.redeliver(session, principal.organization_id, delivery_id, actor(principal))


@router.post("/{webhook_id}:replay", status_code=status.HTTP_202_ACCEPTED)
async def replay(session: SessionDep, principal: PrincipalDep, webhook_id: RecordId, body: ReplayRequest) -> ReplayOut:
    """Send the endpoint every event of its types since a time, again. Audited as `webhook.replayed`."""
    require_key(principal, admin=True)
    owed = await webhooks.replay(session, principal.organization_id, webhook_id, body.since, actor(principal))
    return ReplayOut(deliveries=owed)
