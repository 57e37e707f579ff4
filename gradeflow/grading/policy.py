"""Grading policy and evaluation input, validated with JSON pointers for every bad field."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, model_validator

from gradeflow.core.errors import FieldError, ValidationFailed
from gradeflow.core.validation import TITLE_MAX, Input
from gradeflow.grading import letters

# Bounded so that no arithmetic on them can overflow a double.
Finite = Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]


def _stored_points(x: float) -> float:
    if 0 < x < 1e-6:
        raise ValueError("points possible are 0 or at least 0.000001, the finest a stored score keeps")
    return x


# Points possible as a course stores them (6 decimal places): a smaller non-zero value is no real
# assessment, and would send percents past what a double holds.
PointsPossible = Annotated[NonNegative, AfterValidator(_stored_points)]
Share = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
AssessmentId = Annotated[str, Field(min_length=1, max_length=255)]
Preset = Literal["standard", "openedx", "canvas"]


class Strict(Input):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(Strict):
    name: Name
    short_label: Annotated[str, Field(max_length=50)] | None = None
    weight: Share = Field(description="A fraction: 0.15 is 15 %.")
    drop_lowest: Annotated[int, Field(ge=0, le=10_000)] = 0
    drop_highest: Annotated[int, Field(ge=0, le=10_000)] = 0
    min_count: Annotated[int, Field(ge=0, le=10_000)] = 0
    never_drop: list[AssessmentId] = Field(default_factory=list, max_length=10_000)


class Cutoff(Strict):
    grade: Annotated[str, Field(min_length=1, max_length=50)]
    min: Share = Field(description="A fraction; above 1 is legal (extra credit).")


class CatalogueEntry(Strict):
    id: AssessmentId
    category: Name
    possible: PointsPossible
    label: Annotated[str, Field(max_length=TITLE_MAX)] | None = None
    omit_from_final: bool = False


class PolicyRules(Strict):
    """A policy as a course stores it: the course's assessments are its catalogue."""

    preset: Preset = "standard"
    weighting: Literal["categories", "points"] = "categories"
    categories: list[Category] = Field(default_factory=list, max_length=200)
    cutoffs: list[Cutoff] = Field(default_factory=list, max_length=100)
    pass_min: Share | None = Field(default=None, description="Defaults to the lowest cutoff above 0.")
    decimals: Annotated[int, Field(ge=0, le=6)] = Field(
        default=2, description="Decimals of the rounded percent (standard preset)."
    )

    def cutoffs_high_first(self) -> list[Cutoff]:
        """The cutoffs from the highest minimum down (equal minimums keep the policy's order)."""
        return letters.high_first(self.cutoffs)

    def pass_mark(self) -> float | None:
        if self.pass_min is not None:
            return self.pass_min
        positive = [c.min for c in self.cutoffs if c.min > 0]
        return min(positive) if positive else None


class Policy(PolicyRules):
    """A policy with its assessment catalogue: everything the engine needs."""

    assessments: list[CatalogueEntry] = Field(
        default_factory=list, max_length=10_000, description="The course's assessments, in course order."
    )

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Policy:
        # Pointers are relative to where the policy sits in the request ("/policy" in evaluate).
        at = (info.context or {}).get("pointer", "/policy")
        errors: list[FieldError] = []
        seen: dict[str, int] = {}
        for i, c in enumerate(self.categories):
            if c.name in seen:
                errors.append(FieldError(f"{at}/categories/{i}/name", f"repeats {at}/categories/{seen[c.name]}"))
            seen.setdefault(c.name, i)
        ids: dict[str, int] = {}
        for i, a in enumerate(self.assessments):
            if a.id in ids:
                errors.append(FieldError(f"{at}/assessments/{i}/id", f"repeats {at}/assessments/{ids[a.id]}"))
            ids.setdefault(a.id, i)
        for i, c in enumerate(self.categories):
            for j, aid in enumerate(c.never_drop):
                if aid not in ids:
                    errors.append(FieldError(f"{at}/categories/{i}/never_drop/{j}", f"unknown assessment {aid!r}"))
        for i in range(1, len(self.cutoffs)):
            if self.cutoffs[i].min > self.cutoffs[i - 1].min:
                errors.append(FieldError(f"{at}/cutoffs/{i}/min", "cutoffs must be in descending order"))
        if errors:
            raise ValidationFailed(errors)
        return self


class EvaluationScore(Strict):
    assessment_id: AssessmentId
    earned: Finite | None = Field(description="null: not graded yet.")
    possible: PointsPossible | None = Field(default=None, description="Overrides the catalogue for this learner.")
    excused: bool = False


class LearnerIn(Strict):
    learner_id: Annotated[str, Field(min_length=1, max_length=255)]
    scores: list[EvaluationScore] = Field(default_factory=list, max_length=10_000)


class EvaluateRequest(Strict):
    policy: Policy
    learners: list[LearnerIn] = Field(max_length=10_000)


def exact(x: float) -> Decimal:
    """The decimal a client wrote: JSON numbers arrive as doubles, whose shortest repr is what was sent."""
    return Decimal(repr(x)) if x == x else Decimal(0)
