"""The event catalogue in the OpenAPI document's `webhooks` section: one entry per type with an example."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import FastAPI

from gradeflow.notify.events import PING
from gradeflow.webhooks.commands import EventType
from gradeflow.webhooks.schemas import Event

COURSE = "course-v1:Org+Phys+2026"
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "grade.changed": (
        "A learner's stored course grade (served policy version) or its letter changed.",
        {
            "course": COURSE,
            "learner": "u1",
            "policy_version": 2,
            "old": {"percent": 74.0, "grade": "C", "passed": True},
            "new": {"percent": 81.5, "grade": "B", "passed": True},
        },
    ),
    "results.published": (
        "Results became visible to learners (the first 1,000 learners are listed; see learner_count).",
        {
            "course": COURSE,
            "publication": 12,
            "assessments": ["hw1"],
            "course_grade": False,
            "show": "total_only",
            "trigger": "request",
            "learner_count": 2,
            "learners": ["u1", "u2"],
        },
    ),
    "results.unpublished": (
        "Published results were retracted.",
        {
            "course": COURSE,
            "publication": 13,
            "assessments": ["hw1"],
            "course_grade": False,
            "learner_count": 1,
            "learners": ["u2"],
        },
    ),
    "grading.confirmed": (
        "Manual grading of attempts was confirmed: their results are final.",
        {"course": COURSE, "assessment": "exam", "confirmed_by": "teacher7", "learners": ["u1", "u2"]},
    ),
    "policy.changed": (
        "A new grading policy version was saved (grades follow once recomputed).",
        {"course": COURSE, "policy_version": 3, "grades_version": 2, "changed_by": "teacher7"},
    ),
    "import.completed": (
        "A CSV score import ended (applied, failed, or a dry run done).",
        {"course": COURSE, "import": 5, "status": "applied", "dry_run": False, "rows": 1200, "errors": 0},
    ),
    "report.succeeded": (
        "A report file is ready (fetch the report to get a download link; links are never in events).",
        {
            "course": COURSE,
            "report": 7,
            "kind": "grade_report",
            "file_name": "course_grade_report_2026-11-21-1200.csv",
            "rows": 2000,
            "bytes": 410000,
        },
    ),
    "report.failed": (
        "A report could not be built.",
        {"course": COURSE, "report": 8, "kind": "results_xlsx", "error": "failed 3 times; last error: ..."},
    ),
    "certificates.generated": (
        "Certificates of a certification (the course's, or an assessment's: `assessment`) were generated: who "
        "was eligible at that moment (the first 1,000 learners issued and removed - no longer eligible, their "
        "certificate taken away; not a staff revocation - are listed; see the counts).",
        {
            "course": COURSE,
            "generation": 4,
            "assessment": None,
            "policy_version": 2,
            "eligible": 2,
            "issued_count": 1,
            "removed_count": 1,
            "issued": [{"learner": "u1", "type": "verified", "reason": "passing"}],
            "removed": ["u7"],
        },
    ),
    "certificate.revoked": (
        "A learner's certificate was revoked by staff: it is no longer valid, shown or sent (a generation does "
        "not issue it again until it is reinstated). `assessment` is null for the course certificate.",
        {
            "course": COURSE,
            "learner": "u1",
            "assessment": None,
            "code": "3F2A9C1B7D4E8F60",
            "reason": "Plagiarism established by the exam board",
            "actor": "teacher7",
        },
    ),
    "certificate.reinstated": (
        "A revoked certificate was reinstated: it is valid again at once.",
        {
            "course": COURSE,
            "learner": "u1",
            "assessment": "final-exam",
            "code": "3F2A9C1B7D4E8F60",
            "reason": None,
            "actor": "teacher7",
        },
    ),
    "webhook.ping": ("A test event sent by `POST /v1/webhooks/{id}:ping`.", {"webhook": 3}),
}


def install(app: FastAPI) -> None:
    """Document every event type a webhook may subscribe to (webhooks' EventType), and the ping."""
    documented, subscribable = set(EXAMPLES), {*get_args(EventType), PING}
    if documented != subscribable:
        raise RuntimeError(f"The event catalogue and EventType differ: {sorted(documented ^ subscribable)}")
    for type_, (description, data) in EXAMPLES.items():
        example = {
            "id": "evt_5f2c0e8b9d3a4c1e8f7a6b5c4d3e2f1a",
            "type": type_,
            "timestamp": "2026-11-21T12:00:00+00:00",
            "data": data,
        }

        async def receiver(event: Event) -> None:
            """Sent with headers webhook-id, webhook-timestamp and webhook-signature."""

        app.webhooks.post(
            type_,
            summary=type_,
            description=description,
            openapi_extra={"requestBody": {"content": {"application/json": {"example": example}}}},
        )(receiver)
