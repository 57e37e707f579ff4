"""Manual marking: allocation, private marks, reconciliation rules, third markers, final graders."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Tenant, assert_problem
from tests.helpers import course, enroll, grant, user_token

LEARNERS = ("ann", "bob", "cid")


async def _exam(t: Tenant, **marking: Any) -> dict[str, str]:
    """An exam with an auto item (q1, 4 points) and a manual one (q2, 10 points); every learner
    submitted and has q1 scored. Returns tokens for graders g1..g4 and planner p1."""
    await course(t)
    body = {
        "external_id": "exam",
        "title": "Exam",
        "category": "Exam",
        "marking": marking,
        "items": [
            {"external_id": "q1", "points_possible": 4},
            {"external_id": "q2", "points_possible": 10, "marking": "manual"},
        ],
    }
    r = await t.post("/v1/courses/c1/assessments", json=body)
    assert r.status_code == 201, r.text
    await enroll(t, "c1", *LEARNERS)
    for learner in LEARNERS:
        await t.put(f"/v1/courses/c1/assessments/exam/attempts/{learner}", json={"status": "submitted"})
        r = await t.put(
            f"/v1/courses/c1/assessments/exam/scores/{learner}", json={"items": [{"item": "q1", "earned": 3}]}
        )
        assert r.json()["status"] == "pending_grading"
    tokens = {}
    for user in ("g1", "g2", "g3", "g4"):
        await grant(t, "c1", user, "grader")
        tokens[user] = await user_token(t, user)
    await grant(t, "c1", "p1", "planner")
    tokens["p1"] = await user_token(t, "p1")
    return tokens


async def _mark(t: Tenant, token: str, learner: str, points: float) -> Any:
    return await t.put(f"/v1/courses/c1/assessments/exam/marks/{learner}/q2", json={"points": points}, as_=token)


async def _allocations(t: Tenant) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in (await t.get("/v1/courses/c1/assessments/exam/allocations")).json():
        out.setdefault(a["learner"], []).append(a["grader"])
    return out


async def test_two_graders_average_privately_then_reconcile(tenant: Tenant) -> None:
    tok = await _exam(tenant, graders_per_item=2, reconciliation="average")
    r = await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2", "g3"]})
    assert r.json() == {"allocated": 6, "per_grader": {"g1": 2, "g2": 2, "g3": 2}}
    allocation = await _allocations(tenant)
    assert all(len(set(graders)) == 2 for graders in allocation.values())
    # Allocating again gives nothing new.
    assert (
        await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2", "g3"]})
    ).json()["allocated"] == 0

    first, second = allocation["ann"]
    queue = (await tenant.get("/v1/courses/c1/marking/queue", as_=tok[first])).json()
    assert queue["counts"] == {"exam": 2} and {q["learner"] for q in queue["to_mark"]} >= {"ann"}
    r = await _mark(tenant, tok[first], "ann", 6)
    assert r.json()["status"] == "awaiting_marks"
    # The other grader does not see the first mark yet; the planner does.
    assert (await tenant.get("/v1/courses/c1/assessments/exam/marks", as_=tok[second])).json() == []
    assert len((await tenant.get("/v1/courses/c1/assessments/exam/marks", as_=tok["p1"])).json()) == 1
    assert (await _mark(tenant, tok[second], "ann", 7)).json()["status"] == "reconciled"
    score = (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()
    assert (score["earned"], score["status"]) == (3 + 6.5, "graded")
    assert score["items"][1]["source"] == "manual" and score["items"][1]["graded_by"] == "reconciled"
    assert len((await tenant.get("/v1/courses/c1/assessments/exam/marks", as_=tok[second])).json()) == 2
    queue = (await tenant.get("/v1/courses/c1/marking/queue", as_=tok[first])).json()
    assert queue["counts"] == {"exam": 1}
    export = (await tenant.get("/v1/courses/c1/assessments/exam/marks.csv")).text.splitlines()
    header = export[0].split(",")
    assert header == ["learner", "item", *sorted([first, second]), "score", "source"]
    row = dict(zip(header, export[1].split(","), strict=True))
    assert (row[first], row[second], row["score"], row["source"]) == ("6.0", "7.0", "6.5", "manual")


@pytest.mark.parametrize(("rule", "expected"), [("max", 8), ("min", 5), ("average", 6.5)])
async def test_reconciliation_rules(tenant: Tenant, rule: str, expected: float) -> None:
    tok = await _exam(tenant, graders_per_item=2, reconciliation=rule)
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2"]})
    await _mark(tenant, tok["g1"], "bob", 5)
    await _mark(tenant, tok["g2"], "bob", 8)
    items = (await tenant.get("/v1/courses/c1/assessments/exam/scores/bob")).json()["items"]
    assert items[1]["earned"] == expected


async def test_marks_too_far_apart_go_to_a_third_marker(tenant: Tenant) -> None:
    tok = await _exam(tenant, graders_per_item=2, discrepancy_fraction=0.2)
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2"]})
    await _mark(tenant, tok["g1"], "cid", 2)
    assert (await _mark(tenant, tok["g2"], "cid", 9)).json()["status"] == "needs_third_marker"
    assert (await tenant.get("/v1/courses/c1/assessments/exam/scores/cid")).json()["items"][1]["earned"] is None
    r = await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g3"], "role": "third"})
    assert r.json()["per_grader"] == {"g3": 1}
    assert_problem(await _mark(tenant, tok["g4"], "cid", 5), 403)
    assert (await _mark(tenant, tok["g3"], "cid", 6)).json()["status"] == "reconciled"
    items = (await tenant.get("/v1/courses/c1/assessments/exam/scores/cid")).json()["items"]
    assert (items[1]["earned"], items[1]["graded_by"]) == (6, "g3")


async def test_final_grader_sets_the_mark(tenant: Tenant) -> None:
    tok = await _exam(tenant, graders_per_item=2, reconciliation="final_grader", final_grader="p1")
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2"]})
    await _mark(tenant, tok["g1"], "ann", 4)
    assert (await _mark(tenant, tok["g2"], "ann", 6)).json()["status"] == "awaiting_final_grader"
    assert (await _mark(tenant, tok["p1"], "ann", 5.5)).json()["role"] == "final"
    assert (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()["items"][1]["earned"] == 5.5
    bad = {
        "external_id": "x",
        "title": "X",
        "category": "E",
        "points_possible": 1,
        "marking": {"reconciliation": "final_grader"},
    }
    assert_problem(await tenant.post("/v1/courses/c1/assessments", json=bad), 422, "/marking/final_grader")


async def test_marking_rules_and_roles(tenant: Tenant) -> None:
    tok = await _exam(tenant)
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2"]})
    mine = [learner for learner, graders in (await _allocations(tenant)).items() if "g1" in graders]
    theirs = next(learner for learner in LEARNERS if learner not in mine)
    assert_problem(await _mark(tenant, tok["g1"], theirs, 5), 403)
    assert_problem(
        await tenant.put(f"/v1/courses/c1/assessments/exam/marks/{mine[0]}/q1", json={"points": 1}, as_=tok["g1"]),
        422,
        "item",
    )
    assert_problem(await _mark(tenant, tok["g1"], mine[0], 11), 422, "/points")
    # Only planners allocate; graders only see their own queue.
    assert_problem(
        await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1"]}, as_=tok["g1"]), 403
    )
    assert_problem(await tenant.get("/v1/courses/c1/marking/queue", params={"grader": "g2"}, as_=tok["g1"]), 403)
    assert_problem(await tenant.get("/v1/courses/c1/marking/queue"), 422, "grader")  # a key names the grader
    # A grader taken off keeps what they marked; the rest goes to the others.
    assert (await _mark(tenant, tok["g1"], mine[0], 5)).status_code == 200
    r = await tenant.delete("/v1/courses/c1/assessments/exam/allocations/g1")
    assert r.json()["removed"] == len(mine) - 1
    after = await _allocations(tenant)
    assert after[mine[0]] == ["g1"] and all(after[learner] == ["g2"] for learner in LEARNERS if learner != mine[0])
    entries = (await tenant.get("/v1/courses/c1/audit", params={"action": "mark.set"})).json()["items"]
    assert [(e["actor"], e["new"]["points"]) for e in entries] == [("g1", 5)]


async def test_random_allocation_is_seeded(tenant: Tenant, other_tenant: Tenant) -> None:
    body = {"graders": ["g1", "g2", "g3"], "mode": "random", "seed": 42, "by": "item"}
    results = []
    for t in (tenant, other_tenant):
        await _exam(t)
        r = await t.post("/v1/courses/c1/assessments/exam/allocations", json=body)
        assert r.json()["allocated"] == 3 and sorted(r.json()["per_grader"].values()) == [1, 1, 1]
        results.append(await _allocations(t))
    assert results[0] == results[1]  # the same seed, the same allocation


async def test_confirmation_gates_the_final_result(tenant: Tenant, settings: Any) -> None:
    from tests.conftest import run_worker

    tok = await _exam(tenant)
    await tenant.put(
        "/v1/courses/c1/policy",
        json={"categories": [{"name": "Exam", "weight": 1}], "cutoffs": [{"grade": "P", "min": 0.5}]},
    )
    await run_worker(settings)
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1"]})
    await _mark(tenant, tok["g1"], "ann", 8)
    score = (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()
    # Graded and visible to staff (3 + 8 = 11 of 14), but not final until confirmed.
    assert (score["status"], score["earned"], score["final"], score["confirmed"]) == ("graded", 11, None, False)
    grade = (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()
    assert grade["final"]["percent"] == 0 and grade["current"]["percent"] is None
    # Graders may not confirm here; planners may.
    assert_problem(await tenant.post("/v1/courses/c1/assessments/exam/confirmations", json={}, as_=tok["g1"]), 403)
    r = await tenant.post(
        "/v1/courses/c1/assessments/exam/confirmations", json={"learners": ["ann", "bob", "zed"]}, as_=tok["p1"]
    )
    assert r.json() == {
        "confirmed": ["ann"],
        "skipped": [{"learner": "zed", "reason": "not enrolled"}, {"learner": "bob", "reason": "not graded yet"}],
    }
    score = (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()
    assert (score["final"], score["confirmed_by"]) == (11, "p1")
    grade = (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()
    assert grade["final"]["percent"] == 78.57 and grade["final"]["grade"] == "P"
    # A change of score reopens it for confirmation.
    await _mark(tenant, tok["g1"], "ann", 9)
    assert (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()["final"] is None
    assert (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()["final"]["percent"] == 0


async def test_graders_confirm_their_own_work_when_allowed(tenant: Tenant) -> None:
    tok = await _exam(tenant, graders_confirm=True)
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2"]})
    mine = [learner for learner, graders in (await _allocations(tenant)).items() if "g1" in graders]
    for learner in LEARNERS:
        grader = "g1" if learner in mine else "g2"
        await _mark(tenant, tok[grader], learner, 5)
    r = await tenant.post(
        "/v1/courses/c1/assessments/exam/confirmations", json={"learners": list(LEARNERS)}, as_=tok["g1"]
    )
    assert r.json()["confirmed"] == mine
    assert {s["reason"] for s in r.json()["skipped"]} == {"not allocated to you"}


async def test_override_keeps_the_automatic_score_visible(tenant: Tenant) -> None:
    await _exam(tenant)
    url = "/v1/courses/c1/assessments/exam/scores/ann"
    await tenant.put(url, json={"items": [{"item": "q1", "earned": 4}], "source": "override", "graded_by": "p1"})
    q1 = (await tenant.get(url)).json()["items"][0]
    assert (q1["earned"], q1["computed"], q1["source"]) == (4, 3, "override")
    # A later automatic score (a re-run of the test engine) updates the computed value only.
    await tenant.put(url, json={"items": [{"item": "q1", "earned": 2}]})
    q1 = (await tenant.get(url)).json()["items"][0]
    assert (q1["earned"], q1["computed"], q1["source"]) == (4, 2, "override")
    history = (await tenant.get("/v1/courses/c1/audit", params={"learner": "ann", "action": "item_score.set"})).json()
    assert [e["new"]["source"] for e in history["items"]] == ["auto", "override", "auto"]


async def test_cohort_rescore_after_points_change(tenant: Tenant, settings: Any) -> None:
    from tests.conftest import run_worker

    await _exam(tenant)  # everyone has q1 = 3 of 4
    r = await tenant.post("/v1/courses/c1/assessments/exam/items/q1:rescore", json={"points_possible": 8})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    exam = (await tenant.get("/v1/courses/c1/assessments/exam")).json()
    assert (exam["items"][0]["revision"], exam["points_possible"]) == (2, 18)
    assert (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()["items"][0]["stale"] is True
    await run_worker(settings)
    done = (await tenant.get(f"/v1/courses/c1/rescores/{r.json()['id']}")).json()
    assert (done["status"], done["progress"], done["rescored"]) == ("succeeded", 100, 3)
    for learner in LEARNERS:
        q1 = (await tenant.get(f"/v1/courses/c1/assessments/exam/scores/{learner}")).json()["items"][0]
        assert (q1["earned"], q1["possible"], q1["stale"]) == (6, 8, False)
    entries = (await tenant.get("/v1/courses/c1/audit", params={"action": "item_score.rescore"})).json()["items"]
    assert len(entries) == 3 and entries[0]["old"]["earned"] == 3 and entries[0]["new"]["earned"] == 6
    # A faulty question: full credit for everyone scored on it.
    r = await tenant.post("/v1/courses/c1/assessments/exam/items/q1:rescore", json={"mode": "full_credit"})
    await run_worker(settings)
    assert (await tenant.get("/v1/courses/c1/assessments/exam/scores/bob")).json()["items"][0]["earned"] == 8


async def test_shared_workgroups_mark_together(tenant: Tenant) -> None:
    tok = await _exam(tenant, workflow="shared")
    for name, members in (("red", ["g1", "g2"]), ("blue", ["g3"])):
        r = await tenant.put(f"/v1/courses/c1/workgroups/{name}", json={"members": members})
        assert r.json() == {"name": name, "members": members}
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["red", "blue"]})
    reds = [learner for learner, graders in (await _allocations(tenant)).items() if graders == ["red"]]
    queue = (await tenant.get("/v1/courses/c1/marking/queue", as_=tok["g2"])).json()
    assert queue["counts"] == {"exam": len(reds)} and {q["marking_as"] for q in queue["to_mark"]} == {"red"}
    # Either member marks for the group; the later mark replaces the earlier one: one mark per item.
    assert (await _mark(tenant, tok["g1"], reds[0], 4)).json()["marked_as"] == "red"
    assert (await _mark(tenant, tok["g2"], reds[0], 5)).json()["status"] == "reconciled"
    marks = [m for m in (await tenant.get("/v1/courses/c1/assessments/exam/marks")).json() if m["learner"] == reds[0]]
    assert [(m["grader"], m["points"]) for m in marks] == [("red", 5)]
    assert_problem(await _mark(tenant, tok["g3"], reds[0], 1), 403)
    item = (await tenant.get(f"/v1/courses/c1/assessments/exam/scores/{reds[0]}")).json()["items"][1]
    assert (item["earned"], item["graded_by"]) == (5, "red")
    history = (await tenant.get("/v1/courses/c1/audit", params={"action": "mark.set"})).json()["items"]
    assert [e["actor"] for e in history] == ["g1", "g2"]  # who acted stays in the audit trail


async def test_a_grader_sees_only_allocated_results(tenant: Tenant) -> None:
    tok = await _exam(tenant)
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2"]})
    mine = sorted(learner for learner, graders in (await _allocations(tenant)).items() if "g1" in graders)
    listed = (await tenant.get("/v1/courses/c1/assessments/exam/scores", as_=tok["g1"])).json()["items"]
    assert sorted(s["learner"] for s in listed) == mine
    attempts = (await tenant.get("/v1/courses/c1/assessments/exam/attempts", as_=tok["g1"])).json()["items"]
    assert sorted(a["learner"] for a in attempts) == mine
    other = next(learner for learner in LEARNERS if learner not in mine)
    assert_problem(await tenant.get(f"/v1/courses/c1/assessments/exam/scores/{other}", as_=tok["g1"]), 404)
    assert_problem(await tenant.get(f"/v1/courses/c1/assessments/exam/attempts/{other}", as_=tok["g1"]), 404)
    assert_problem(await tenant.get("/v1/courses/c1/grades", as_=tok["g1"]), 403)
    # Planners (and viewers, publishers) see everything.
    assert len((await tenant.get("/v1/courses/c1/assessments/exam/scores", as_=tok["p1"])).json()["items"]) == 3


async def test_a_grader_reads_only_the_marks_of_allocated_work(tenant: Tenant) -> None:
    tok = await _exam(tenant, graders_confirm=True)
    await enroll(tenant, "c1", "dan")  # enrolled, no attempt
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2"]})
    allocation = await _allocations(tenant)
    mine = sorted(learner for learner, graders in allocation.items() if "g1" in graders)
    for learner, graders in allocation.items():
        assert (await _mark(tenant, tok[graders[0]], learner, 5)).json()["status"] == "reconciled"
    # Every item is reconciled; g1 still sees only the marks of the learners allocated to them.
    seen = (await tenant.get("/v1/courses/c1/assessments/exam/marks", as_=tok["g1"])).json()
    assert sorted(m["learner"] for m in seen) == mine
    assert len((await tenant.get("/v1/courses/c1/assessments/exam/marks", as_=tok["p1"])).json()) == 3
    # Only planners export the marks.
    assert_problem(await tenant.get("/v1/courses/c1/assessments/exam/marks.csv", as_=tok["g1"]), 403)
    # Confirming says nothing about others' work: not whether it exists, nor how far it is.
    others = [learner for learner in (*LEARNERS, "dan") if learner not in mine]
    r = await tenant.post("/v1/courses/c1/assessments/exam/confirmations", json={"learners": others}, as_=tok["g1"])
    assert r.json() == {"confirmed": [], "skipped": [{"learner": x, "reason": "not allocated to you"} for x in others]}
    # Nor does marking: a learner without an attempt is not allocated to them either.
    assert_problem(await _mark(tenant, tok["g1"], "dan", 5), 403)
    assert_problem(await _mark(tenant, tok["g1"], others[0], 5), 403)


async def test_the_marks_export_runs_no_formulas(tenant: Tenant) -> None:
    await course(tenant)
    learners = ["=cmd|' -C calc'!A0", "@evil", "+1+1", "-2+3"]  # (external ids hold no slash)
    rows = [{"external_id": x, "username": x, "email": f"l{n}@example.org"} for n, x in enumerate(learners)]
    r = await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})
    assert r.status_code == 200, r.text
    body = {
        "external_id": "exam",
        "title": "=HYPERLINK(1)",
        "category": "Exam",
        "marking": {"graders_per_item": 2},
        "items": [{"external_id": "@q", "points_possible": 10, "marking": "manual"}],
    }
    assert (await tenant.post("/v1/courses/c1/assessments", json=body)).status_code == 201
    graders = ["=g1", "@g2"]  # user ids (JWT subjects) are the LMS's text too
    for learner in learners:
        await tenant.put(f"/v1/courses/c1/assessments/exam/attempts/{quote(learner)}", json={"status": "submitted"})
    for grader in graders:
        await grant(tenant, "c1", grader, "grader")
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": graders})
    for grader in graders:
        token = await user_token(tenant, grader)
        for learner in learners:
            r = await tenant.put(
                f"/v1/courses/c1/assessments/exam/marks/{quote(learner)}/{quote('@q')}",
                json={"points": 4},
                as_=token,
            )
            assert r.status_code == 200, r.text
    export = await tenant.get("/v1/courses/c1/assessments/exam/marks.csv")
    table = list(csv.reader(io.StringIO(export.text)))
    assert table[0] == ["learner", "item", "'=g1", "'@g2", "score", "source"]
    assert sorted(row[0] for row in table[1:]) == sorted("'" + x for x in learners)
    assert {row[1] for row in table[1:]} == {"'@q"}
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for row in table for c in row)


async def test_rescoring_leaves_unfinished_and_cancelled_attempts_alone(
    tenant: Tenant, settings: Any, sessionmaker: Any
) -> None:
    from sqlalchemy import text

    from tests.conftest import run_worker

    tok = await _exam(tenant)  # everyone submitted, q1 = 3 of 4, q2 to mark
    await enroll(tenant, "c1", "dan")
    await tenant.put("/v1/courses/c1/assessments/exam/attempts/dan", json={"status": "in_progress"})
    await tenant.put("/v1/courses/c1/assessments/exam/attempts/cid", json={"status": "cancelled"})
    await tenant.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1"]})
    await _mark(tenant, tok["g1"], "ann", 8)
    r = await tenant.post("/v1/courses/c1/assessments/exam/confirmations", json={"learners": ["ann"]})
    assert r.json()["confirmed"] == ["ann"]
    async with sessionmaker() as session:  # a submitted attempt holding a score (as older data may)
        await session.execute(
            text(
                "UPDATE attempts t SET status = 'submitted' FROM enrollments e, courses c"
                " WHERE e.id = t.enrollment_id AND c.id = e.course_id AND c.organization_id = :o"
                " AND e.external_id = 'bob'"
            ),
            {"o": tenant.id},
        )
        await session.commit()

    r = await tenant.post("/v1/courses/c1/assessments/exam/items/q1:rescore", json={"mode": "full_credit"})
    await run_worker(settings)
    assert (await tenant.get(f"/v1/courses/c1/rescores/{r.json()['id']}")).json()["rescored"] == 2  # ann, bob
    dan = (await tenant.get("/v1/courses/c1/assessments/exam/attempts/dan")).json()
    assert (dan["status"], dan["earned"]) == ("in_progress", None)
    cid = (await tenant.get("/v1/courses/c1/assessments/exam/scores/cid")).json()
    assert (cid["status"], cid["items"][0]["earned"]) == ("cancelled", 3)
    ann = (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()
    assert (ann["status"], ann["earned"], ann["confirmed"]) == ("graded", 12, False)  # a changed score reopens it
    bob = (await tenant.get("/v1/courses/c1/assessments/exam/scores/bob")).json()
    assert (bob["status"], bob["items"][0]["earned"]) == ("pending_grading", 4)
    # Every change is on the record: each changed item score, and each attempt whose status changed.
    log = "/v1/courses/c1/audit"
    rescored = (await tenant.get(log, params={"action": "item_score.rescore"})).json()["items"]
    assert sorted((e["learner"], e["old"]["earned"], e["new"]["earned"]) for e in rescored) == [
        ("ann", 3, 4),
        ("bob", 3, 4),
    ]
    changed = (await tenant.get(log, params={"action": "attempt.status_changed"})).json()["items"]
    by_rescore = [e for e in changed if e["request_id"] == f"rescore-{r.json()['id']}"]
    assert [(e["learner"], e["old"], e["new"], e["actor"]) for e in by_rescore] == [
        ("bob", {"status": "submitted"}, {"status": "pending_grading"}, r.json()["requested_by"])
    ]
