"""Marking shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AllocationResult(BaseModel):
    allocated: int
    per_grader: dict[str, int]


class AllocationOut(BaseModel):
    learner: str
    item: str | None
    grader: str
    role: str


class QueueEntry(BaseModel):
    assessment: str
    learner: str
    item: str
    role: str
    marking_as: str


class QueueOut(BaseModel):
    grader: str
    to_mark: list[QueueEntry]
    counts: dict[str, int]


class MarkResult(BaseModel):
    learner: str
    item: str
    role: str
    marked_as: str
    points: float
    status: str


class MarkOut(BaseModel):
    learner: str
    item: str
    grader: str
    role: str
    points: float
    comment: str | None
    updated_at: datetime
    reconciled: bool


class ConfirmSkipped(BaseModel):
    learner: str
    reason: str


class ConfirmResult(BaseModel):
    confirmed: list[str]
    skipped: list[ConfirmSkipped]


class RescoreOut(BaseModel):
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


class WorkgroupOut(BaseModel):
    name: str
    members: list[str]
