"""Every status a stored record can be in, each family written once.

Each family is a `Literal` (the type schemas and commands use: it renders as an inline `enum` in the
OpenAPI document, as before) and a tuple of its values derived from it (what the models' CHECK
constraints and code that walks the values use). `sql_in` renders a tuple as the constraint's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

# --- attempts -------------------------------------------------------------------------------------

AttemptStatus = Literal["to_be_taken", "in_progress", "submitted", "pending_grading", "graded", "cancelled"]
ATTEMPT_STATUSES: tuple[AttemptStatus, ...] = get_args(AttemptStatus)

# Where an attempt may go from each status. A new attempt may start in any status.
ATTEMPT_MOVES: Mapping[str, frozenset[AttemptStatus]] = {
    "to_be_taken": frozenset({"in_progress", "submitted", "cancelled"}),
    "in_progress": frozenset({"submitted", "cancelled"}),
    "submitted": frozenset({"pending_grading", "graded", "cancelled"}),
    "pending_grading": frozenset({"graded", "cancelled"}),
    "graded": frozenset({"pending_grading"}),  # re-marking reopens it
    "cancelled": frozenset(),
}

# Attempts the learner has not handed in: the late policy may find them missing.
NOT_HANDED_IN_STATUSES: tuple[AttemptStatus, ...] = ("to_be_taken", "in_progress")
# Handed-in attempts that still wait for marks: what manual marking allocates.
AWAITING_MARKS_STATUSES: tuple[AttemptStatus, ...] = ("submitted", "pending_grading")
# Attempts that may still get a result: a release after the last attempt waits for them.
UNGRADED_STATUSES: tuple[AttemptStatus, ...] = NOT_HANDED_IN_STATUSES + AWAITING_MARKS_STATUSES
# Attempts the learner has handed in: moved back to in_progress, one starts the learner's next attempt.
HANDED_IN_STATUSES: tuple[AttemptStatus, ...] = (*AWAITING_MARKS_STATUSES, "graded")

LateStatus = Literal["late", "missing"]
LATE_STATUSES: tuple[LateStatus, ...] = get_args(LateStatus)

ScoreSource = Literal["auto", "manual", "override"]
SCORE_SOURCES: tuple[ScoreSource, ...] = get_args(ScoreSource)

EnrollmentStatus = Literal["enrolled", "unenrolled"]
ENROLLMENT_STATUSES: tuple[EnrollmentStatus, ...] = get_args(EnrollmentStatus)

# --- jobs kept as records -------------------------------------------------------------------------

RecomputeStatus = Literal["queued", "running", "succeeded", "failed", "superseded"]
RECOMPUTE_STATUSES: tuple[RecomputeStatus, ...] = get_args(RecomputeStatus)

ImportStatus = Literal["queued", "running", "succeeded", "failed", "reverted"]
IMPORT_STATUSES: tuple[ImportStatus, ...] = get_args(ImportStatus)

RescoreStatus = Literal["queued", "running", "succeeded", "failed"]
RESCORE_STATUSES: tuple[RescoreStatus, ...] = get_args(RescoreStatus)

ReportStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
REPORT_STATUSES: tuple[ReportStatus, ...] = get_args(ReportStatus)

MailingStatus = Literal["queued", "preparing", "sending", "done", "cancelled"]
MAILING_STATUSES: tuple[MailingStatus, ...] = get_args(MailingStatus)

LetterStatus = Literal["preparing", "queued", "sending", "sent", "failed", "skipped"]
LETTER_STATUSES: tuple[LetterStatus, ...] = get_args(LetterStatus)

# --- publishing, moderation, webhooks -------------------------------------------------------------

PublicationStatus = Literal["scheduled", "done", "cancelled"]
PUBLICATION_STATUSES: tuple[PublicationStatus, ...] = get_args(PublicationStatus)

NotificationStatus = Literal["queued", "sending", "sent", "failed"]
NOTIFICATION_STATUSES: tuple[NotificationStatus, ...] = get_args(NotificationStatus)

SampleStatus = Literal["pending", "agreed", "adjusted"]
SAMPLE_STATUSES: tuple[SampleStatus, ...] = get_args(SampleStatus)

DeliveryStatus = Literal["pending", "sending", "succeeded", "failed"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """`column IN ('a', 'b')`: a CHECK constraint's text (or a WHERE clause's) for a family."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"
