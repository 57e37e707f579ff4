"""Certifications, certificate images, the allow list, generations and certificates as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from gradeflow.http.schemas import Num, Out


class AllowanceOut(Out):
    learner: str
    notes: str | None
    created_by: str = Field(description="Who put the learner on the allow list.")
    created_at: datetime


class GenerationOut(Out):
    id: int
    assessment: str | None = Field(description="The assessment whose certification it generated (null: the course's).")
    policy_version: int | None = Field(description="The served grading policy version the decision used.")
    eligible: int = Field(description="Learners eligible at that moment (each holds a certificate of it).")
    created_by: str
    created_at: datetime


class GenerationResult(GenerationOut):
    issued: int = Field(description="Learners whose certificate is new, or changed its type or reason.")
    removed: int = Field(
        description="Certificates the generation removed: their learners are no longer eligible (not a revocation)."
    )


class CertificateOut(Out):
    learner: str
    name: str = Field(
        description="The learner's name as diplomas and reports print it (full name, else given and family names,"
        " else username, else id)."
    )
    email: str | None
    assessment: str | None = Field(description="The assessment certified (null: the course certificate).")
    code: str = Field(description="The verification code the diploma prints.")
    type: str = Field(description="The learner's track when the certificate was issued.")
    reason: Literal["passing", "allowlist"]
    generation_id: int
    issued_at: datetime = Field(description="When the certificate was issued in its present type and reason.")
    created_at: datetime = Field(description="The same as issued_at (the name this list first used).")
    revoked_at: datetime | None = Field(description="When staff revoked it (null: valid).")
    revoked_by: str | None
    revoke_reason: str | None


class CertificationOut(Out):
    assessment: str | None = Field(description="The assessment certified (null: the course).")
    defined: bool = Field(description="false: the course has no certification of its own and certifies by default.")
    rule: Literal["course_passing", "course_percent", "assessment_percent"]
    threshold: Num | None = Field(description="The pass mark in percent (course_percent, assessment_percent).")
    title: str | None = Field(description="The diploma's title (null: the label catalogue's, in `language`).")
    body: str | None
    language: str
    signatory_name: str | None
    signatory_title: str | None
    logo_image: str | None
    signature_image: str | None
    revision: int = Field(description="Goes up on every change (0: the default, never changed).")
    updated_by: str | None
    updated_at: datetime | None


class CertificateImageOut(Out):
    name: str
    content_type: Literal["image/png", "image/jpeg"]
    bytes: int
    width: int
    height: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class CertificateImageLink(CertificateImageOut):
    download_url: str = Field(description="A link to the image, valid five minutes; never cached, never stored.")
    download_expires_at: datetime
