"""Audit sweep: every POST/PUT/PATCH/DELETE operation of the OpenAPI document either has a rule saying
which audit action(s) it writes - checked by calling it with a change and reading the audit log - or
is on the `NOT_AUDITED` list with the reason. A new mutating route without a rule fails this test
until someone decides what it records.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from sqlalchemy import text

from gradeflow.core.settings import Settings
from tests.api.test_lti_token import ToolKey, access_token, register
from tests.conftest import Tenant, run_worker
from tests.helpers import populated_course

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
SOON = "2099-01-01T09:00:00Z"


@dataclass(frozen=True)
class Audited:
    """Called as the tenant's admin key with `body` (and `params`, path values in `ids` over the
    populated course's), the operation must write every action in `actions`."""

    actions: tuple[str, ...]
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    files: bool = False  # a multipart import instead of a JSON body
    raw: tuple[bytes, str] | None = None  # a raw body and its Content-Type instead of JSON
    worker: bool = False  # the change is made by the job the call queues
    gives: str | None = None  # the path value the answer's `id` (or its URL's last segment) is for the calls after it
    as_tool: bool = False  # called by an LTI tool of the organization with its access token (every scope)


def _as(media_type: str, body: dict[str, Any]) -> tuple[bytes, str]:
    """A JSON body sent as one of the LTI media types."""
    return json.dumps(body).encode(), media_type


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "navy").save(out, format="PNG")
    return out.getvalue()


# Operations that change nothing that a result, access or delivery depends on.
NOT_AUDITED: dict[str, str] = {
    "POST /v1/grading/evaluate": "what-if arithmetic on the caller's own input: nothing is stored",
    "POST /v1/courses/{course}/policy:preview": "grades a draft policy without storing it",
    "POST /lti/token": "issues an LTI access token: what the tool then changes is audited with the tool as actor",
}

