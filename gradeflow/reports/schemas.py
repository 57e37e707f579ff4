"""Report records as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from gradeflow.core.statuses import ReportStatus
from gradeflow.http.schemas import Out


class ReportOut(Out):
    id: int
    course: str
    kind: str
    params: dict[str, Any]
    requested_by: str
    status: ReportStatus
    progress: int = Field(description="0-100")
    message: str | None
    rows: int | None
    bytes: int | None
    sha256: str | None
    file_name: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="When the file is deleted (retention).")
    download_url: str | None = Field(
        description="Once succeeded: a signed link minted for this answer. Do not store it: it stops working at "
        "download_expires_at (five minutes)."
    )
    download_expires_at: datetime | None
