"""Shapes shared by every response."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer

T = TypeVar("T")

# Points travel as JSON numbers; they are exact decimals (6 places) in the database.
Num = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
