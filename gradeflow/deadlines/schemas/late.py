"""A course's late and missing submission policy (Canvas's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from gradeflow.http.schemas import Num, Out


class LateApplicationOut(Out):
    status: Literal["applied", "queued", "running"] = Field(
        description="applied: every result follows the policy; queued/running: the worker is applying it."
    )
    requested_at: datetime | None = Field(
        description="When the pending application was asked for (a policy, due "
        "date or group override change); null once applied."
    )
    learners_done: int | None = Field(description="Learners of the course done so far in this application.")
    results_changed: int | None = Field(description="Results changed so far in this application.")


class LatePolicyOut(Out):
    missing_submission_deduction_enabled: bool
    missing_submission_deduction: Num = Field(description="Percent of points possible a missing result loses.")
    late_submission_deduction_enabled: bool
    late_submission_deduction: Num = Field(description="Percent of points possible deducted per interval late.")
    late_submission_interval: Literal["hour", "day"]
    late_submission_minimum_percent_enabled: bool
    late_submission_minimum_percent: Num = Field(
        description="A late deduction never takes a score below this percent of points possible."
    )
    revision: int = Field(description="Increases with every change; 0 until the course has a policy.")
    updated_by: str | None
    updated_at: datetime | None
    application: LateApplicationOut = Field(
        description="The policy applied to the course's results: a change is applied by the worker, in the "
        "background, within seconds to a minute for the largest courses."
    )