# In the order they are called: later calls may remove what earlier ones use.
RULES: dict[str, Audited] = {
    "PUT /v1/organization/token-keys": Audited(("token_keys.changed",), {"hs256_secret": "t" * 40}),
    "POST /v1/api-keys": Audited(("api_key.created",), {"name": "audited", "role": "service"}),
    "PUT /v1/staff/{user}": Audited(("staff.updated",), {"username": "grader.one", "name": "Grader One"}),
    "POST /v1/courses": Audited(("course.created",), {"external_id": "audited-course", "title": "A"}),
    "PATCH /v1/courses/{course}": Audited(("course.updated",), {"title": "Renamed"}),
    "PUT /v1/courses/{course}/members/{user}": Audited(("member.roles_changed",), {"roles": ["grader", "viewer"]}),
    "POST /v1/courses/{course}/enrollments:batch": Audited(
        ("enrollment.created",), {"enrollments": [{"external_id": "u3", "username": "u3", "groups": ["A"]}]}
    ),
    "PUT /v1/courses/{course}/assessments/{assessment}/overrides/learners/{learner}": Audited(
        ("override.set",),
        {"due_at": SOON, "extra_attempts": 1, "reason": "illness"},
        ids={"assessment": "hw", "learner": "u2"},
    ),
    "DELETE /v1/courses/{course}/assessments/{assessment}/overrides/learners/{learner}": Audited(
        ("override.removed",), ids={"assessment": "hw", "learner": "u2"}
    ),
    "PUT /v1/courses/{course}/assessments/{assessment}/overrides/groups/{group}": Audited(
        ("override.set",), {"extra_attempts": 2}, ids={"assessment": "hw", "group": "A"}
    ),
    "DELETE /v1/courses/{course}/assessments/{assessment}/overrides/groups/{group}": Audited(
        ("override.removed",), ids={"assessment": "hw", "group": "A"}
    ),
    "PUT /v1/courses/{course}/groups/{group}": Audited(("group.archived",), {"archived": True}, ids={"group": "A"}),
    "PUT /v1/courses/{course}/enrollments/{learner}": Audited(
        ("enrollment.changed",), {"username": "u3", "cohort": "Z"}, ids={"learner": "u3"}
    ),
    "PATCH /v1/courses/{course}/enrollments/{learner}": Audited(
        ("enrollment.unenrolled",), {"status": "unenrolled"}, ids={"learner": "u3"}
    ),
    "PUT /v1/certificate-images/{name}": Audited(
        ("certificate_image.set",), raw=(_png(), "image/png"), ids={"name": "logo"}
    ),
    "PUT /v1/courses/{course}/certification": Audited(
        ("certification.updated",), {"title": "Certificate", "threshold": 50, "logo_image": "logo"}
    ),
    "PUT /v1/courses/{course}/assessments/{assessment}/certification": Audited(
        ("certification.updated",), {"title": "Exam certificate", "threshold": 50}
    ),
    "PUT /v1/courses/{course}/certificates/allowlist/{learner}": Audited(
        ("certificate.allowlisted",), {"notes": "Honor code exception"}
    ),
    "POST /v1/courses/{course}/certificates:generate": Audited(("certificate.issued", "certificates.generated")),
    "POST /v1/courses/{course}/certificates/{learner}:revoke": Audited(
        ("certificate.revoked",), {"reason": "Withdrawn"}
    ),
    "POST /v1/courses/{course}/certificates/{learner}:reinstate": Audited(("certificate.reinstated",), {}),
    "DELETE /v1/courses/{course}/assessments/{assessment}/certification": Audited(("certification.deleted",)),
    "DELETE /v1/courses/{course}/certification": Audited(("certification.deleted",)),
    "DELETE /v1/certificate-images/{name}": Audited(("certificate_image.deleted",), ids={"name": "logo"}),
    "DELETE /v1/courses/{course}/certificates/allowlist/{learner}": Audited(("certificate.allowlist_removed",)),
    "POST /v1/courses/{course}/assessments": Audited(
        ("assessment.created",), {"external_id": "new", "title": "New", "category": "Quiz", "points_possible": 5}
    ),
    # Made anonymous here so that the lift below has something to lift (one assessment.updated entry still).
    "PATCH /v1/courses/{course}/assessments/{assessment}": Audited(
        ("assessment.updated",), {"title": "Exam 2", "anonymous": True}
    ),
    "POST /v1/courses/{course}/assessments/{assessment}/anonymity:lift": Audited(("assessment.anonymity_lifted",)),
    "PUT /v1/courses/{course}/assessments/{assessment}/attempts/{learner}": Audited(
        ("attempt.status_changed",), {"status": "submitted"}
    ),
    "PUT /v1/courses/{course}/assessments/{assessment}/scores/{learner}": Audited(
        ("score.set",), {"earned": 9}, ids={"assessment": "hw"}
    ),
    "POST /v1/courses/{course}/scores:batch": Audited(
        ("score.set",), {"scores": [{"assessment": "hw", "learner": "u2", "earned": 3}]}
    ),
    "PUT /v1/courses/{course}/assessments/{assessment}/excused/{learner}": Audited(
        ("result.excused",), ids={"assessment": "hw", "learner": "u2"}
    ),
    "DELETE /v1/courses/{course}/assessments/{assessment}/excused/{learner}": Audited(
        ("result.unexcused",), ids={"assessment": "hw", "learner": "u2"}
    ),
    "PUT /v1/courses/{course}/workgroups/{name}": Audited(("workgroup.set",), {"members": ["g1", "g2"]}),
    "POST /v1/courses/{course}/assessments/{assessment}/allocations": Audited(("allocation.add",), {"graders": ["g1"]}),
    "PUT /v1/courses/{course}/assessments/{assessment}/marks/{learner}/{item}": Audited(
        ("mark.set",), {"points": 4, "comment": "fine"}, params={"grader": "g1"}
    ),
    # Moderation of g1's mark (4 of 5 on u1/ex/q1); the admin key moderates as itself.
    "POST /v1/courses/{course}/assessments/{assessment}/moderation/sample": Audited(
        ("moderation.sampled",), {"percent": 100}
    ),
    "PUT /v1/courses/{course}/assessments/{assessment}/moderation/scalings/{grader}": Audited(
        ("moderation.scaled", "item_score.set"), {"factor": 1.5, "reason": "Marks harshly"}
    ),
    "DELETE /v1/courses/{course}/assessments/{assessment}/moderation/scalings/{grader}": Audited(
        ("moderation.unscaled", "item_score.set")
    ),
    "POST /v1/courses/{course}/assessments/{assessment}/moderation/samples/{learner}:adjust": Audited(
        ("moderation.adjusted", "item_score.set"), {"items": [{"item": "q1", "points": 3}], "note": "Harsh"}
    ),
    "POST /v1/courses/{course}/assessments/{assessment}/moderation/samples/{learner}:agree": Audited(
        ("moderation.agreed", "item_score.set"), {}
    ),
    "PUT /v1/courses/{course}/assessments/{assessment}/feedback/{learner}": Audited(
        ("feedback.set",), {"text": "Well argued."}
    ),
    "PUT /v1/courses/{course}/assessments/{assessment}/feedback/{learner}/{item}": Audited(
        ("feedback.set",), {"text": "Check the units."}
    ),
    "POST /v1/courses/{course}/assessments/{assessment}/confirmations": Audited(("confirmation.set",), {}),
    "POST /v1/courses/{course}/assessments/{assessment}/items/{item}:rescore": Audited(
        ("item.rescore",), {"points_possible": 8, "mode": "scale"}
    ),
    "DELETE /v1/courses/{course}/assessments/{assessment}/allocations/{grader}": Audited(("allocation.remove",)),
    "PUT /v1/courses/{course}/late-policy": Audited(
        ("late_policy.updated",), {"late_submission_deduction_enabled": True, "late_submission_deduction": 10}
    ),
    "PUT /v1/courses/{course}/policy": Audited(
        ("policy.set",), {"preset": "standard", "categories": [{"name": "Homework", "weight": 1}]}
    ),
    "POST /v1/courses/{course}/publications": Audited(
        ("publication.scheduled",),
        {"assessments": ["hw"], "audience": {"all": True}, "publish_at": SOON},
        gives="publication_id",
    ),
    "POST /v1/courses/{course}/publications/{publication_id}:cancel": Audited(("publication.cancelled",)),
    "POST /v1/courses/{course}/assessments/{assessment}/review-sessions": Audited(
        ("review_session.created",),
        {"external_id": "rv-audit", "starts_at": SOON, "ends_at": "2099-01-02T09:00:00Z"},
    ),
    "PATCH /v1/courses/{course}/assessments/{assessment}/review-sessions/{review}": Audited(
        ("review_session.updated",), {"title": "Second look"}, ids={"review": "rv-audit"}
    ),
    "DELETE /v1/courses/{course}/assessments/{assessment}/review-sessions/{review}": Audited(
        ("review_session.deleted",), ids={"review": "rv-audit"}
    ),
    "POST /v1/courses/{course}/sessions": Audited(("session.created",), {"external_id": "s-audit", "title": "Morning"}),
    "PATCH /v1/courses/{course}/sessions/{session}": Audited(
        ("session.updated",), {"title": "Afternoon"}, ids={"session": "s-audit"}
    ),
    "PUT /v1/courses/{course}/sessions/{session}/attempts": Audited(
        ("session.attempt_added", "session.attempts_added"),
        {"attempts": [{"assessment": "hw", "learner": "u2"}]},
        ids={"session": "s-audit"},
    ),
    "DELETE /v1/courses/{course}/sessions/{session}/attempts": Audited(
        ("session.attempt_removed", "session.attempts_removed"),
        {"attempts": [{"assessment": "hw", "learner": "u2"}]},
        ids={"session": "s-audit"},
    ),
    "DELETE /v1/courses/{course}/sessions/{session}": Audited(("session.deleted",), ids={"session": "s-audit"}),
    "POST /v1/courses/{course}/reports": Audited(("report.requested",), {"kind": "grade_report"}, gives="report_id"),
    "POST /v1/reports/{report_id}:cancel": Audited(("report.cancelled",)),
    "POST /v1/courses/{course}/mailings": Audited(
        ("mailing.requested",), {"kind": "reports", "assessment": "hw"}, gives="mailing_id"
    ),
    "POST /v1/courses/{course}/mailings/{mailing_id}:cancel": Audited(("mailing.cancelled",)),
    "POST /v1/courses/{course}/imports": Audited(
        ("score.set", "import.apply"), files=True, worker=True, gives="import_id"
    ),
    "POST /v1/courses/{course}/imports/{import_id}:revert": Audited(("score.revert", "import.revert")),
    "POST /v1/webhooks": Audited(("webhook.created",), {"url": "http://127.0.0.1:9/a", "events": ["grade.changed"]}),
    "PATCH /v1/webhooks/{webhook_id}": Audited(("webhook.updated",), {"events": ["grade.changed", "policy.changed"]}),
    "POST /v1/webhooks/{webhook_id}:ping": Audited(("webhook.pinged",)),
    "POST /v1/webhooks/deliveries/{delivery_id}:redeliver": Audited(("webhook.redelivered",)),
    "POST /v1/webhooks/{webhook_id}:replay": Audited(("webhook.replayed",), {"since": "2026-01-01T00:00:00Z"}),
    "DELETE /v1/webhooks/{webhook_id}": Audited(("webhook.deleted",)),
    "DELETE /v1/courses/{course}/members/{user}": Audited(("member.removed",)),
    "DELETE /v1/api-keys/{key_id}": Audited(("api_key.revoked",)),
    "POST /v1/lti/tools": Audited(
        ("lti_tool.created",), {"name": "Audited tool", "jwks": ToolKey().jwks}, gives="tool_id"
    ),
    "PATCH /v1/lti/tools/{tool_id}": Audited(("lti_tool.updated",), {"name": "Renamed tool", "courses": None}),
    "DELETE /v1/lti/tools/{tool_id}": Audited(("lti_tool.deleted",)),
    "PUT /v1/courses/{course}/lti/line-items/{assessment}": Audited(
        ("line_item.exposed",), {"resource_link_id": "rl-1", "tag": "hw"}, ids={"assessment": "hw"}
    ),
    "DELETE /v1/courses/{course}/lti/line-items/{assessment}": Audited(
        ("line_item.unexposed",), ids={"assessment": "hw"}
    ),
    "POST /lti/courses/{course}/lineitems": Audited(
        ("assessment.created", "line_item.created"),
        raw=_as("application/vnd.ims.lis.v2.lineitem+json", {"label": "Tool quiz", "scoreMaximum": 10, "tag": "t"}),
        gives="line_item",
        as_tool=True,
    ),
    "PUT /lti/courses/{course}/lineitems/{line_item}": Audited(
        ("line_item.updated", "assessment.updated"),
        raw=_as("application/vnd.ims.lis.v2.lineitem+json", {"label": "Tool quiz 2", "scoreMaximum": 20, "tag": "t2"}),
        as_tool=True,
    ),
    "POST /lti/courses/{course}/lineitems/{line_item}/scores": Audited(
        ("score.set", "feedback.set"),
        raw=_as(
            "application/vnd.ims.lis.v1.score+json",
            {
                "userId": "u1",
                "scoreGiven": 7,
                "scoreMaximum": 10,
                "activityProgress": "Completed",
                "gradingProgress": "FullyGraded",
                "timestamp": "2030-01-01T00:00:00Z",
                "comment": "Well done",
            },
        ),
        as_tool=True,
    ),
    "DELETE /lti/courses/{course}/lineitems/{line_item}": Audited(("line_item.deleted",), as_tool=True),
}


