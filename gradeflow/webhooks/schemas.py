"""Webhook subscriptions and deliveries as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from gradeflow.http.schemas import Out


class WebhookOut(Out):
    id: int
    url: str = Field(description="The endpoint; a password in it (or a user part alone) is shown as `***`.")
    events: list[str]
    description: str | None
    active: bool
    disabled_reason: str | None = Field(description="Why Gradeflow disabled the endpoint, if it did.")
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="The signing secret: only in the answer that created or rotated it. Keep it."
    )


class DeliveryAttemptOut(Out):
    at: datetime
    status_code: int | None
    latency_ms: int | None
    response: str | None = Field(description="The first 1 KB of the answer.")
    error: str | None


class DeliveryOut(Out):
    id: int
    event_id: str
    event_type: str
    status: str = Field(description="pending, sending, succeeded or failed")
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[DeliveryAttemptOut]


class ReplayOut(BaseModel):
    deliveries: int = Field(description="Events owed to the endpoint again.")


class Event(BaseModel):
    """The body of every webhook request (Standard Webhooks: see the headers in the README)."""

    id: str = Field(description="The event id, also sent as `webhook-id`; the same on every retry.")
    type: str
    timestamp: datetime
    data: dict[str, Any]
