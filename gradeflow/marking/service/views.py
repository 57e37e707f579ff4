"""What marking's and moderation's use cases answer, where no repository row has the shape already."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Literal, TypeVar

from gradeflow.marking.repository.marking import Mark, QueueRow
from gradeflow.marking.repository.moderation import GraderCounts, Sample, Scaling

# Where an item's marks stand (marking.reconcile).
ItemMarkStatus = Literal["moderated", "reconciled", "awaiting_final_grader", "awaiting_marks", "needs_third_marker"]
# Where an assessment's moderation stands (marking.moderation_state).
ModerationState = Literal["not_required", "not_started", "in_progress", "complete"]

V = TypeVar("V")


def extended(row: Any, view: type[V], **extra: object) -> V:
    """A view that extends a row (a dataclass it subclasses): the row's fields as they are, and `extra`."""
    return view(**{f.name: getattr(row, f.name) for f in fields(row)}, **extra)


@dataclass(frozen=True, slots=True)
class Allocated:
    allocated: int
    per_grader: dict[str, int]


@dataclass(frozen=True, slots=True)
class Released:
    """A grader taken off an assessment: how many units they held, and who took how many of them."""

    removed: int
    reallocated: dict[str, int]


@dataclass(frozen=True, slots=True)
class MarkingQueue:
    grader: str
    to_mark: list[QueueRow]  # the learner as the grader sees them
    counts: dict[str, int]  # assessment -> items to mark


@dataclass(frozen=True, slots=True)
class Reconciled:
    """An item's score from its marks (None: none yet), where they stand, and who decided it."""

    status: ItemMarkStatus
    score: Decimal | None
    decided_by: str | None


@dataclass(frozen=True, slots=True)
class MarkDone:
    """A mark recorded: the learner as the caller named them, and where the item's marks stand now."""

    learner: str
    item: str
    role: str
    marked_as: str
    points: Decimal
    status: ItemMarkStatus


@dataclass(frozen=True, slots=True)
class Skipped:
    learner: str
    reason: str


@dataclass(frozen=True, slots=True)
class Confirmation:
    confirmed: list[str]
    skipped: list[Skipped]


@dataclass(frozen=True, slots=True)
class ModerationStatus:
    assessment: str
    required: bool
    status: ModerationState
    sampled: int
    pending: int
    graders: list[GraderCounts]
    scalings: list[Scaling]


@dataclass(frozen=True, slots=True)
class SampleAdded(ModerationStatus):
    added: int
    added_per_grader: dict[str, int]


@dataclass(frozen=True, slots=True)
class SampleItem:
    """A manual item of a sampled attempt: the graders' marks as given, the moderator's, and the score."""

    item: str
    points_possible: Decimal
    marks: list[Mark]
    moderator: Mark | None
    score: Decimal | None


@dataclass(frozen=True, slots=True)
class SampleView(Sample):
    """A sampled attempt (the learner as the caller sees them) with its manual items."""

    items: list[SampleItem]


@dataclass(frozen=True, slots=True)
class ScalingSet(Scaling):
    rescored: int  # item scores that changed
