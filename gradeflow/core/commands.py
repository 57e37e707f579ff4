"""Validated commands: the base class every domain's commands extend, and the field types they share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StringConstraints,
)

from gradeflow.core.errors import FieldError, ValidationFailed
from gradeflow.core.validation import TITLE_MAX, Input, clean_text

ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\x00-\x1f]+$"),
    AfterValidator(clean_text),
    Field(description="The LMS's own identifier (no slashes)."),
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=TITLE_MAX)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Points = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False, max_digits=18, decimal_places=6, description="Points, at most 6 decimals."),
]
_MOMENT_MIN = datetime(2, 1, 1, tzinfo=UTC)
_MOMENT_MAX = datetime(9998, 12, 31, tzinfo=UTC)


def _in_calendar(at: datetime) -> datetime:
    # The database reads a time in UTC and reports print bounds (an end at midnight as the day before):
    # a time a day from the calendar's ends would overflow either, so it is refused here.
    if not _MOMENT_MIN <= at <= _MOMENT_MAX:
        raise ValueError("Must be between 0002-01-01 and 9998-12-31 (UTC).")
    return at


Moment = Annotated[AwareDatetime, AfterValidator(_in_calendar)]
CourseRole = Literal["planner", "grader", "publisher", "viewer", "moderator"]


class Command(Input):
    pass


def check_unique(values: list[str], array: str, field: str | None) -> None:
    # Raised as a domain error (not ValueError) so it keeps the exact pointer of the repeated field.
    seen: dict[str, int] = {}
    errors = []
    tail = f"/{field}" if field else ""
    for i, v in enumerate(values):
        if v in seen:
            errors.append(FieldError(f"/{array}/{i}{tail}", f"{v!r} repeats /{array}/{seen[v]}{tail}"))
        else:
            seen[v] = i
    if errors:
        raise ValidationFailed(errors)


def window_ends_after_start(
    starts_at: datetime | None, ends_at: datetime | None, pointer: str = "/ends_at", start_name: str = "starts_at"
) -> None:
    """A window (review session, course session, report period) closes after it opens: 422 at the end's
    pointer otherwise."""
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationFailed.one(pointer, f"Must be later than {start_name}.")


ResultShow = Literal["total_only", "with_items"]
