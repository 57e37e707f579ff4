"""Webhooks commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
)

from gradeflow.core.commands import Command, Moment

# --- webhooks -------------------------------------------------------------------------------------

EventType = Literal[
    "grade.changed",
    "results.published",
    "results.unpublished",
    "grading.confirmed",
    "policy.changed",
    "import.completed",
    "report.succeeded",
    "report.failed",
    "certificates.generated",
    "certificate.revoked",
    "certificate.reinstated",
]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]


class WebhookIn(Command):
    url: Url
    events: list[EventType] = Field(min_length=1, max_length=20)
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool = True


class WebhookPatch(Command):
    url: Url | None = None
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=20)
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool | None = Field(default=None, description="true re-enables a disabled endpoint.")
    rotate_secret: bool = Field(
        default=False, description="Issue a new secret (in the answer); the old one keeps signing for a grace period."
    )


class ReplayRequest(Command):
    since: Moment
