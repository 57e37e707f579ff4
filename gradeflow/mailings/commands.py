"""Mailings commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from gradeflow.core.commands import Command, ExternalId, Moment, ShortText, check_unique, window_ends_after_start
from gradeflow.core.errors import ValidationFailed
from gradeflow.courses.commands import IncludeArchived, SessionFilter
from gradeflow.reports.commands import ReportLanguage

# --- candidate mailings ---------------------------------------------------------------------------


class MailingRequest(Command):
    """Send each candidate their individual report of an assessment (with their certificate of it,
    where they hold a valid one), or their certificate; the filters choose the candidates."""

    kind: Literal["reports", "certificates"] = Field(
        description="reports: each candidate's individual report (results as published to them); certificates:"
        " each holder of a valid certificate, their certificate."
    )
    assessment: ExternalId | None = Field(
        default=None,
        description="reports: required, the assessment whose published results are sent; certificates: the"
        " assessment's certificate (absent: the course certificate).",
    )
    group: ShortText | None = None
    cohort: ShortText | None = None
    learners: list[ExternalId] | None = Field(default=None, min_length=1, max_length=10_000)
    session: SessionFilter = None
    include_archived: IncludeArchived = False
    since: Moment | None = Field(
        default=None,
        description="reports: attempts taken (submitted, else started) at or after this time; certificates:"
        " certificates issued at or after it.",
    )
    until: Moment | None = Field(default=None, description="... and before this time (later than since).")
    language: ReportLanguage = "en"

    @model_validator(mode="after")
    def _consistent(self) -> MailingRequest:
        if self.kind == "reports" and self.assessment is None:
            raise ValidationFailed.one("/assessment", "Name the assessment whose reports are sent.")
        if sum(x is not None for x in (self.group, self.cohort, self.learners)) > 1:
            pointer = "/learners" if self.learners is not None else "/cohort"
            raise ValidationFailed.one(pointer, "Give one of group, cohort or learners.")
        if self.learners:
            check_unique(self.learners, "learners", None)
        window_ends_after_start(self.since, self.until, "/until", "since")
        return self
