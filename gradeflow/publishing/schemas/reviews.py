"""Candidate review sessions as staff schedule them, and a learner's review, as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gradeflow.publishing.schemas.publishing import MyResult, PublishedItem
from gradeflow.publishing.service.reviews import ReviewState


class ReviewAudienceOut(BaseModel):
    learners: list[str]
    groups: list[str]
    cohorts: list[str]


class ReviewSessionOut(BaseModel):
    external_id: str
    assessment: str
    title: str | None
    starts_at: datetime = Field(description="The window opens at this time (included).")
    ends_at: datetime = Field(description="... and closes at this time (excluded).")
    audience: ReviewAudienceOut = Field(description="Every list empty: every learner with a published result.")
    state: ReviewState
    learners: int = Field(description="Learners the session includes now: in the audience, with a published result.")
    created_by: str
    created_at: datetime
    updated_at: datetime


class ReviewWindow(BaseModel):
    review: str = Field(description="The review session's external id.")
    title: str | None
    starts_at: datetime
    ends_at: datetime


class MyReview(MyResult):
    """A published result as the learner's results show it (``MyResult``), with the items shown in a review and the
    window it is reviewed in. A review always states `excused`, `feedback` and `items` (null or not)."""

    excused: bool
    feedback: str | None = Field(description="Feedback on the assessment written for you.")
    items: list[PublishedItem] | None = Field(
        description="Your item scores and the feedback on each item; null when you are excused, or while your "
        "result has changed since it was published (it shows again once the result is published again)."
    )
    review_session: ReviewWindow = Field(description="The open session you are reviewing in (the one closing last).")
