"""Feedback to learners: written by planners and allocated graders, audited, and the only text that
publishing shows to learners (markers' comments stay internal)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Tenant, assert_problem
from tests.helpers import course, enroll, grant, user_token

EXAM = "/v1/courses/c1/assessments/exam"
FEEDBACK = f"{EXAM}/feedback"


async def _marked_exam(t: Tenant) -> dict[str, str]:
    """ann and bob sat an exam (q1 auto, q2 manual, two markers who disagree and say so in private
    comments); ann's q2 is marked by g1 and g2, reconciled and confirmed. Tokens for the staff."""
    await course(t)
    body = {
        "external_id": "exam",
        "title": "Exam",
        "category": "Exam",
        "marking": {"graders_per_item": 2, "reconciliation": "average"},
        "items": [
            {"external_id": "q1", "points_possible": 4},
            {"external_id": "q2", "points_possible": 10, "marking": "manual"},
        ],
    }
    assert (await t.post("/v1/courses/c1/assessments", json=body)).status_code == 201
    await enroll(t, "c1", "ann", "bob")
    tokens = {}
    for user, role in (("g1", "grader"), ("g2", "grader"), ("g3", "grader"), ("p1", "planner"), ("v1", "viewer")):
        await grant(t, "c1", user, role)
        tokens[user] = await user_token(t, user)
    tokens["ann"] = await user_token(t, "ann")
    # Only ann's attempt is allocated (to g1 and g2): bob's comes later; g3 has nothing.
    for learner in ("ann", "bob"):
        r = await t.put(f"{EXAM}/scores/{learner}", json={"items": [{"item": "q1", "earned": 3}]})
        assert r.json()["status"] == "pending_grading", r.text
        if learner == "ann":
            r = await t.post(f"{EXAM}/allocations", json={"graders": ["g1", "g2"]})
            assert r.json()["allocated"] == 2, r.text
    for grader, points, comment in (("g1", 4, "PRIVATE-g1 far too generous"), ("g2", 8, "PRIVATE-g2 weak proof")):
        r = await t.put(f"{EXAM}/marks/ann/q2", json={"points": points, "comment": comment}, as_=tokens[grader])
        assert r.status_code == 200, r.text
    r = await t.post(f"{EXAM}/confirmations", json={"learners": ["ann"]})
    assert r.json()["confirmed"] == ["ann"], r.text
    return tokens


async def _mine(t: Tenant, token: str) -> dict[str, Any]:
    r = await t.get("/v1/me/courses/c1/results", as_=token)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_learners_see_feedback_never_markers_comments(tenant: Tenant) -> None:
    tok = await _marked_exam(tenant)
    r = await tenant.put(f"{FEEDBACK}/ann", json={"text": "  Well argued overall.  "}, as_=tok["p1"])
    assert r.status_code == 200, r.text
    assert r.json()["feedback"]["text"] == "Well argued overall." and r.json()["feedback"]["updated_by"] == "p1"
    r = await tenant.put(f"{FEEDBACK}/ann/q2", json={"text": "Check the base case of the induction."}, as_=tok["g1"])
    assert r.status_code == 200, r.text
    assert [(i["item"], i["text"]) for i in r.json()["items"]] == [("q2", "Check the base case of the induction.")]

    r = await tenant.post(
        "/v1/courses/c1/publications", json={"assessments": ["exam"], "audience": {"all": True}, "show": "with_items"}
    )
    assert r.status_code == 201 and r.json()["changed"] == 1, r.text
    mine = await _mine(tenant, tok["ann"])
    # Neither marker's comment nor their names reach the learner: only the feedback written for them.
    assert "PRIVATE" not in str(mine) and "g1" not in str(mine) and "g2" not in str(mine)
    [exam] = mine["results"]
    assert exam["earned"] == 3 + 6 and exam["feedback"] == "Well argued overall."
    assert [(i["item"], i["earned"], i.get("feedback")) for i in exam["items"]] == [
        ("q1", 3, None),
        ("q2", 6, "Check the base case of the induction."),
    ]
    assert all("comments" not in i for i in exam["items"])
    assert (await tenant.get(f"{EXAM}/scores/ann")).json()["publication"]["state"] == "published"
    # Item feedback shows only with the items: a later change of it is a change of what ann sees.
    await tenant.put(f"{FEEDBACK}/ann/q2", json={"text": "Check the base case."}, as_=tok["g2"])
    assert (await tenant.get(f"{EXAM}/scores/ann")).json()["publication"]["state"] == "changed"
    # Staff still read the markers' comments where marking is done.
    marks = (await tenant.get(f"{EXAM}/marks")).json()
    assert {m["comment"] for m in marks} == {"PRIVATE-g1 far too generous", "PRIVATE-g2 weak proof"}


