"""Certificates commands: what the API accepts as request bodies and the use cases take."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    model_validator,
)

from gradeflow.core.commands import Command, ExternalId
from gradeflow.core.errors import ValidationFailed
from gradeflow.core.validation import clean_text
from gradeflow.reports.commands import ReportLanguage

# --- certifications -------------------------------------------------------------------------------

# An organization's certificate image (logo, signature): a name of its choosing, usable in a path.
ImageName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"),
    Field(description="An image's name: letters, digits, '.', '_' and '-', at most 100 characters."),
]
CertificationRule = Literal["course_passing", "course_percent", "assessment_percent"]
# A line a diploma prints: never blank (spaces around it are dropped, so one of spaces alone is refused).
DiplomaLine = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(clean_text)
]


class CertificationIn(Command):
    """What a course or an assessment certifies: who passes (the rule), and what the diploma says."""

    rule: CertificationRule | None = Field(
        default=None,
        description="course_passing: a passing course grade (Open edX's rule); course_percent: a course grade of"
        " at least `threshold` percent; assessment_percent (an assessment's certification, and only there): a"
        " final result of at least `threshold` percent. Absent: assessment_percent for an assessment, else"
        " course_percent with a threshold and course_passing without.",
    )
    threshold: Decimal | None = Field(
        default=None, ge=0, le=100, max_digits=7, decimal_places=4, description="The pass mark in percent (0-100)."
    )
    title: DiplomaLine = Field(description='The diploma\'s title ("Certificate of achievement").')
    body: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), AfterValidator(clean_text)
        ]
        | None
    ) = Field(default=None, description="The text under the learner's name.")
    language: ReportLanguage = "en"
    signatory_name: DiplomaLine | None = None
    signatory_title: DiplomaLine | None = None
    logo_image: ImageName | None = Field(default=None, description="An image of the organization (its name).")
    signature_image: ImageName | None = Field(default=None, description="An image of the organization (its name).")

    @model_validator(mode="after")
    def _coherent(self) -> CertificationIn:
        if self.rule == "course_passing" and self.threshold is not None:
            raise ValidationFailed.one("/threshold", "The rule course_passing takes no threshold.")
        if self.rule in ("course_percent", "assessment_percent") and self.threshold is None:
            raise ValidationFailed.one("/threshold", f"The rule {self.rule} needs a threshold (0-100).")
        return self


class RevokeIn(Command):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(clean_text)] = Field(
        description="Why the certificate is revoked (on the record and in the event)."
    )
    assessment: ExternalId | None = Field(
        default=None, description="The assessment's certificate (absent: the course's)."
    )


class ReinstateIn(Command):
    assessment: ExternalId | None = Field(
        default=None, description="The assessment's certificate (absent: the course's)."
    )


class GenerateIn(Command):
    assessment: ExternalId | None = Field(
        default=None, description="Generate the assessment's certification (absent: the course's)."
    )
