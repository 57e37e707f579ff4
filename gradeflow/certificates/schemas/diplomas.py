"""Diplomas and a learner's own certificates as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from gradeflow.http.schemas import Out


class DiplomaOut(Out):
    status: Literal["ready", "rendering"] = Field(
        description="ready: the link below works for five minutes; rendering: the diploma is being drawn"
        " (202, ask again after `Retry-After` seconds)."
    )
    code: str = Field(description="The certificate's verification code, printed on the diploma.")
    file_name: str | None = None
    bytes: int | None = None
    download_url: str | None = Field(default=None, description="A signed link, never stored: fetch it now.")
    download_expires_at: datetime | None = None


class MyCertificateOut(Out):
    code: str = Field(description="The certificate's verification code (names its diploma).")
    assessment: str | None = Field(description="The assessment certified; null: the course certificate.")
    title: str = Field(description="The diploma's title.")
    type: str = Field(description="The learner's track when it was issued.")
    issued_at: datetime
    diploma_ready: bool = Field(description="Whether the diploma is drawn (else asking for it has it drawn).")


class MyCertificates(Out):
    course: str
    certificates: list[MyCertificateOut]
