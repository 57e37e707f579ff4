"""Course sessions' and learner groups' shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gradeflow.http.schemas import Out


class SessionOut(Out):
    external_id: str = Field(description="The session's id in the LMS (the `session` filter of results and reports).")
    title: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    attempts: int = Field(description="Attempts in the session.")
    created_at: datetime
    updated_at: datetime


class SessionAttemptsAdded(Out):
    session: str
    asked: int = Field(description="Pairs in the request.")
    added: int = Field(description="Attempts put in the session (moved from another one, or new).")
    created: int = Field(description="Of those, attempts that did not exist (created `to_be_taken`).")
    unchanged: int = Field(description="Attempts that were in the session already.")


class SessionAttemptsRemoved(Out):
    session: str
    asked: int = Field(description="Pairs in the request.")
    removed: int = Field(description="Attempts taken out of the session (they stay, in no session).")
    unchanged: int = Field(description="Pairs without an attempt in the session.")


class GroupOut(Out):
    name: str
    learners: int = Field(description="Enrollments in the group.")
    archived: bool = Field(description="Archived: its learners are hidden unless a filter includes archived groups.")
    archived_at: datetime | None
    archived_by: str | None