async def _last_id(sessionmaker: Any, organization_id: int) -> int:
    async with sessionmaker() as session:
        last = await session.scalar(
            text("SELECT max(id) FROM audit_log WHERE organization_id = :o"), {"o": organization_id}
        )
    return int(last or 0)


async def _actions_since(sessionmaker: Any, organization_id: int, after: int) -> list[tuple[str, str]]:
    """The (action, actor) of each entry written after entry `after`."""
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT action, actor FROM audit_log WHERE organization_id = :o AND id > :after ORDER BY id"),
            {"o": organization_id, "after": after},
        )
    return [(action, actor) for action, actor in rows]


async def test_every_change_is_on_the_record(tenant: Tenant, settings: Settings, sessionmaker: Any) -> None:
    ids = await populated_course(tenant)
    document = (await tenant.client.get("/openapi.json")).json()
    operations = [f"{m.upper()} {p}" for p, ops in document["paths"].items() for m in ops if m.upper() in MUTATING]
    unruled = [op for op in operations if op not in RULES and op not in NOT_AUDITED]
    assert not unruled, f"mutating routes without an audit rule: {unruled}"
    assert not (set(RULES) | set(NOT_AUDITED)) - set(operations), "rules for routes that are gone"

    # A second attempt at the exam, so that allocated work stays unmarked after one mark.
    r = await tenant.put(f"/v1/courses/{ids['course']}/assessments/ex/attempts/u2", json={"status": "submitted"})
    assert r.status_code == 200, r.text
    key = ToolKey()
    tool = await register(tenant, key)
    tool_token = await access_token(tenant, tool, key)
    problems: list[str] = []
    for what, rule in RULES.items():
        method, path = what.split(" ", 1)
        values = {**ids, **rule.ids}
        url = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], path)
        kw: dict[str, Any] = {"params": rule.params}
        if rule.raw is not None:
            kw["content"], kw["headers"] = rule.raw[0], {"Content-Type": rule.raw[1]}
        elif rule.files:
            csv = b"learner,assessment,earned\nu2,hw,5\n"
            kw["files"] = {"file": ("s.csv", csv, "text/csv")}
        elif method in ("POST", "PUT", "PATCH") or rule.body is not None:  # a DELETE may take a body
            kw["json"] = rule.body if rule.body is not None else {}
        before = await _last_id(sessionmaker, tenant.id)
        r = await tenant.request(method, url, as_=tool_token if rule.as_tool else None, **kw)
        if r.status_code >= 300:
            problems.append(f"{what}: {r.status_code} {r.text[:300]}")
            continue
        if rule.worker:
            await run_worker(settings, crons=False)
        written = await _actions_since(sessionmaker, tenant.id, before)
        done = [action for action, _ in written]
        if missing := [a for a in rule.actions if a not in done]:
            problems.append(f"{what}: wrote {done}, not {missing}")
        if rule.as_tool and (strangers := {actor for _, actor in written} - {f"lti_tool:{tool['id']}"}):
            problems.append(f"{what}: recorded as {sorted(strangers)}, not as the tool")
        if rule.gives:
            ids[rule.gives] = str(r.json()["id"]).rsplit("/", 1)[-1]
    assert not problems, "\n".join(problems)
