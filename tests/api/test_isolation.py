"""Isolation sweep: every operation of the OpenAPI document, called by four callers who must not get
at an organization's data - nobody, another organization's admin key, a learner's user token, and a
grader of the course who is not allocated the work - and the LTI services (/lti/...) also by LTI tools
holding every scope: another organization's, and one of this organization registered for other courses.
The expected answers come from `RULES`, keyed by the route table: a new route without a rule fails this
test until someone decides who may call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from tests.api.test_lti_token import ToolKey, access_token, register
from tests.conftest import Tenant
from tests.helpers import course, populated_course, user_token

# Callers: "none" (no credentials), "other" (another organization's admin key), "learner" (a learner
# of the course, own user token), "grader" (a grader of the course with nothing allocated).
# Expectations: a status, or "own" (200 with the caller's own, empty data: none of the
# organization's ids in the answer), "empty" (200 without the learner's data in it).
# The LTI token endpoint takes no key: a tool authenticates with a signed assertion (tests/api/test_lti_token.py).
PUBLIC = {"GET /healthz", "GET /readyz", "GET /metrics", "POST /lti/token"}


@dataclass(frozen=True)
class Rule:
    other: int | str = 404
    learner: int | str = 404
    grader: int | str = 403
    tool: int | str | None = None  # another organization's LTI tool (every scope), on the /lti services


ORG_ADMIN = Rule(other="own", learner=403, grader=403)  # the caller's own organization's settings
OWN_LIST = Rule(other="own", learner="own", grader="own")
COURSE = Rule()  # course data for staff: no role is 404, a grader without the right is 403
ROSTER = Rule(grader=200)  # staff of the course, graders included, see who is enrolled
# The LTI services take only an LTI access token (API keys and user tokens are 401); a tool of another
# organization, or of this one registered for other courses, finds no such course (404).
LTI = Rule(other=401, learner=401, grader=401, tool=404)
TOOLS = Rule(other=404, learner=403, grader=403)  # one registered tool: admin keys of its organization only

RULES: dict[str, Rule] = {
    "GET /v1/organization": ORG_ADMIN,
    "PUT /v1/organization/token-keys": ORG_ADMIN,
    "GET /v1/api-keys": ORG_ADMIN,
    "POST /v1/api-keys": ORG_ADMIN,
    "DELETE /v1/api-keys/{key_id}": Rule(other=404, learner=403, grader=403),
    "GET /v1/staff": ORG_ADMIN,
    "PUT /v1/staff/{user}": ORG_ADMIN,  # another organization's key sets an entry of its own directory
    "POST /v1/courses": Rule(other="own", learner=403, grader=403),
    "GET /v1/courses": OWN_LIST,
    "GET /v1/courses/{course}": Rule(grader="empty"),
    "PATCH /v1/courses/{course}": COURSE,
    "GET /v1/courses/{course}/members": COURSE,
    "PUT /v1/courses/{course}/members/{user}": COURSE,
    "DELETE /v1/courses/{course}/members/{user}": COURSE,
    "GET /v1/courses/{course}/enrollments": ROSTER,
    "POST /v1/courses/{course}/enrollments:batch": COURSE,
    "PUT /v1/courses/{course}/enrollments/{learner}": COURSE,
    "PATCH /v1/courses/{course}/enrollments/{learner}": COURSE,
    "GET /v1/courses/{course}/enrollments/{learner}": ROSTER,
    "GET /v1/courses/{course}/groups": Rule(grader="empty"),
    "PUT /v1/courses/{course}/groups/{group}": COURSE,
    "GET /v1/courses/{course}/sessions": Rule(grader="empty"),
    "POST /v1/courses/{course}/sessions": COURSE,
    "GET /v1/courses/{course}/sessions/{session}": Rule(grader=404),  # staff may read; s1 does not exist
    "PATCH /v1/courses/{course}/sessions/{session}": COURSE,
    "DELETE /v1/courses/{course}/sessions/{session}": COURSE,
    "PUT /v1/courses/{course}/sessions/{session}/attempts": COURSE,
    "DELETE /v1/courses/{course}/sessions/{session}/attempts": COURSE,
    "GET /v1/courses/{course}/certificates/allowlist": COURSE,
    "PUT /v1/courses/{course}/certificates/allowlist/{learner}": COURSE,
    "DELETE /v1/courses/{course}/certificates/allowlist/{learner}": COURSE,
    "POST /v1/courses/{course}/certificates:generate": COURSE,
    "GET /v1/courses/{course}/certificates/generations": COURSE,
    "GET /v1/courses/{course}/certificates": COURSE,
    "GET /v1/courses/{course}/certification": COURSE,
    "PUT /v1/courses/{course}/certification": COURSE,
    "DELETE /v1/courses/{course}/certification": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/certification": COURSE,
    "PUT /v1/courses/{course}/assessments/{assessment}/certification": COURSE,
    "DELETE /v1/courses/{course}/assessments/{assessment}/certification": COURSE,
    "POST /v1/courses/{course}/certificates/{learner}:revoke": COURSE,
    "POST /v1/courses/{course}/certificates/{learner}:reinstate": COURSE,
    "GET /v1/courses/{course}/certificates/{learner}/diploma": COURSE,
    # Organization-level images: API keys only (users 403); another organization's key sees its own (none:
    # 404 for the path's name); its PUT with the sweep's JSON `{}` is refused by media type (415).
    "GET /v1/certificate-images": ORG_ADMIN,
    "GET /v1/certificate-images/{name}": Rule(other=404, learner=403, grader=403),
    "PUT /v1/certificate-images/{name}": Rule(other=415, learner=403, grader=403),
    "DELETE /v1/certificate-images/{name}": Rule(other=404, learner=403, grader=403),
    "POST /v1/courses/{course}/mailings": COURSE,
    "GET /v1/courses/{course}/mailings": COURSE,
    "GET /v1/courses/{course}/mailings/{mailing_id}": COURSE,
    "POST /v1/courses/{course}/mailings/{mailing_id}:cancel": COURSE,
    "POST /v1/courses/{course}/assessments": COURSE,
    "GET /v1/courses/{course}/assessments": Rule(grader="empty"),
    "GET /v1/courses/{course}/assessments/{assessment}": Rule(grader="empty"),
    "PATCH /v1/courses/{course}/assessments/{assessment}": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/attempts": Rule(grader="empty"),
    "PUT /v1/courses/{course}/assessments/{assessment}/attempts/{learner}": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/attempts/{learner}": Rule(grader=404),
    "PUT /v1/courses/{course}/assessments/{assessment}/excused/{learner}": COURSE,
    "DELETE /v1/courses/{course}/assessments/{assessment}/excused/{learner}": COURSE,
    "PUT /v1/courses/{course}/assessments/{assessment}/scores/{learner}": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/scores/{learner}": Rule(grader=404),
    "GET /v1/courses/{course}/assessments/{assessment}/scores": Rule(grader="empty"),
    "POST /v1/courses/{course}/scores:batch": COURSE,
    "POST /v1/courses/{course}/assessments/{assessment}/allocations": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/allocations": COURSE,
    "DELETE /v1/courses/{course}/assessments/{assessment}/allocations/{grader}": COURSE,
    "GET /v1/courses/{course}/marking/queue": Rule(grader="empty"),
    "PUT /v1/courses/{course}/assessments/{assessment}/marks/{learner}/{item}": COURSE,  # not allocated: 403
    "POST /v1/courses/{course}/assessments/{assessment}/anonymity:lift": COURSE,
    "GET /v1/courses/{course}/late-policy": Rule(grader=200),
    "PUT /v1/courses/{course}/late-policy": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/overrides": Rule(grader="empty"),
    "PUT /v1/courses/{course}/assessments/{assessment}/overrides/learners/{learner}": COURSE,
    "DELETE /v1/courses/{course}/assessments/{assessment}/overrides/learners/{learner}": COURSE,
    "PUT /v1/courses/{course}/assessments/{assessment}/overrides/groups/{group}": COURSE,
    "DELETE /v1/courses/{course}/assessments/{assessment}/overrides/groups/{group}": COURSE,
    "POST /v1/courses/{course}/assessments/{assessment}/moderation/sample": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/moderation": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/moderation/samples": COURSE,
    "POST /v1/courses/{course}/assessments/{assessment}/moderation/samples/{learner}:agree": COURSE,
    "POST /v1/courses/{course}/assessments/{assessment}/moderation/samples/{learner}:adjust": COURSE,
    "PUT /v1/courses/{course}/assessments/{assessment}/moderation/scalings/{grader}": COURSE,
    "DELETE /v1/courses/{course}/assessments/{assessment}/moderation/scalings/{grader}": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/marks": Rule(grader="empty"),
    "POST /v1/courses/{course}/assessments/{assessment}/confirmations": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/feedback/{learner}": Rule(grader=404),
    "PUT /v1/courses/{course}/assessments/{assessment}/feedback/{learner}": Rule(grader=404),
    "PUT /v1/courses/{course}/assessments/{assessment}/feedback/{learner}/{item}": Rule(grader=404),
    "POST /v1/courses/{course}/assessments/{assessment}/items/{item}:rescore": COURSE,
    "GET /v1/courses/{course}/rescores/{rescore_id}": COURSE,
    "PUT /v1/courses/{course}/workgroups/{name}": COURSE,
    "GET /v1/courses/{course}/workgroups": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/marks.csv": COURSE,
    "POST /v1/courses/{course}/imports": COURSE,
    "GET /v1/courses/{course}/imports/{import_id}": COURSE,
    "POST /v1/courses/{course}/imports/{import_id}:revert": COURSE,
    # Pure arithmetic on the caller's own input (what-if grading): anyone authenticated.
    "POST /v1/grading/evaluate": OWN_LIST,
    "GET /v1/courses/{course}/policy": Rule(grader=404),
    "PUT /v1/courses/{course}/policy": COURSE,
    "GET /v1/courses/{course}/policy/versions": Rule(grader="empty"),
    "POST /v1/courses/{course}/policy:preview": COURSE,
    "GET /v1/courses/{course}/grades": COURSE,
    "GET /v1/courses/{course}/learners/{learner}/grade": COURSE,
    "POST /v1/courses/{course}/publications": COURSE,
    "GET /v1/courses/{course}/publications": COURSE,
    "GET /v1/courses/{course}/publications/{publication_id}": COURSE,
    "POST /v1/courses/{course}/publications/{publication_id}:cancel": COURSE,
    "GET /v1/courses/{course}/publication-summary": COURSE,
    "POST /v1/courses/{course}/reports": COURSE,
    "GET /v1/courses/{course}/reports": COURSE,
    "GET /v1/reports/{report_id}": COURSE,
    "GET /v1/reports/{report_id}/download": COURSE,
    "POST /v1/reports/{report_id}:cancel": COURSE,
    "GET /v1/courses/{course}/results": Rule(grader="empty"),
    "GET /v1/courses/{course}/dashboard": Rule(grader="empty"),
    "GET /v1/courses/{course}/gradebook": COURSE,
    "GET /v1/courses/{course}/gradebook.csv": COURSE,
    "GET /v1/courses/{course}/learners/{learner}/progress": COURSE,
    "GET /v1/courses/{course}/learners/{learner}/progress.{fmt}": COURSE,
    "GET /v1/courses/{course}/statistics": COURSE,
    "GET /v1/courses/{course}/statistics/histogram.{fmt}": COURSE,
    "GET /v1/me/courses/{course}/results": Rule(other=403, learner="empty", grader=404),
    "GET /v1/courses/{course}/assessments/{assessment}/review-sessions": COURSE,
    "POST /v1/courses/{course}/assessments/{assessment}/review-sessions": COURSE,
    "GET /v1/courses/{course}/assessments/{assessment}/review-sessions/{review}": COURSE,
    "PATCH /v1/courses/{course}/assessments/{assessment}/review-sessions/{review}": COURSE,
    "DELETE /v1/courses/{course}/assessments/{assessment}/review-sessions/{review}": COURSE,
    # u1 has no published result of the exam: no review of it, open or to come.
    "GET /v1/me/courses/{course}/assessments/{assessment}/review": Rule(other=403, learner=404, grader=404),
    "GET /v1/me/courses/{course}/certificates": Rule(other=403, learner="empty", grader=404),
    "GET /v1/me/courses/{course}/certificates/{code}/diploma": Rule(other=403, learner=404, grader=404),
    # The learner's own documents (individual reports sent to them); u1 has none.
    "GET /v1/me/courses/{course}/documents": Rule(other=403, learner="empty", grader=404),
    "GET /v1/me/courses/{course}/documents/{document_id}": Rule(other=403, learner=404, grader=404),
    "GET /v1/webhooks": ORG_ADMIN,
    "POST /v1/webhooks": ORG_ADMIN,
    "GET /v1/webhooks/{webhook_id}": Rule(learner=403),
    "PATCH /v1/webhooks/{webhook_id}": Rule(learner=403),
    "DELETE /v1/webhooks/{webhook_id}": Rule(learner=403),
    "POST /v1/webhooks/{webhook_id}:ping": Rule(learner=403),
    "GET /v1/webhooks/{webhook_id}/deliveries": Rule(learner=403),
    "POST /v1/webhooks/deliveries/{delivery_id}:redeliver": Rule(learner=403),
    "POST /v1/webhooks/{webhook_id}:replay": Rule(learner=403),
    "GET /v1/courses/{course}/audit": COURSE,
    "GET /v1/courses/{course}/audit.csv": COURSE,
    "GET /v1/audit": ORG_ADMIN,
    "GET /v1/audit.csv": ORG_ADMIN,
    "GET /v1/lti/tools": ORG_ADMIN,
    "POST /v1/lti/tools": ORG_ADMIN,
    "GET /v1/lti/tools/{tool_id}": TOOLS,
    "PATCH /v1/lti/tools/{tool_id}": TOOLS,
    "DELETE /v1/lti/tools/{tool_id}": TOOLS,
    "GET /v1/courses/{course}/lti/claims": COURSE,
    "GET /lti/courses/{course}/memberships": LTI,
    "GET /v1/courses/{course}/lti/line-items": COURSE,
    "PUT /v1/courses/{course}/lti/line-items/{assessment}": COURSE,
    "DELETE /v1/courses/{course}/lti/line-items/{assessment}": COURSE,
    "GET /lti/courses/{course}/lineitems": LTI,
    "POST /lti/courses/{course}/lineitems": LTI,
    "GET /lti/courses/{course}/lineitems/{line_item}": LTI,
    "PUT /lti/courses/{course}/lineitems/{line_item}": LTI,
    "DELETE /lti/courses/{course}/lineitems/{line_item}": LTI,
    "POST /lti/courses/{course}/lineitems/{line_item}/scores": LTI,
    "GET /lti/courses/{course}/lineitems/{line_item}/results": LTI,
}


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]


# Valid bodies where a route checks the caller after the body (elsewhere `{}` is enough: the
# caller is refused before the body is read).
BODIES: dict[str, dict[str, Any]] = {
    "PUT /v1/courses/{course}/assessments/{assessment}/overrides/learners/{learner}": {"extra_attempts": 1},
    "PUT /v1/courses/{course}/assessments/{assessment}/overrides/groups/{group}": {"extra_attempts": 1},
    "POST /v1/api-keys": {"name": "x", "role": "service"},
    "PUT /v1/staff/{user}": {"username": "grader.one", "name": "Grader One"},
    "PUT /v1/organization/token-keys": {"hs256_secret": "s" * 40},  # `{}` would turn user tokens off: 422
    "POST /v1/courses": {"external_id": "mine", "title": "Mine"},
    "POST /v1/grading/evaluate": {
        "policy": {"preset": "standard", "categories": [{"name": "H", "weight": 1}], "assessments": []},
        "learners": [],
    },
    "POST /v1/webhooks": {"url": "http://127.0.0.1:9/x", "events": ["grade.changed"]},
    "POST /v1/webhooks/{webhook_id}:replay": {"since": "2026-01-01T00:00:00Z"},
    "PUT /v1/courses/{course}/assessments/{assessment}/marks/{learner}/{item}": {"points": 1},
    "PUT /v1/courses/{course}/assessments/{assessment}/feedback/{learner}": {"text": "x"},
    "PUT /v1/courses/{course}/assessments/{assessment}/feedback/{learner}/{item}": {"text": "x"},
    "POST /v1/lti/tools": {"name": "x", "jwks": ToolKey().jwks},
    "POST /lti/courses/{course}/lineitems": {"label": "x", "scoreMaximum": 10},
    "PUT /lti/courses/{course}/lineitems/{line_item}": {"label": "x", "scoreMaximum": 10},
    "POST /lti/courses/{course}/lineitems/{line_item}/scores": {
        "userId": "u1",
        "scoreGiven": 1,
        "scoreMaximum": 10,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": "2026-01-01T00:00:00Z",
    },
}


def _body(method: str, path: str) -> dict[str, Any]:
    if method in ("GET", "DELETE"):
        return {}
    if path.endswith("/imports"):
        return {"files": {"file": ("s.csv", b"learner,assessment,earned\nu2,hw,4\n", "text/csv")}}
    return {"json": BODIES.get(f"{method} {path}", {})}


def _check(caller: str, expected: int | str, r: httpx.Response, secret_words: set[str], what: str) -> str | None:
    if isinstance(expected, int):
        return None if r.status_code == expected else f"{what} as {caller}: {r.status_code} (want {expected})"
    if not 200 <= r.status_code < 300:
        return f"{what} as {caller}: {r.status_code} (want 2xx, {expected})"
    leaked = {w for w in secret_words if re.search(rf"\b{re.escape(w)}\b", r.text)}
    return f"{what} as {caller}: shows {sorted(leaked)}" if leaked else None


async def test_every_route_keeps_strangers_out(tenant: Tenant, other_tenant: Tenant, client: httpx.AsyncClient) -> None:
    ids = await populated_course(tenant)
    learner = await user_token(tenant, "u1")
    grader = await user_token(tenant, "g2")
    ids["tool_id"] = str((await register(tenant, ToolKey()))["id"])
    r = await tenant.put(f"/v1/courses/{ids['course']}/lti/line-items/hw", json={})
    assert r.status_code == 200, r.text
    ids["line_item"] = r.json()["id"].rsplit("/", 1)[1]  # the line item's URL ends in its id
    key = ToolKey()
    their_tool = await access_token(other_tenant, await register(other_tenant, key), key)
    elsewhere = "iso-elsewhere-" + ids["course"]
    await course(tenant, elsewhere)
    narrow_tool = await access_token(tenant, await register(tenant, key, courses=[elsewhere]), key)
    document = (await client.get("/openapi.json")).json()
    operations = _operations(document)
    unruled = [f"{m} {p}" for m, p in operations if f"{m} {p}" not in RULES and f"{m} {p}" not in PUBLIC]
    assert not unruled, f"routes without an isolation rule: {unruled}"
    assert not set(RULES) - {f"{m} {p}" for m, p in operations}, "rules for routes that are gone"

    problems: list[str] = []
    for method, path in operations:
        what = f"{method} {path}"
        url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        kw = _body(method, path)
        if what in PUBLIC:
            r = await client.request(method, url)
            if r.status_code >= 500 and path != "/readyz":
                problems.append(f"{what}: {r.status_code}")
            continue
        rule = RULES[what]
        r = await client.request(method, url, **kw)
        if r.status_code != 401 or not r.headers["content-type"].startswith("application/problem+json"):
            problems.append(f"{what} without credentials: {r.status_code}")
        # The organization's own ids must never show to a stranger; the learner and grader may see
        # the course they belong to, never another learner's results.
        secret_words = {ids["course"], "u1", "u2"}
        for caller, token, expected, words in (
            ("other", other_tenant.key, rule.other, secret_words),
            ("learner", learner, rule.learner, {"u2"}),
            ("grader", grader, rule.grader, {"u1", "u2"}),
            ("another organization's tool", their_tool, rule.tool, secret_words),
            ("a tool of other courses", narrow_tool, rule.tool, secret_words),
        ):
            if expected is None:
                continue
            r = await tenant.request(method, url, as_=token, **kw)
            if (problem := _check(caller, expected, r, words, what)) is not None:
                problems.append(problem)
    assert not problems, "\n".join(problems)
