"""AGS 2.0 shapes: line items, scores and results as tools send and read them (camelCase, the spec's names).

Tools send fields of their own (extensions such as Canvas's submission data, the `id` they read): unknown
fields are ignored, not refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from gradeflow.access.identity import CourseRef
from gradeflow.core.commands import Moment
from gradeflow.core.errors import ValidationFailed
from gradeflow.core.validation import TITLE_MAX, clean_text
from gradeflow.lti.service.line_items import LineItemIn, LineItemRow
from gradeflow.lti.service.results import ResultRow
from gradeflow.scores.service.external import ToolScore, ToolScoreIn

LINE_ITEM_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINE_ITEM_CONTAINER_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
RESULT_CONTAINER_MEDIA_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"

# As points are stored: numeric(18, 6), below 10^12.
_NUMBER = {"allow_inf_nan": False, "max_digits": 18, "decimal_places": 6, "lt": 10**12}
ToolText = Annotated[str, StringConstraints(max_length=255), AfterValidator(clean_text)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=TITLE_MAX, strip_whitespace=True)]
ScoreMaximum = Annotated[Decimal, Field(gt=0, **_NUMBER)]
ScoreGiven = Annotated[Decimal, Field(ge=0, **_NUMBER)]


def _lenient_time(value: Any) -> Any:
    """ISO 8601 with or without fractions (more than 6 digits are cut), `Z`, `+00:00` or `+0000`; a time
    without an offset is UTC."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError("Not an ISO 8601 date and time.") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


ToolTime = Annotated[Moment, BeforeValidator(_lenient_time)]


def _id_text(value: Any) -> Any:
    """An LMS id sent as a JSON number (some tools do) is the same id as text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class AgsInput(BaseModel):
    """Base of AGS bodies: the spec's names, fields unknown to it ignored, all text storable."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return clean_text(value)


class LineItemBody(AgsInput):
    """A line item a tool creates (POST) or replaces (PUT): label and scoreMaximum required, the tool's own
    fields stored as sent (left as they are when a PUT omits them)."""

    label: Label
    score_maximum: ScoreMaximum = Field(alias="scoreMaximum", description="The assessment's points (> 0).")
    resource_id: ToolText | None = Field(default=None, alias="resourceId")
    resource_link_id: ToolText | None = Field(default=None, alias="resourceLinkId")
    tag: ToolText | None = None
    start_date_time: ToolTime | None = Field(default=None, alias="startDateTime")
    end_date_time: ToolTime | None = Field(default=None, alias="endDateTime")

    def command(self) -> LineItemIn:
        given = self.model_fields_set - {"label", "score_maximum"}
        return LineItemIn(**self.model_dump(include={"label", "score_maximum", *given}), given=frozenset(given))


class ExposeBody(AgsInput):
    """A planner exposing an assessment to the course's tools: the line item's fields (a label renames the
    assessment)."""

    model_config = ConfigDict(extra="forbid")

    label: Label | None = None
    resource_id: ToolText | None = None
    resource_link_id: ToolText | None = None
    tag: ToolText | None = None

    def command(self) -> LineItemIn:
        given = self.model_fields_set - {"label"}
        return LineItemIn(label=self.label, **self.model_dump(include=given), given=frozenset(given))


ActivityProgress = Literal["Initialized", "Started", "InProgress", "Submitted", "Completed"]
GradingProgress = Literal["FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"]

# What the attempt's status becomes: graded (with a score), pending grading, or else where the activity is.
_GRADING_STATUS = {"Pending": "pending_grading", "PendingManual": "pending_grading"}
_ACTIVITY_STATUS = {
    "Initialized": "to_be_taken",
    "Started": "in_progress",
    "InProgress": "in_progress",
    "Submitted": "submitted",
    "Completed": "submitted",
}


