"""Anonymous marking's HTTP shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gradeflow.http.schemas import Out


class AnonymityOut(Out):
    assessment: str
    anonymous: bool = Field(description="Anonymous marking was asked for on the assessment.")
    anonymity_lifted_at: datetime | None = Field(description="When anonymity was lifted (final).")
    anonymity_lifted_by: str | None = Field(description="Who lifted it.")
