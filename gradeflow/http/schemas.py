"""Shapes shared by every response."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from gradeflow.core import statuses

T = TypeVar("T")

# Points travel as JSON numbers; they are exact decimals (6 places) in the database.
Num = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

# The late policy's figures beside a result (its `earned` is the final one): as staff see them ...
Entered = Annotated[Num | None, Field(description="The score as entered, before the late policy.")]
PointsDeducted = Annotated[
    Num | None,
    Field(description="The late policy's deduction: points off a late score, or the missing deduction (null: none)."),
]
LateStatus = Annotated[
    statuses.LateStatus | None,
    Field(description="late: submitted after the learner's own due date; missing: not submitted by it."),
]
# ... and as the learner sees them with a published result.
MyPointsDeducted = Annotated[
    Num | None,
    Field(description="Points the course's late policy took off (late work), or the missing deduction; null: none."),
]
MyLateStatus = Annotated[
    statuses.LateStatus | None,
    Field(description="late: handed in after your due date; missing: not handed in by it."),
]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PublicationState(BaseModel):
    state: Literal["unpublished", "published", "changed"] = Field(
        description="changed: published, but the result has changed since (learners still see the published one)."
    )
    published_at: datetime | None