async def test_who_writes_and_reads_feedback(tenant: Tenant, other_tenant: Tenant) -> None:
    tok = await _marked_exam(tenant)
    body = {"text": "Good."}
    # A grader writes on work allocated to them only: anything else does not exist for them.
    assert_problem(await tenant.put(f"{FEEDBACK}/ann", json=body, as_=tok["g3"]), 404)
    assert_problem(await tenant.put(f"{FEEDBACK}/ann/q2", json=body, as_=tok["g3"]), 404)
    assert_problem(await tenant.get(f"{FEEDBACK}/ann", as_=tok["g3"]), 404)
    assert_problem(await tenant.put(f"{FEEDBACK}/bob", json=body, as_=tok["g1"]), 404)
    # Viewers read but do not write; learners and other organizations get nothing.
    assert_problem(await tenant.put(f"{FEEDBACK}/ann", json=body, as_=tok["v1"]), 403)
    assert_problem(await tenant.put(f"{FEEDBACK}/ann", json=body, as_=tok["ann"]), 404)
    assert_problem(await tenant.get(f"{FEEDBACK}/ann", as_=tok["ann"]), 404)
    assert_problem(await other_tenant.put(f"{FEEDBACK}/ann", json=body), 404)
    # API keys and planners write on every attempt.
    assert (await tenant.put(f"{FEEDBACK}/bob", json=body)).status_code == 200
    assert (await tenant.put(f"{FEEDBACK}/ann", json=body, as_=tok["g2"])).status_code == 200
    assert (await tenant.get(f"{FEEDBACK}/ann", as_=tok["v1"])).json()["feedback"]["text"] == "Good."
    assert (await tenant.get(f"{FEEDBACK}/ann", as_=tok["g1"])).json()["feedback"]["updated_by"] == "g2"
    # Input errors name the field; unknown items and learners are 404.
    assert_problem(await tenant.put(f"{FEEDBACK}/ann", json={"text": "x" * 5001}), 422, "/text")
    assert_problem(await tenant.put(f"{FEEDBACK}/ann", json={"text": "a\x00b"}), 422, "/text")
    assert_problem(await tenant.put(f"{FEEDBACK}/ann", json={}), 422, "/text")
    assert_problem(await tenant.put(f"{FEEDBACK}/ann/q9", json=body), 404)
    assert_problem(await tenant.put(f"{FEEDBACK}/zed", json=body), 404)
    assert (await tenant.put(f"{FEEDBACK}/ann", json={"text": "x" * 5000})).status_code == 200


async def test_feedback_changes_are_audited(tenant: Tenant) -> None:
    tok = await _marked_exam(tenant)
    await tenant.put(f"{FEEDBACK}/ann/q2", json={"text": "First thoughts."}, as_=tok["g1"])
    await tenant.put(f"{FEEDBACK}/ann/q2", json={"text": "First thoughts."}, as_=tok["g1"])  # no change
    await tenant.put(f"{FEEDBACK}/ann/q2", json={"text": "Second thoughts."}, as_=tok["p1"])
    r = await tenant.put(f"{FEEDBACK}/ann/q2", json={"text": None})
    assert r.status_code == 200 and r.json()["items"] == []
    r = await tenant.get("/v1/courses/c1/audit", params={"action": "feedback.set", "limit": 100})
    entries = sorted(r.json()["items"], key=lambda e: e["id"])
    assert [(e["actor"][:4], e["learner"], e["assessment"], e["item"], e["old"], e["new"]) for e in entries] == [
        ("g1", "ann", "exam", "q2", {"text": None}, {"text": "First thoughts."}),
        ("p1", "ann", "exam", "q2", {"text": "First thoughts."}, {"text": "Second thoughts."}),
        ("key:", "ann", "exam", "q2", {"text": "Second thoughts."}, {"text": None}),
    ]


async def test_learners_see_feedback_as_published(tenant: Tenant) -> None:
    tok = await _marked_exam(tenant)
    await tenant.put(f"{FEEDBACK}/ann", json={"text": "Good work."})
    pubs = "/v1/courses/c1/publications"
    r = await tenant.post(pubs, json={"assessments": ["exam"], "audience": {"learners": ["ann"]}})
    assert r.json()["changed"] == 1, r.text
    assert (await _mine(tenant, tok["ann"]))["results"][0]["feedback"] == "Good work."
    assert (await tenant.get(f"{EXAM}/scores/ann")).json()["publication"]["state"] == "published"

    # A later change is hidden from the learner, shows to staff as a changed publication, and goes
    # out with the next publication of what has changed.
    await tenant.put(f"{FEEDBACK}/ann", json={"text": "Good work; see me about q2."})
    assert (await _mine(tenant, tok["ann"]))["results"][0]["feedback"] == "Good work."
    assert (await tenant.get(f"{EXAM}/scores/ann")).json()["publication"]["state"] == "changed"
    r = await tenant.post(pubs, json={"assessments": ["exam"], "audience": {"unpublished": True}})
    assert r.json()["changed"] == 1, r.text
    assert (await _mine(tenant, tok["ann"]))["results"][0]["feedback"] == "Good work; see me about q2."
    assert (await tenant.get(f"{EXAM}/scores/ann")).json()["publication"]["state"] == "published"
    again = await tenant.post(pubs, json={"assessments": ["exam"], "audience": {"learners": ["ann"]}})
    assert again.json()["changed"] == 0
