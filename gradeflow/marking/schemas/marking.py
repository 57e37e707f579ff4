"""Marking shapes."""

from __future__ import annotations

from datetime import datetime

from gradeflow.http.schemas import Out


class AllocationResult(Out):
    allocated: int
    per_grader: dict[str, int]


class AllocationOut(Out):
    learner: str
    item: str | None
    grader: str
    role: str


class QueueEntry(Out):
    assessment: str
    learner: str
    item: str
    role: str
    marking_as: str


class QueueOut(Out):
    grader: str
    to_mark: list[QueueEntry]
    counts: dict[str, int]


class MarkResult(Out):
    learner: str
    item: str
    role: str
    marked_as: str
    points: float
    status: str


class MarkOut(Out):
    learner: str
    item: str
    grader: str
    role: str
    points: float
    comment: str | None
    updated_at: datetime
    reconciled: bool


class ConfirmSkipped(Out):
    learner: str
    reason: str


class ConfirmResult(Out):
    confirmed: list[str]
    skipped: list[ConfirmSkipped]


class RescoreOut(Out):
    id: int
    assessment: str
    item: str
    mode: str
    old_points: float
    new_points: float
    status: str
    progress: int
    rescored: int
    requested_by: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class WorkgroupOut(Out):
    name: str
    members: list[str]
