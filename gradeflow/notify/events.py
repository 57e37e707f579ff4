"""Events for other services: written to the outbox in the transaction of the change that caused them,
with one delivery owed to every active webhook that wants the type. A rolled-back change leaves no
event; a committed one is never lost (the worker delivers from the table)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core import clock, jsonutil

PING = "webhook.ping"

_EMIT = text(
    """
    WITH ev AS (
      INSERT INTO outbox_events (id, organization_id, type, data, created_at)
      SELECT 'evt_' || replace(CAST(gen_random_uuid() AS text), '-', ''), :o, :type, d, :now
      FROM jsonb_array_elements(CAST(:data AS jsonb)) d
      RETURNING id)
    INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at)
    SELECT w.id, ev.id, :now FROM ev CROSS JOIN webhooks w
    WHERE w.organization_id = :o AND w.active
      AND (CASE WHEN CAST(:only AS bigint) IS NULL THEN CAST(:type AS text) = ANY(w.events) ELSE w.id = :only END)
    """
)


async def emit(
    session: AsyncSession, organization_id: int, type_: str, *data: dict[str, Any], only_webhook: int | None = None
) -> None:
    """Record events of one type (one per `data`) in the caller's transaction, owed to every active
    webhook that wants the type (or to `only_webhook`, whatever it wants)."""
    if not data:
        return
    await session.execute(
        _EMIT,
        {
            "o": organization_id,
            "type": type_,
            "data": jsonutil.dumps(list(data)),
            "now": clock.now(),
            "only": only_webhook,
        },
    )
