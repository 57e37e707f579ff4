"""Publishing commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from gradeflow.core.commands import (
    Command,
    ExternalId,
    Moment,
    ResultShow,
    ShortText,
    Text,
    check_unique,
    window_ends_after_start,
)
from gradeflow.core.errors import FieldError, ValidationFailed

PublicationAction = Literal["publish", "retract"]


class Audience(Command):
    """Whose results: exactly one of the fields (`all` or `unpublished` set to true, or a list)."""

    all: bool = False
    unpublished: bool = Field(
        default=False, description="Every result not yet published, or changed since it was published."
    )
    learners: list[ExternalId] | None = Field(default=None, min_length=1, max_length=10_000)
    cohorts: list[ShortText] | None = Field(default=None, min_length=1, max_length=1000)
    groups: list[ShortText] | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one(self) -> Audience:
        chosen = [self.all, self.unpublished, *(x is not None for x in (self.learners, self.cohorts, self.groups))]
        if sum(chosen) != 1:
            raise ValidationFailed.one(
                "/audience", "Choose exactly one of all, unpublished, learners, cohorts or groups."
            )
        return self


class PublicationRequest(Command):
    action: PublicationAction = "publish"
    assessments: list[ExternalId] = Field(default_factory=list, max_length=1000)
    course_grade: bool = Field(default=False, description="The course grade, alone or with assessments.")
    audience: Audience
    show: ResultShow = Field(default="total_only", description="with_items: item scores and item feedback are visible.")
    notify_email: bool = False
    publish_at: Moment | None = Field(default=None, description="In the future: publish then, from the worker.")

    @model_validator(mode="after")
    def _what(self) -> PublicationRequest:
        if not self.assessments and not self.course_grade:
            raise ValidationFailed.one("/assessments", "Name assessments, the course grade, or both.")
        check_unique(self.assessments, "assessments", None)
        if self.action == "retract" and (self.notify_email or self.publish_at is not None):
            pointer = "/notify_email" if self.notify_email else "/publish_at"
            raise ValidationFailed.one(pointer, "A retraction takes effect at once and sends no e-mail.")
        return self


# --- candidate review sessions ---------------------------------------------------------------------


class ReviewAudience(Command):
    """Who may review: a learner named, or in a group or cohort named; every list empty: every learner
    with a published result of the assessment."""

    learners: list[ExternalId] = Field(default_factory=list, max_length=10_000)
    groups: list[ShortText] = Field(default_factory=list, max_length=1000)
    cohorts: list[ShortText] = Field(default_factory=list, max_length=1000)


class ReviewSessionIn(Command):
    external_id: ExternalId
    title: Text | None = None
    starts_at: Moment = Field(description="The window opens at this time (included).")
    ends_at: Moment = Field(description="... and closes at this time (excluded); later than starts_at.")
    audience: ReviewAudience = Field(default_factory=ReviewAudience)

    @model_validator(mode="after")
    def _window(self) -> ReviewSessionIn:
        window_ends_after_start(self.starts_at, self.ends_at)
        return self


class ReviewSessionPatch(Command):
    """The fields to change (the audience is replaced as a whole); null clears the title."""

    title: Text | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    audience: ReviewAudience | None = None

    @model_validator(mode="after")
    def _not_null(self) -> ReviewSessionPatch:
        given = self.model_fields_set
        nulls = [f for f in ("starts_at", "ends_at", "audience") if f in given and getattr(self, f) is None]
        if nulls:
            raise ValidationFailed([FieldError(f"/{f}", "Must not be null.") for f in nulls])
        return self
