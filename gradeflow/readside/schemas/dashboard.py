"""The dashboard's figures: a total and, on request, a row per assessment, group, cohort or session."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gradeflow.readside.service.dashboard import Breakdown


class Durations(BaseModel):
    count: int = Field(description="Attempts with a start and a submission time (submitted at or after started).")
    mean_seconds: float | None
    median_seconds: float | None


class ScoreBin(BaseModel):
    label: str = Field(description='"[0, 10)" ... "[90, 100]" (closed: full marks), then "above 100" (extra credit).')
    from_: float = Field(alias="from", description="Lower bound in percent (included; excluded for above 100).")
    to: float | None = Field(description="Upper bound in percent (excluded, but 100 is in [90, 100]); null: none.")
    count: int


class ScoreSpread(BaseModel):
    count: int = Field(description="Graded results that are not excused and have points possible.")
    mean: float | None = Field(description="Percent, rounded to 2 decimals.")
    median: float | None
    min: float | None
    max: float | None
    bins: list[ScoreBin]


class DashboardRow(BaseModel):
    key: str | None = Field(
        description="The assessment, group, cohort or session of the row; null in the total and in the row of "
        "attempts with no group, cohort or session."
    )
    title: str | None = Field(description="The assessment's or session's title.")
    attempts: int
    statuses: dict[str, int] = Field(description="Attempts per status (the results table's tabs).")
    completed: int = Field(description="Graded attempts (the document's Completed).")
    in_progress: int
    to_be_taken: int
    excused: int = Field(description="Attempts whose learner is excused (in any status; not in the scores).")
    duration: Durations
    scores: ScoreSpread = Field(description="The distribution of the results table's Percent values.")


class DashboardOut(BaseModel):
    by: Breakdown
    total: DashboardRow
    rows: list[DashboardRow] = Field(
        description="One per value of `by`, assessments in course order, others by key (null last). By group an "
        "attempt counts in each of its learner's groups, so the rows may add up to more than the total."
    )
