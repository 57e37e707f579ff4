"""Marking commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from gradeflow.core.commands import Command, ExternalId, Points, check_unique
from gradeflow.core.errors import ValidationFailed


class AllocationRequest(Command):
    graders: list[ExternalId] = Field(min_length=1, max_length=500)
    mode: Literal["even", "random"] = "even"
    seed: int | None = Field(default=None, description="For mode random: the same seed gives the same allocation.")
    by: Literal["candidate", "item"] = "candidate"
    role: Literal["marker", "third"] = Field(
        default="marker", description="third: allocate the items whose marks differ by more than the threshold."
    )

    @model_validator(mode="after")
    def _unique_graders(self) -> AllocationRequest:
        check_unique(list(self.graders), "graders", "")
        return self


class MarkIn(Command):
    points: Points
    comment: Annotated[str, StringConstraints(max_length=10_000)] | None = None


class ConfirmRequest(Command):
    learners: list[ExternalId] | None = Field(
        default=None, max_length=10_000, description="Default: every graded attempt not confirmed yet."
    )


class WorkgroupIn(Command):
    members: list[ExternalId] = Field(min_length=1, max_length=100)


# --- moderation -----------------------------------------------------------------------------------

ModerationNote = Annotated[str, StringConstraints(max_length=5000)]


class ModerationSampleRequest(Command):
    """What to add to an assessment's moderation sample: a percentage of each grader's marked attempts,
    chosen at random, and/or the attempts of listed learners."""

    percent: Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False, max_digits=9, decimal_places=6)] | None = (
        Field(
            default=None,
            description="Of each grader's marked attempts (an attempt is its first marker's), this percentage "
            "rounded up, at least one per grader; attempts already sampled count towards it.",
        )
    )
    learners: list[ExternalId] | None = Field(
        default=None, min_length=1, max_length=10_000, description="These learners' marked attempts."
    )

    @model_validator(mode="after")
    def _some(self) -> ModerationSampleRequest:
        if self.percent is None and self.learners is None:
            raise ValidationFailed.one("/percent", "Give a percent, a list of learners, or both.")
        if self.learners is not None:
            check_unique(list(self.learners), "learners", "")
        return self


class ModerationAgreement(Command):
    note: ModerationNote | None = Field(default=None, description="At most 5000 characters.")


class ModeratorMark(Command):
    item: ExternalId
    points: Points


class ModerationAdjustment(Command):
    """The moderator's marks for the listed manual items; each becomes the item's score (the graders'
    marks stay as they were)."""

    items: list[ModeratorMark] = Field(min_length=1, max_length=1000)
    note: ModerationNote | None = Field(default=None, description="At most 5000 characters.")

    @model_validator(mode="after")
    def _unique_items(self) -> ModerationAdjustment:
        check_unique([m.item for m in self.items], "items", "item")
        return self


class ScalingIn(Command):
    factor: Annotated[Decimal, Field(gt=0, le=10, allow_inf_nan=False, max_digits=9, decimal_places=6)] = Field(
        description="The grader's marks count times this (capped at each item's points, 6 decimals)."
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="Why (kept in the audit trail)."
    )
