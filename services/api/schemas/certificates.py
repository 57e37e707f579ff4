"""The certificate allow list, generations and certificates as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from services.api.schemas.common import Out


class AllowanceOut(Out):
    learner: str
    notes: str | None
    created_by: str = Field(description="Who put the learner on the allow list.")
    created_at: datetime


class GenerationOut(Out):
    id: int
    policy_version: int | None = Field(description="The served grading policy version the decision used.")
    eligible: int = Field(description="Learners eligible at that moment (each holds a certificate of it).")
    created_by: str
    created_at: datetime


class GenerationResult(GenerationOut):
    issued: int = Field(description="Learners whose certificate is new, or changed its type or reason.")
    revoked: int = Field(description="Learners who lost their certificate (no longer eligible).")


class CertificateOut(Out):
    learner: str
    type: str = Field(description="The learner's track when the certificate was issued.")
    reason: Literal["passing", "allowlist"]
    generation_id: int
    created_at: datetime = Field(description="When the certificate was issued in its present type and reason.")
