"""Moderation shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gradeflow.core.statuses import SampleStatus
from gradeflow.http.schemas import Out
from gradeflow.marking.service.views import ModerationState


class GraderModeration(Out):
    grader: str = Field(description="The grader (or workgroup) whose stratum this is: the first marker of attempts.")
    marked: int = Field(description="Attempts this grader marked first.")
    sampled: int
    pending: int
    agreed: int
    adjusted: int


class ScalingOut(Out):
    grader: str
    factor: float = Field(description="The grader's marks count times this, capped at each item's points.")
    reason: str | None
    scaled_by: str
    updated_at: datetime


class ModerationOut(Out):
    assessment: str
    required: bool = Field(description="Confirming grading needs moderation complete (`moderation_required`).")
    status: ModerationState = Field(
        description="not_required / not_started: no sample yet (not_started when moderation is required and "
        "graders marked work; work scored without marks is not moderated); in_progress: sampled attempts pending "
        "(a grader changing a mark of a decided attempt sends it back to pending); complete: every sampled "
        "attempt agreed or adjusted."
    )
    sampled: int
    pending: int
    graders: list[GraderModeration]
    scalings: list[ScalingOut]


class SampleAdded(ModerationOut):
    added: int = Field(description="Attempts this request put in the sample.")
    added_per_grader: dict[str, int]


class ItemMark(Out):
    grader: str
    role: str
    points: float
    comment: str | None


class SampleItem(Out):
    item: str
    points_possible: float
    marks: list[ItemMark] = Field(description="The graders' marks, as given (never changed by moderation).")
    moderator: ItemMark | None = Field(description="The moderator's mark: when present, it is the item's score.")
    score: float | None = Field(description="The item's score now (scaling and moderation applied).")


class SampleOut(Out):
    learner: str = Field(description="The learner; a candidate label for moderators on an anonymous assessment.")
    grader: str | None = Field(description="The stratum: the attempt's first marker.")
    status: SampleStatus
    moderator: str | None
    decided_at: datetime | None
    note: str | None
    picked_by: str
    picked_at: datetime
    earned: float | None = Field(description="The attempt's result now.")
    possible: float | None
    items: list[SampleItem]


class ScalingResult(ScalingOut):
    rescored: int = Field(description="Item scores that changed.")
