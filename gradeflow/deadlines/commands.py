"""Deadlines commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from gradeflow.core.commands import Command, Moment
from gradeflow.core.errors import ValidationFailed

# --- extensions and extra attempts --------------------------------------------------------------------


class OverrideIn(Command):
    """A learner's or a group's own due date and extra attempts at an assessment (PUT replaces the override)."""

    due_at: Moment | None = Field(
        default=None,
        description="Their own due date (null: the assessment's, unless another override of theirs moves it).",
    )
    extra_attempts: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=0, description="Attempts on top of the assessment's allowed_attempts."
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        default=None, description="Why (at most 1000 characters; shown to staff and in the audit log)."
    )

    @model_validator(mode="after")
    def _something(self) -> OverrideIn:
        if self.due_at is None and self.extra_attempts == 0:
            raise ValidationFailed.one("/due_at", "An override gives a due date, extra attempts or both.")
        return self
