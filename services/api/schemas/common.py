"""Shapes shared by every response."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

T = TypeVar("T")

# Points travel as JSON numbers; they are exact decimals (6 places) in the database.
Num = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


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
