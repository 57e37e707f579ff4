"""Certificates: the allow list, generating certificates (who is eligible at that moment), and the event."""

from __future__ import annotations

from typing import Any

import orjson

from gradeflow.core.settings import Settings
from tests.conftest import Receiver, Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, grant, user_token

BASE = "/v1/courses/c1/certificates"
POLICY = {
    "categories": [{"name": "Homework", "weight": 1}],
    "cutoffs": [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}],
}


async def _audit(t: Tenant, action: str) -> list[dict[str, Any]]:
    r = await t.get("/v1/courses/c1/audit", params={"action": action, "limit": 1000})
    return list(r.json()["items"])


async def test_allow_list_crud_is_audited(tenant: Tenant) -> None:
    await course(tenant)
    learners = [{"external_id": x, "track": "audit"} for x in ("ann", "bob")]
    assert (await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": learners})).status_code == 200

    r = await tenant.put(f"{BASE}/allowlist/ann", json={"notes": "Honor code exception"})
    assert r.status_code == 200, r.text
    key = r.json()["created_by"]
    assert key.startswith("key:") and (r.json()["learner"], r.json()["notes"]) == ("ann", "Honor code exception")
    assert (await tenant.put(f"{BASE}/allowlist/ann", json={"notes": "Honor code exception"})).status_code == 200
    assert (await tenant.put(f"{BASE}/allowlist/ann", json={"notes": None})).json()["notes"] is None
    assert (await tenant.put(f"{BASE}/allowlist/bob", json={})).status_code == 200
    listed = (await tenant.get(f"{BASE}/allowlist")).json()
    assert [(a["learner"], a["notes"]) for a in listed["items"]] == [("ann", None), ("bob", None)]
    page = (await tenant.get(f"{BASE}/allowlist", params={"limit": 1})).json()
    assert [a["learner"] for a in page["items"]] == ["ann"]
    rest = (await tenant.get(f"{BASE}/allowlist", params={"cursor": page["next_cursor"]})).json()
    assert [a["learner"] for a in rest["items"]] == ["bob"] and rest["next_cursor"] is None

    assert (await tenant.delete(f"{BASE}/allowlist/ann")).status_code == 204
    assert (await tenant.delete(f"{BASE}/allowlist/ann")).status_code == 204  # idempotent, not audited twice
    assert [a["learner"] for a in (await tenant.get(f"{BASE}/allowlist")).json()["items"]] == ["bob"]

    # An unchanged PUT writes no entry; each change says what the notes were and became.
    allowed = await _audit(tenant, "certificate.allowlisted")
    assert [(e["learner"], e["old"], e["new"]) for e in allowed] == [
        ("ann", None, {"notes": "Honor code exception"}),
        ("ann", {"notes": "Honor code exception"}, {"notes": None}),
        ("bob", None, {"notes": None}),
    ]
    assert {e["actor"] for e in allowed} == {key}
    removed = await _audit(tenant, "certificate.allowlist_removed")
    assert [(e["learner"], e["old"]) for e in removed] == [("ann", {"notes": None})]


async def test_allow_list_errors_and_who_may_call(tenant: Tenant, other_tenant: Tenant) -> None:
    await course(tenant)
    assert (await tenant.put("/v1/courses/c1/enrollments/ann", json={})).status_code == 200
    assert_problem(await tenant.put(f"{BASE}/allowlist/ghost", json={}), 404)
    assert_problem(await tenant.delete(f"{BASE}/allowlist/ghost"), 404)
    assert_problem(await tenant.put(f"{BASE}/allowlist/ann", json={"notes": "x" * 1001}), 422, "/notes")
    assert_problem(await tenant.put(f"{BASE}/allowlist/ann", json={"notes": 5}), 422, "/notes")
    assert_problem(await tenant.put(f"{BASE}/allowlist/ann", json={"note": "typo"}), 422, "/note")
    assert_problem(await tenant.get(f"{BASE}/allowlist", params={"cursor": "nope"}), 422, "cursor")
    assert (await tenant.get(f"{BASE}/allowlist")).json()["items"] == []

    await grant(tenant, "c1", "p1", "planner")
    await grant(tenant, "c1", "g1", "grader")
    planner, grader, learner = [await user_token(tenant, u) for u in ("p1", "g1", "ann")]
    assert (await tenant.put(f"{BASE}/allowlist/ann", json={}, as_=planner)).status_code == 200
    assert (await tenant.post(f"{BASE}:generate", as_=planner)).status_code == 201
    for method, url in (("GET", f"{BASE}/allowlist"), ("POST", f"{BASE}:generate"), ("GET", BASE)):
        assert_problem(await tenant.request(method, url, as_=grader), 403)
        assert_problem(await tenant.request(method, url, as_=learner), 404)
        assert_problem(await tenant.request(method, url, as_=other_tenant.key), 404)
    assert [g["created_by"] for g in (await tenant.get(f"{BASE}/generations")).json()["items"]] == ["p1"]


async def test_generate_issues_by_track_grade_and_allow_list_and_revokes_after_a_grade_drop(
    tenant: Tenant, settings: Settings, receiver: Receiver
) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw", points_possible=10)
    learners = {  # learner: (track, points out of 10, status)
        "ver_pass": ("verified", 8, "enrolled"),
        "ver_fail": ("verified", 2, "enrolled"),
        "aud_pass": ("audit", 9, "enrolled"),
        "aud_allow": ("audit", 0, "enrolled"),
        "pro_allow": ("professional", 9, "enrolled"),
        "gone_pass": ("verified", 9, "unenrolled"),
        "gone_allow": ("audit", 9, "unenrolled"),
    }
    rows = [{"external_id": x, "track": t, "status": s} for x, (t, _, s) in learners.items()]
    assert (await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    await run_worker(settings)  # the served grades appear
    scores = [{"assessment": "hw", "learner": x, "earned": p} for x, (_, p, _) in learners.items()]
    assert (await tenant.post("/v1/courses/c1/scores:batch", json={"scores": scores})).status_code == 200
    for learner in ("aud_allow", "pro_allow", "gone_allow"):
        assert (await tenant.put(f"{BASE}/allowlist/{learner}", json={})).status_code == 200
    hook = await tenant.post(
        "/v1/webhooks", json={"url": receiver.base + "/certs", "events": ["certificates.generated"]}
    )
    assert hook.status_code == 201, hook.text

    first = await tenant.post(f"{BASE}:generate")
    assert first.status_code == 201, first.text
    g1 = first.json()
    assert (g1["policy_version"], g1["eligible"], g1["issued"], g1["removed"]) == (1, 3, 3, 0)
    held = (await tenant.get(BASE)).json()["items"]
    assert [(c["learner"], c["type"], c["reason"], c["generation_id"]) for c in held] == [
        ("ver_pass", "verified", "passing", g1["id"]),
        ("aud_allow", "audit", "allowlist", g1["id"]),
        ("pro_allow", "professional", "allowlist", g1["id"]),
    ]

    # A regrade drops ver_pass below the pass mark; nobody ran the worker: generating brings it current.
    r = await tenant.put("/v1/courses/c1/assessments/hw/scores/ver_pass", json={"earned": 3})
    assert r.status_code == 200, r.text
    assert (await tenant.delete(f"{BASE}/allowlist/pro_allow")).status_code == 204  # still passes on its own
    second = (await tenant.post(f"{BASE}:generate")).json()
    assert (second["eligible"], second["issued"], second["removed"]) == (2, 1, 1)
    held_after = (await tenant.get(BASE)).json()["items"]
    assert [(c["learner"], c["type"], c["reason"], c["generation_id"]) for c in held_after] == [
        ("aud_allow", "audit", "allowlist", second["id"]),
        ("pro_allow", "professional", "passing", second["id"]),
    ]
    assert held_after[0]["created_at"] == held[1]["created_at"]  # kept as it was: the same certificate
    generations = (await tenant.get(f"{BASE}/generations")).json()["items"]
    assert [(g["id"], g["eligible"]) for g in generations] == [(second["id"], 2), (g1["id"], 3)]

    # The audit trail names each learner whose certificate came, changed or went.
    summaries = await _audit(tenant, "certificates.generated")
    assert [e["new"] for e in summaries] == [
        {"generation": g1["id"], "policy_version": 1, "eligible": 3, "issued_count": 3, "removed_count": 0},
        {"generation": second["id"], "policy_version": 1, "eligible": 2, "issued_count": 1, "removed_count": 1},
    ]
    issued = await _audit(tenant, "certificate.issued")
    assert [(e["learner"], e["old"], e["new"]) for e in issued][-1] == (
        "pro_allow",
        {"type": "professional", "reason": "allowlist"},
        {"type": "professional", "reason": "passing", "generation": second["id"]},
    )
    assert sorted(e["learner"] for e in issued) == ["aud_allow", "pro_allow", "pro_allow", "ver_pass"]
    # A generation removes (`certificate.removed`); only staff revoke (`certificate.revoked`).
    [removed] = await _audit(tenant, "certificate.removed")
    assert (removed["learner"], removed["old"]) == ("ver_pass", {"type": "verified", "reason": "passing"})
    assert await _audit(tenant, "certificate.revoked") == []

    # Subscribers hear of each generation, with who was issued and who lost a certificate.
    await run_worker(settings)
    # Deliveries are sent concurrently: they may arrive in either order.
    events = sorted((orjson.loads(r["body"]) for r in receiver.to("/certs")), key=lambda e: e["data"]["generation"])
    assert [e["type"] for e in events] == ["certificates.generated"] * 2
    assert events[0]["data"] == {
        "course": "c1",
        "generation": g1["id"],
        "assessment": None,  # the course certification
        "policy_version": 1,
        "eligible": 3,
        "issued_count": 3,
        "removed_count": 0,
        "issued": [
            {"learner": "aud_allow", "type": "audit", "reason": "allowlist"},
            {"learner": "pro_allow", "type": "professional", "reason": "allowlist"},
            {"learner": "ver_pass", "type": "verified", "reason": "passing"},
        ],
        "removed": [],
    }
    assert (events[1]["data"]["issued"], events[1]["data"]["removed"]) == (
        [{"learner": "pro_allow", "type": "professional", "reason": "passing"}],
        ["ver_pass"],
    )


async def test_generate_without_a_policy_issues_to_the_allow_list_only(tenant: Tenant) -> None:
    await course(tenant)
    rows = [{"external_id": "ann", "track": "verified"}, {"external_id": "bob", "track": "honor"}]
    assert (await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    assert (await tenant.put(f"{BASE}/allowlist/bob", json={"notes": "Staff"})).status_code == 200
    r = await tenant.post(f"{BASE}:generate")
    assert r.status_code == 201, r.text
    assert (r.json()["policy_version"], r.json()["eligible"], r.json()["issued"]) == (None, 1, 1)
    assert [(c["learner"], c["type"]) for c in (await tenant.get(BASE)).json()["items"]] == [("bob", "honor")]
    assert_problem(await tenant.post("/v1/courses/nope/certificates:generate"), 404)
