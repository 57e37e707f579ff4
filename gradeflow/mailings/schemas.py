"""Candidate mailings and learners' documents as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from gradeflow.core.statuses import MailingStatus
from gradeflow.http.schemas import Out


class LetterCounts(Out):
    """The mailing's letters (one per candidate) per status; they add up to `total`."""

    total: int
    preparing: int = Field(description="Waiting for their report to be made.")
    queued: int = Field(description="Waiting to be sent, or for a retry.")
    sending: int
    sent: int
    failed: int = Field(description="Refused for good, out of tries, or interrupted while sending (never resent).")
    skipped: int = Field(description="Nothing to send: no published result, no e-mail address, revoked, cancelled.")


class MailingOut(Out):
    id: int
    course: str
    kind: Literal["reports", "certificates"]
    params: dict[str, Any]
    status: MailingStatus
    counts: LetterCounts
    requested_by: str
    created_at: datetime
    done_at: datetime | None
    error: str | None


class DocumentOut(Out):
    id: int
    kind: Literal["individual_report"]
    assessment: str
    assessment_title: str
    language: str
    file_name: str
    bytes: int
    created_at: datetime
    expires_at: datetime | None = Field(description="When the file is deleted.")


class DocumentLink(Out):
    id: int
    download_url: str = Field(
        description="A signed link minted for this answer. Do not store it: it stops working at download_expires_at "
        "(five minutes)."
    )
    download_expires_at: datetime
    file_name: str
    bytes: int
