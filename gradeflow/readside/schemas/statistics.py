"""Statistics of the course grade or of one assessment as the API shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class Distribution(BaseModel):
    count: int
    mean: float | None
    median: float | None
    std: float | None = Field(description="Sample standard deviation (n - 1).")
    min: float | None
    max: float | None
    q1: float | None
    q3: float | None
    pass_rate: float | None
    histogram: Histogram
    letters: dict[str, int]


class AssessmentSummary(BaseModel):
    assessment: str
    title: str
    category: str
    count: int
    mean: float | None


class ItemStatistics(BaseModel):
    item: str
    number: str | None
    title: str | None
    points_possible: float
    count: int
    mean: float | None
    facility: float | None = Field(description="Mean score / points possible.")
    discrimination: float | None = Field(description="Correlation of the item's score with the rest of the test.")


class StatisticsOut(Distribution):
    of: str = Field(description='"course grade" or the assessment.')
    title: str | None = None
    assessments: list[AssessmentSummary] | None = None
    items: list[ItemStatistics] | None = None
