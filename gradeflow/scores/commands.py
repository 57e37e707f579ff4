"""Scores commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from gradeflow.core.commands import Command, ExternalId, Moment, Points, ShortText, check_unique
from gradeflow.core.errors import ValidationFailed
from gradeflow.core.statuses import AttemptStatus, ScoreSource


class AttemptIn(Command):
    status: AttemptStatus
    started_at: Moment | None = None
    submitted_at: Moment | None = None


class ItemScoreIn(Command):
    item: ExternalId
    earned: Points
    possible: Points | None = None


class ScoreIn(Command):
    """An assessment's score for one learner: `earned` directly, or `items` for an assessment with items."""

    earned: Points | None = None
    possible: Points | None = Field(default=None, description="Defaults to the assessment's points possible.")
    items: list[ItemScoreIn] | None = Field(default=None, min_length=1, max_length=1000)
    source: ScoreSource = "auto"
    graded_by: ShortText | None = Field(default=None, description="Who scored it (defaults to the caller).")

    @model_validator(mode="after")
    def _one_of(self) -> ScoreIn:
        if (self.earned is None) == (self.items is None):
            detail = "Give either earned (an assessment without items) or items, not both."
            raise ValidationFailed.one("/earned" if self.earned is None else "/items", detail)
        if self.items:
            check_unique([i.item for i in self.items], "items", "item")
        return self


class ScoreRow(Command):
    assessment: ExternalId
    learner: ExternalId
    item: ExternalId | None = Field(default=None, description="Set for an item score; omit for an assessment score.")
    earned: Points
    possible: Points | None = None
    source: ScoreSource = "auto"
    graded_by: ShortText | None = None


class ScoreBatch(Command):
    scores: list[ScoreRow] = Field(min_length=1, max_length=10_000)


FEEDBACK_MAX = 5000


class FeedbackIn(Command):
    """What the learner is to read about their work (apart from the markers' marks and comments)."""

    text: Annotated[str, StringConstraints(max_length=FEEDBACK_MAX)] | None = Field(
        description=f"At most {FEEDBACK_MAX} characters; null (or only white space) removes the feedback."
    )


class RescoreRequest(Command):
    points_possible: Points | None = Field(default=None, description="The item's new points (default: unchanged).")
    mode: Literal["scale", "full_credit", "keep"] = Field(
        default="scale",
        description="scale: earned points scale with the new points; full_credit: everyone scored gets full "
        "points (a faulty question); keep: earned points stay, only points possible change.",
    )