class ScoreBody(AgsInput):
    user_id: Annotated[str, BeforeValidator(_id_text), StringConstraints(min_length=1, max_length=255)] = Field(
        alias="userId", description="The learner's LMS id (the enrollment's external id)."
    )
    score_given: ScoreGiven | None = Field(
        default=None, alias="scoreGiven", description="Absent: the learner's score is cleared."
    )
    score_maximum: ScoreMaximum | None = Field(
        default=None,
        alias="scoreMaximum",
        description="Required with scoreGiven; the score is rescaled to the line item's points.",
    )
    comment: Annotated[str, StringConstraints(max_length=5000)] | None = Field(
        default=None, description="Feedback the learner sees once the result is published (empty: removed)."
    )
    timestamp: ToolTime = Field(description="Strictly increasing per line item and learner.")
    activity_progress: ActivityProgress = Field(alias="activityProgress")
    grading_progress: GradingProgress = Field(alias="gradingProgress")

    def check(self) -> None:
        if self.score_given is not None and self.score_maximum is None:
            raise ValidationFailed.one("/scoreMaximum", "Required when scoreGiven is given.")

    def command(self, ref: CourseRef, tool_id: int, line_item_id: int) -> ToolScoreIn:
        """The score as the score path takes it."""
        self.check()
        score = ToolScore(
            ref.id,
            ref.organization_id,
            line_item_id,
            tool_id,
            self.user_id,
            self.score_given,
            self.score_maximum,
            self.timestamp,
        )
        return ToolScoreIn(score, self.status(), self.comment)

    def status(self) -> str:
        """The attempt's status the score sets."""
        if self.grading_progress == "FullyGraded" and self.score_given is not None:
            return "graded"
        return _GRADING_STATUS.get(self.grading_progress) or _ACTIVITY_STATUS[self.activity_progress]


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def line_item_json(row: LineItemRow, url: str) -> dict[str, Any]:
    """The line item as AGS shows it (`url` its id)."""
    body: dict[str, Any] = {"id": url, "label": row.label, "scoreMaximum": _number(row.points)}
    for name, value in (
        ("resourceId", row.resource_id),
        ("resourceLinkId", row.resource_link_id),
        ("tag", row.tag),
        ("startDateTime", row.start_date_time),
        ("endDateTime", row.end_date_time),
    ):
        if value is not None:
            body[name] = value.isoformat() if isinstance(value, datetime) else value
    return body


def result_json(row: ResultRow, line_item_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"{line_item_url}/results/{row.id}",
        "scoreOf": line_item_url,
        "userId": row.learner,
        "resultMaximum": _number(row.possible),
    }
    if row.score is not None:
        body["resultScore"] = _number(row.score)
    if row.comment is not None:
        body["comment"] = row.comment
    return body


class LineItemOut(BaseModel):
    """A line item (AGS 2.0)."""

    id: str = Field(description="Its URL.")
    label: str
    score_maximum: float = Field(alias="scoreMaximum")
    resource_id: str | None = Field(default=None, alias="resourceId")
    resource_link_id: str | None = Field(default=None, alias="resourceLinkId")
    tag: str | None = None
    start_date_time: datetime | None = Field(default=None, alias="startDateTime")
    end_date_time: datetime | None = Field(default=None, alias="endDateTime")


class ResultOut(BaseModel):
    """A learner's result at a line item (AGS 2.0)."""

    id: str
    score_of: str = Field(alias="scoreOf")
    user_id: str = Field(alias="userId")
    result_score: float | None = Field(default=None, alias="resultScore")
    result_maximum: float = Field(alias="resultMaximum")
    comment: str | None = None


class StaffLineItemOut(BaseModel):
    """A line item as staff see it: which assessment it is and which tool created it (null: a planner exposed it)."""

    id: str = Field(description="The line item's URL (what tools name it by).")
    assessment: str
    label: str = Field(description="The assessment's title.")
    score_maximum: float = Field(description="The assessment's points.")
    tool: int | None = Field(description="The tool that created it; null: a planner exposed the assessment.")
    resource_id: str | None = None
    resource_link_id: str | None = None
    tag: str | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None

    @classmethod
    def of(cls, row: LineItemRow, url: str) -> StaffLineItemOut:
        return cls(
            id=url,
            assessment=row.assessment,
            label=row.label,
            score_maximum=_number(row.points),
            tool=row.tool_id,
            resource_id=row.resource_id,
            resource_link_id=row.resource_link_id,
            tag=row.tag,
            start_date_time=row.start_date_time,
            end_date_time=row.end_date_time,
        )
