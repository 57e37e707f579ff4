"""Feedback to learners, as staff read and write it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gradeflow.http.schemas import Out


class FeedbackText(Out):
    text: str
    updated_by: str
    updated_at: datetime


class ItemFeedback(FeedbackText):
    item: str


class FeedbackOut(Out):
    assessment: str
    learner: str
    feedback: FeedbackText | None = Field(description="On the assessment as a whole; null when there is none.")
    items: list[ItemFeedback] = Field(description="On items, in the assessment's order (items with feedback only).")
