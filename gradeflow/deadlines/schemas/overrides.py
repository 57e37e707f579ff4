"""Assessment overrides' shapes: a learner's or a group's own due date and extra attempts."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gradeflow.http.schemas import Out


class OverrideOut(Out):
    learner: str | None = Field(description="The learner the override is for (null: a group's).")
    group: str | None = Field(description="The group the override is for (null: a learner's).")
    due_at: datetime | None = Field(
        description="The due date it gives (null: it only grants attempts). A learner's own date is the latest of"
        " their overrides' (their own and their groups'), else the assessment's."
    )
    extra_attempts: int = Field(
        description="Attempts on top of the assessment's allowed_attempts; a learner gets the most of their overrides'."
    )
    reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
