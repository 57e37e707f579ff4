"""The staff directory's shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gradeflow.access.service.staff import NAME_MAX, USERNAME_MAX
from gradeflow.core.validation import Input
from gradeflow.http.schemas import Out


class StaffIn(Input):
    """A staff user's names (both replaced; null or left out: unknown)."""

    username: str | None = Field(
        default=None,
        min_length=1,
        max_length=USERNAME_MAX,
        description="The user's login name in the LMS, as reports print it beside the user id"
        " (Inspera's GraderUsername).",
    )
    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX, description="The user's full name.")


class StaffOut(Out):
    user: str = Field(validation_alias="user_id", description="The user's id: their tokens' `sub`.")
    username: str | None
    name: str | None
    updated_at: datetime
