"""The anonymity sweep: on an anonymous assessment, every route of the API a grader (or moderator) can
call answers without naming a learner: no id, name, e-mail, username, cohort, team or group in any
body or header. Routes come from the OpenAPI document, so a new route is swept without a change here;
a route whose path cannot be filled fails the sweep until it is filled or skipped here with a reason."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.test_anonymity import LEARNERS, anonymous_exam, identities, queue_labels
from tests.conftest import Tenant
from tests.helpers import grant, user_token

# Path parameters with no record a grader can reach: filled with a well-formed id of nothing. The
# grader is refused before the id is looked up (these areas belong to planners, publishers, API keys or
# the learner), which the sweep checks: such a route answering 2xx needs a real record here instead.
NO_GRADER_RECORD = {
    "report_id": "1",  # reports: REPORT_READ (planners, viewers, publishers)
    "import_id": "1",  # imports: planners
    "publication_id": "1",  # publications: publishers and overseers
    "mailing_id": "1",  # mailings: publishers and overseers
    "rescore_id": "1",  # rescores: planners (ALLOCATE)
    "webhook_id": "1",  # webhooks: API keys
    "delivery_id": "1",  # webhook deliveries: API keys
    "key_id": "1",  # API keys: admin keys
    "tool_id": "1",  # LTI tools: admin keys
    "line_item": "1",  # LTI line items: LTI access tokens only (a grader's user token is 401)
    "document_id": "1",  # a learner's own documents (/v1/me)
    "code": "x",  # a learner's own certificate (/v1/me)
    "review": "x",  # review sessions: PUBLICATION_READ (overseers)
    "name": "wg",  # workgroups (planners) and certificate images (API keys)
}

# Routes left out, and why. Keep this short: every entry is a route nobody checks.
SKIPPED: dict[tuple[str, str], str] = {}

# Routes that name learners to a grader by design: the course roster is who is enrolled, not whose work
# is which (it says nothing of the anonymous assessment). Checked to answer, and not searched.
ROSTER = {
    ("GET", "/v1/courses/{course}/enrollments"),
    ("GET", "/v1/courses/{course}/groups"),
}

# Writes a grader makes on their work, with a body that succeeds; every other write is sent `{}`.
SAFE_WRITES = {
    ("PUT", "/v1/courses/{course}/assessments/{assessment}/marks/{learner}/{item}"): {"points": 6, "comment": "ok"},
    ("PUT", "/v1/courses/{course}/assessments/{assessment}/feedback/{learner}"): {"text": "Good."},
    ("PUT", "/v1/courses/{course}/assessments/{assessment}/feedback/{learner}/{item}"): {"text": "Fine."},
}

# What the grader must get 2xx from (else the sweep proves nothing about them).
MUST_ANSWER = {
    ("GET", "/v1/courses/{course}/marking/queue"),
    ("GET", "/v1/courses/{course}/assessments/{assessment}/attempts"),
    ("GET", "/v1/courses/{course}/assessments/{assessment}/attempts/{learner}"),
    ("GET", "/v1/courses/{course}/assessments/{assessment}/scores"),
    ("GET", "/v1/courses/{course}/assessments/{assessment}/scores/{learner}"),
    ("GET", "/v1/courses/{course}/assessments/{assessment}/marks"),
    ("GET", "/v1/courses/{course}/assessments/{assessment}/feedback/{learner}"),
    ("PUT", "/v1/courses/{course}/assessments/{assessment}/marks/{learner}/{item}"),
    ("PUT", "/v1/courses/{course}/assessments/{assessment}/feedback/{learner}"),
    ("POST", "/v1/courses/{course}/assessments/{assessment}/confirmations"),
}

EXAM = "/v1/courses/c1/assessments/exam"
_PARAM = re.compile(r"{([^}]+)}")
_WRITE_ORDER = {"post": 0, "put": 1, "patch": 2, "delete": 3}


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    ops = [
        (method, path, op)
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    # Reads first (safe writes come before them, in the test), other writes after, deletions last.
    return sorted(ops, key=lambda o: (o[0] != "get", _WRITE_ORDER.get(o[0], -1), o[1]))


def _queries(op: dict[str, Any]) -> list[dict[str, str]]:
    """The query strings to try: the assessment's filter where there is one, and each value of every
    enumerated parameter (a `by=cohort` breakdown must not name cohorts either)."""
    base: dict[str, str] = {}
    variants: list[dict[str, str]] = []
    for p in op.get("parameters", []):
        if p.get("in") != "query":
            continue
        if p["name"] == "assessment":
            base["assessment"] = "exam"
        schema = p.get("schema", {})
        options = schema.get("enum") or next((s["enum"] for s in schema.get("anyOf", []) if "enum" in s), None)
        for value in options or []:
            variants.append({p["name"]: str(value)})
    return [base] + [{**base, **v} for v in variants]


def _leaks(response: httpx.Response, secrets: list[str]) -> list[str]:
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return [s for s in secrets if s in text]


# The anonymous exam named in an answer (JSON value, or a CSV column "Exam (exam)").
_EXAM_NAMED = ('"exam"', "(exam)")


def _pairs(key: tuple[str, str], response: httpx.Response, secrets: list[str]) -> list[str]:
    """For a marker who also oversees results (viewer, publisher): the roster and course-wide results
    name learners by design; a leak is an answer that names a learner beside the anonymous exam (a route
    of the exam itself, or an answer that mentions it)."""
    found = _leaks(response, secrets)
    if found and ("{assessment}" in key[1] or any(x in response.text for x in _EXAM_NAMED)):
        return found
    return []


@pytest.mark.parametrize("role", ["grader", "moderator", "grader+viewer", "moderator+publisher"])
async def test_no_route_names_a_learner_to_a_grader(tenant: Tenant, app: FastAPI, role: str) -> None:
    tok = await anonymous_exam(tenant, graders_confirm=True)
    roles = role.split("+")
    r = await tenant.put("/v1/courses/c1/members/m1", json={"roles": roles})
    if r.status_code == 422:
        pytest.skip(f"no {role} role in this build")
    await grant(tenant, "c1", "m1", *roles)
    if roles[0] == "grader":
        await grant(tenant, "c1", "g1", *roles)
    # The swept user holds g1's work: as g1 (grader), or as a moderator beside them.
    token = tok["g1"] if roles[0] == "grader" else await user_token(tenant, "m1")
    oversees = len(roles) > 1
    labels = await queue_labels(tenant, tok["g1"])
    assert labels
    # g1's own work (a grader who also oversees lists every attempt: the queue holds only theirs).
    attempts = (await tenant.get(f"{EXAM}/attempts", as_=tok["g1"])).json()["items"]
    ours = labels if oversees else [a["learner"] for a in attempts]
    # Something behind every list: marks on all the work, a moderation sample, overrides, a session.
    for grader in ("g1", "g2"):
        for label in await queue_labels(tenant, tok[grader]):
            r = await tenant.put(f"{EXAM}/marks/{label}/q2", json={"points": 5}, as_=tok[grader])
            assert r.status_code == 200, r.text
    r = await tenant.post(f"{EXAM}/moderation/sample", json={"percent": 100})
    assert r.status_code in (200, 201, 404), r.text  # 404: no moderation in this build
    for learner in LEARNERS:
        r = await tenant.put(f"{EXAM}/overrides/learners/{learner}", json={"extra_attempts": 1, "reason": "ill"})
        assert r.status_code in (200, 201, 404), r.text
    r = await tenant.put(f"{EXAM}/overrides/groups/set-a", json={"extra_attempts": 1})
    assert r.status_code in (200, 201, 404), r.text
    session = await tenant.post("/v1/courses/c1/sessions", json={"external_id": "sitting-1"})
    assert session.status_code == 201, session.text
    pairs = [{"assessment": "exam", "learner": x} for x in LEARNERS]
    r = await tenant.put("/v1/courses/c1/sessions/sitting-1/attempts", json={"attempts": pairs})
    assert r.status_code == 200, r.text
    fill = {
        "course": "c1",
        "assessment": "exam",
        "learner": ours[0],
        "item": "q2",
        "grader": "g1",
        "user": "g1",
        "fmt": "svg",
        "group": "set-a",  # any group: none a grader may change or read by name
        "session": "sitting-1",
        **NO_GRADER_RECORD,
    }
    secrets = identities(tenant)
    unfilled: list[str] = []
    calls: list[tuple[tuple[str, str], str, dict[str, Any]]] = []  # (route, url, request arguments)
    for method, path, op in _operations(app):
        key = (method.upper(), path)
        missing = [p for p in _PARAM.findall(path) if p not in fill]
        if key in SKIPPED:
            continue
        if missing:
            unfilled.append(f"{key}: {missing}")
            continue
        url = path.format(**fill)
        if method == "get":
            calls += [(key, url, {"params": q}) for q in _queries(op)]
        else:
            calls.append((key, url, {"json": SAFE_WRITES.get(key, {})}))

    async def call(key: tuple[str, str], url: str, kw: dict[str, Any]) -> httpx.Response:
        return await tenant.request(key[0], url, as_=token, **kw)

    # The grader's own writes first (so the reads have their work to show), then every read at once,
    # then the other writes one by one (deletions last).
    first = [c for c in calls if c[0] in SAFE_WRITES]
    reads = [c for c in calls if c[0][0] == "GET"]
    rest = [c for c in calls if c not in first and c not in reads]
    answers = [await call(*c) for c in first]
    answers += await asyncio.gather(*(call(*c) for c in reads))
    answers += [await call(*c) for c in rest]
    leaks, answered, refused_ok = [], set(), []
    for (key, url, kw), response in zip(first + reads + rest, answers, strict=True):
        if response.is_success:
            answered.add(key)
            if any(p in NO_GRADER_RECORD for p in _PARAM.findall(key[1])):
                refused_ok.append(f"{key} answered {response.status_code}: give it a real record")
        found = [] if key in ROSTER else _pairs(key, response, secrets) if oversees else _leaks(response, secrets)
        if found:
            leaks.append(f"{key[0]} {url} {kw} -> {response.status_code}: {found}")
    assert not unfilled, "Path parameters the sweep cannot fill (fill them or skip with a reason):\n" + "\n".join(
        unfilled
    )
    assert not leaks, "Learner identities shown on an anonymous assessment:\n" + "\n".join(leaks)
    assert not refused_ok, "\n".join(refused_ok)
    if roles[0] == "grader":
        # The grader's own work and the roster answered: the sweep saw what a grader sees.
        assert not (MUST_ANSWER | ROSTER) - answered, sorted((MUST_ANSWER | ROSTER) - answered)
