"""Moderation: a stratified sample, moderators agreeing or adjusting (the graders' marks kept), scaling a
grader's marks, the moderation status, confirmation waiting for it, who may do what, and anonymity."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gradeflow.core.settings import Settings
from gradeflow.courses.commands import MarkingSettings
from gradeflow.marking.service import marking
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import course, enroll, grant, user_token

C = "/v1/courses/c1"
A = f"{C}/assessments/exam"
M = f"{A}/moderation"


async def _exam(t: Tenant, learners: int, graders: tuple[str, ...] = ("g1", "g2"), **fields: Any) -> list[str]:
    """An exam with an auto item q1 (4 points, 3 scored) and manual items q2 and q3 (10 points each); every
    learner's attempt pending grading; the work allocated evenly (by candidate) to `graders`. Returns the learners."""
    await course(t)
    body = {
        "external_id": "exam",
        "title": "Exam",
        "category": "Exam",
        "items": [
            {"external_id": "q1", "points_possible": 4},
            {"external_id": "q2", "points_possible": 10, "marking": "manual"},
            {"external_id": "q3", "points_possible": 10, "marking": "manual"},
        ],
        **fields,
    }
    r = await t.post(f"{C}/assessments", json=body)
    assert r.status_code == 201, r.text
    names = [f"l{n:02d}" for n in range(learners)]
    await enroll(t, "c1", *names)
    for learner in names:
        r = await t.put(f"{A}/scores/{learner}", json={"items": [{"item": "q1", "earned": 3}]})
        assert r.status_code == 200, r.text
    for g in graders:
        await grant(t, "c1", g, "grader")
    r = await t.post(f"{A}/allocations", json={"graders": list(graders)})
    assert r.status_code == 200, r.text
    return names


async def _allocated(t: Tenant) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in (await t.get(f"{A}/allocations")).json():
        out.setdefault(a["grader"], []).append(a["learner"])
    return {g: sorted(ls) for g, ls in out.items()}


async def _mark(t: Tenant, grader: str, learner: str, q2: float, q3: float = 5) -> None:
    for item, points in (("q2", q2), ("q3", q3)):
        r = await t.put(f"{A}/marks/{learner}/{item}", json={"points": points}, params={"grader": grader})
        assert r.status_code == 200, r.text


async def _score(t: Tenant, learner: str) -> dict[str, Any]:
    r = await t.get(f"{A}/scores/{learner}")
    assert r.status_code == 200, r.text
    body = r.json()
    return {"earned": body["earned"], **{i["item"]: i["earned"] for i in body["items"]}}


async def _final_percent(t: Tenant, learner: str) -> float:
    r = await t.get(f"{C}/learners/{learner}/grade")
    assert r.status_code == 200, r.text
    return float(r.json()["final"]["percent"])


async def _audit(t: Tenant, action: str) -> list[dict[str, Any]]:
    r = await t.get(f"{C}/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _sampled(t: Tenant, **params: Any) -> list[dict[str, Any]]:
    r = await t.get(f"{M}/samples", **params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _moderator(t: Tenant, user: str = "mod") -> str:
    await grant(t, "c1", user, "moderator")
    return await user_token(t, user)


async def test_sample_is_stratified_by_grader_and_only_grows(tenant: Tenant) -> None:
    await _exam(tenant, 10, graders=("g1", "g2", "g3"))
    work = await _allocated(tenant)
    # g1 marks all 4 of theirs, g2 marks 2 of 3, g3 marks nothing.
    for learner in work["g1"]:
        await _mark(tenant, "g1", learner, 6)
    for learner in work["g2"][:2]:
        await _mark(tenant, "g2", learner, 6)
    r = await tenant.get(M)
    assert r.json()["status"] == "not_required" and r.json()["sampled"] == 0

    r = await tenant.post(f"{M}/sample", json={"percent": 30})
    assert r.status_code == 200, r.text
    body = r.json()
    # ceil(30% of 4) = 2 for g1; ceil(30% of 2) = 1 for g2; g3 marked nothing and has no stratum.
    assert body["added"] == 3 and body["added_per_grader"] == {"g1": 2, "g2": 1}
    assert body["status"] == "in_progress" and body["pending"] == 3
    assert {g["grader"]: (g["marked"], g["sampled"], g["pending"]) for g in body["graders"]} == {
        "g1": (4, 2, 2),
        "g2": (2, 1, 1),
    }
    first = {s["learner"] for s in await _sampled(tenant)}
    assert {s["grader"] for s in await _sampled(tenant)} == {"g1", "g2"}
    assert first <= set(work["g1"]) | set(work["g2"][:2])

    # A smaller percentage adds nothing (the sample already covers it); a larger one adds, keeping the first.
    assert (await tenant.post(f"{M}/sample", json={"percent": 10})).json()["added"] == 0
    r = await tenant.post(f"{M}/sample", json={"percent": 75})
    assert r.json()["added_per_grader"] == {"g1": 1, "g2": 1}
    assert first <= {s["learner"] for s in await _sampled(tenant)}
    (entry, *_) = await _audit(tenant, "moderation.sampled")
    assert len(await _audit(tenant, "moderation.sampled")) == 2  # the empty re-sample wrote nothing
    assert entry["assessment"] == "exam" and len(entry["new"]["learners"]) in (2, 3)


async def test_sample_by_list_names_bad_learners(tenant: Tenant) -> None:
    learners = await _exam(tenant, 4)
    work = await _allocated(tenant)
    marked = work["g1"][0]
    await _mark(tenant, "g1", marked, 7)
    unmarked = next(x for x in learners if x != marked)
    r = await tenant.post(f"{M}/sample", json={"learners": [marked, "nobody", unmarked]})
    body = assert_problem(r, 422, "/learners/1", "/learners/2")
    assert "/learners/0" not in {e["pointer"] for e in body["errors"]}
    assert_problem(await tenant.post(f"{M}/sample", json={}), 422, "/percent")
    assert_problem(await tenant.post(f"{M}/sample", json={"percent": 0}), 422, "/percent")
    assert_problem(await tenant.post(f"{M}/sample", json={"learners": [marked, marked]}), 422, "/learners/1")
    r = await tenant.post(f"{M}/sample", json={"learners": [marked]})
    assert r.json()["added"] == 1 and r.json()["added_per_grader"] == {"g1": 1}
    # Listing again adds nothing.
    assert (await tenant.post(f"{M}/sample", json={"learners": [marked]})).json()["added"] == 0
    (s,) = await _sampled(tenant)
    assert s["learner"] == marked and s["status"] == "pending" and s["grader"] == "g1"
    q2 = next(i for i in s["items"] if i["item"] == "q2")
    assert q2["marks"] == [{"grader": "g1", "role": "marker", "points": 7.0, "comment": None}]
    assert q2["moderator"] is None and q2["score"] == 7.0 and s["earned"] == 15.0


async def test_adjust_keeps_the_graders_marks_and_the_score_follows_the_moderator(
    tenant: Tenant, settings: Settings
) -> None:
    await _exam(tenant, 2)
    learner = (await _allocated(tenant))["g1"][0]
    await _mark(tenant, "g1", learner, 8, 6)
    assert await _score(tenant, learner) == {"earned": 17.0, "q1": 3.0, "q2": 8.0, "q3": 6.0}
    r = await tenant.put(f"{C}/policy", json={"categories": [{"name": "Exam", "weight": 1}]})
    assert r.status_code == 200, r.text
    await run_worker(settings)  # the policy's first grades
    await tenant.post(f"{A}/confirmations", json={"learners": [learner]})
    assert (await tenant.get(f"{A}/scores/{learner}")).json()["confirmed"] is True
    assert await _final_percent(tenant, learner) == 70.83  # 17 of 24
    await tenant.post(f"{M}/sample", json={"learners": [learner]})
    mod = await _moderator(tenant)

    r = await tenant.post(
        f"{M}/samples/{learner}:adjust", json={"items": [{"item": "q2", "points": 5}], "note": "Too generous"}, as_=mod
    )
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["status"] == "adjusted" and s["moderator"] == "mod" and s["note"] == "Too generous"
    q2 = next(i for i in s["items"] if i["item"] == "q2")
    assert [m["points"] for m in q2["marks"]] == [8.0] and q2["moderator"]["points"] == 5.0 and q2["score"] == 5.0
    # The score (and total) follow the moderator; q3 keeps the grader's mark; confirmation is reopened.
    assert await _score(tenant, learner) == {"earned": 14.0, "q1": 3.0, "q2": 5.0, "q3": 6.0}
    assert (await tenant.get(f"{A}/scores/{learner}")).json()["confirmed"] is False
    await tenant.post(f"{A}/confirmations", json={"learners": [learner]})
    assert await _final_percent(tenant, learner) == 58.33  # 14 of 24
    # The grader's mark is still there, beside the moderator's.
    marks = {(m["grader"], m["item"]): m["points"] for m in (await tenant.get(f"{A}/marks")).json()}
    assert marks[("g1", "q2")] == 8.0 and marks[("mod", "q2")] == 5.0
    # A grader marking again does not undo the moderation.
    await _mark(tenant, "g1", learner, 9, 6)
    assert (await _score(tenant, learner))["q2"] == 5.0
    (entry,) = await _audit(tenant, "moderation.adjusted")
    assert entry["learner"] == learner and entry["actor"] == "mod"
    assert entry["old"]["status"] == "pending" and entry["new"]["moderator_marks"] == {"q2": 5.0}
    assert any(e["item"] == "q2" and e["new"]["earned"] == 5 for e in await _audit(tenant, "item_score.set"))

    # Agreeing afterwards withdraws the adjustment: the grader's mark decides again.
    r = await tenant.post(f"{M}/samples/{learner}:agree", json={}, as_=mod)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "agreed"
    assert await _score(tenant, learner) == {"earned": 18.0, "q1": 3.0, "q2": 9.0, "q3": 6.0}
    (agreed,) = await _audit(tenant, "moderation.agreed")
    assert agreed["old"]["moderator_marks"] == {"q2": 5.0} and agreed["new"]["status"] == "agreed"
    assert (await tenant.get(M)).json()["graders"][0]["agreed"] == 1


async def test_adjustment_is_validated(tenant: Tenant) -> None:
    learners = await _exam(tenant, 2)
    learner = (await _allocated(tenant))["g1"][0]
    r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 8}, params={"grader": "g1"})
    assert r.status_code == 200, r.text
    await tenant.post(f"{M}/sample", json={"learners": [learner]})
    # q3 is not marked yet: there is nothing to moderate on it.
    r = await tenant.post(f"{M}/samples/{learner}:adjust", json={"items": [{"item": "q3", "points": 1}]})
    assert_problem(r, 422, "/items/0/item")
    r = await tenant.post(
        f"{M}/samples/{learner}:adjust",
        json={"items": [{"item": "q1", "points": 1}, {"item": "q2", "points": 11}, {"item": "qx", "points": 1}]},
    )
    assert_problem(r, 422, "/items/0/item", "/items/1/points", "/items/2/item")
    other = next(x for x in learners if x != learner)
    r = await tenant.post(f"{M}/samples/{other}:agree", json={})
    assert_problem(r, 404)


async def test_scaling_counts_a_graders_marks_times_the_factor(tenant: Tenant) -> None:
    await _exam(tenant, 4)
    work = await _allocated(tenant)
    a, b = work["g1"]
    c = work["g2"][0]
    await _mark(tenant, "g1", a, 8, 6)
    await _mark(tenant, "g1", b, 3.333333, 0)
    await _mark(tenant, "g2", c, 8, 6)
    mod = await _moderator(tenant)

    r = await tenant.put(f"{M}/scalings/g1", json={"factor": 1.5, "reason": "Marks harshly"}, as_=mod)
    assert r.status_code == 200, r.text
    assert r.json()["factor"] == 1.5 and r.json()["scaled_by"] == "mod" and r.json()["rescored"] == 3
    # 8 x 1.5 = 12 is capped at the item's 10 points; 3.333333 x 1.5 rounds to 6 decimals; g2 is untouched.
    assert await _score(tenant, a) == {"earned": 22.0, "q1": 3.0, "q2": 10.0, "q3": 9.0}
    assert (await _score(tenant, b))["q2"] == 5.0
    assert (await _score(tenant, c))["q2"] == 8.0
    # The marks themselves are unchanged.
    marks = {(m["learner"], m["item"]): m["points"] for m in (await tenant.get(f"{A}/marks")).json()}
    assert marks[(a, "q2")] == 8.0
    # A later mark of the scaled grader counts scaled too; a moderator's own mark is never scaled.
    await _mark(tenant, "g1", b, 4, 0)
    assert (await _score(tenant, b))["q2"] == 6.0
    await tenant.post(f"{M}/sample", json={"learners": [b]})
    await tenant.post(f"{M}/samples/{b}:adjust", json={"items": [{"item": "q2", "points": 4}]}, as_=mod)
    assert (await _score(tenant, b))["q2"] == 4.0
    status = (await tenant.get(M, as_=mod)).json()
    assert [(s["grader"], s["factor"], s["reason"]) for s in status["scalings"]] == [("g1", 1.5, "Marks harshly")]
    (scaled,) = await _audit(tenant, "moderation.scaled")
    assert scaled["old"] is None and scaled["new"] == {"grader": "g1", "factor": 1.5, "reason": "Marks harshly"}

    r = await tenant.delete(f"{M}/scalings/g1", as_=mod)
    assert r.status_code == 204, r.text
    assert await _score(tenant, a) == {"earned": 17.0, "q1": 3.0, "q2": 8.0, "q3": 6.0}
    assert (await _score(tenant, b))["q2"] == 4.0  # still the moderator's
    (unscaled,) = await _audit(tenant, "moderation.unscaled")
    assert unscaled["old"]["factor"] == 1.5
    assert_problem(await tenant.delete(f"{M}/scalings/g1"), 404)
    assert_problem(await tenant.put(f"{M}/scalings/g9", json={"factor": 2, "reason": "x"}), 404)
    assert_problem(await tenant.put(f"{M}/scalings/g1", json={"factor": 11, "reason": "x"}), 422, "/factor")
    assert_problem(await tenant.put(f"{M}/scalings/g1", json={"factor": 0, "reason": "x"}), 422, "/factor")


async def test_required_moderation_holds_confirmation_until_complete(tenant: Tenant) -> None:
    await _exam(tenant, 2, moderation_required=True)
    work = await _allocated(tenant)
    a, b = work["g1"][0], work["g2"][0]
    await _mark(tenant, "g1", a, 8)
    await _mark(tenant, "g2", b, 7)
    assert (await tenant.get(M)).json()["status"] == "not_started"
    body = assert_problem(await tenant.post(f"{A}/confirmations", json={}), 409)
    assert "no moderation sample" in body["detail"]

    await tenant.post(f"{M}/sample", json={"percent": 50})
    assert (await tenant.get(M)).json()["status"] == "in_progress"
    body = assert_problem(await tenant.post(f"{A}/confirmations", json={}), 409)
    assert "2 sampled attempts pending" in body["detail"]

    mod = await _moderator(tenant)
    assert (await tenant.post(f"{M}/samples/{a}:agree", json={"note": "Fine"}, as_=mod)).status_code == 200
    assert (await tenant.get(M)).json()["status"] == "in_progress"
    r = await tenant.post(f"{M}/samples/{b}:adjust", json={"items": [{"item": "q3", "points": 4}]}, as_=mod)
    assert r.status_code == 200, r.text
    status = (await tenant.get(M)).json()
    assert status["status"] == "complete" and status["pending"] == 0
    assert {g["grader"]: (g["agreed"], g["adjusted"]) for g in status["graders"]} == {"g1": (1, 0), "g2": (0, 1)}
    r = await tenant.post(f"{A}/confirmations", json={})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["confirmed"]) == sorted([a, b])
    # Pending samples filter.
    assert await _sampled(tenant, params={"status": "pending"}) == []
    # An assessment without manual items has no marks to moderate: it confirms.
    r = await tenant.post(
        f"{C}/assessments",
        json={
            "external_id": "quiz",
            "title": "Quiz",
            "category": "Quiz",
            "points_possible": 5,
            "moderation_required": True,
        },
    )
    assert r.status_code == 201, r.text
    assert (await tenant.put(f"{C}/assessments/quiz/scores/{a}", json={"earned": 4})).status_code == 200
    assert (await tenant.get(f"{C}/assessments/quiz/moderation")).json()["status"] == "not_required"
    r = await tenant.post(f"{C}/assessments/quiz/confirmations", json={})
    assert r.status_code == 200, r.text


async def test_who_may_moderate(tenant: Tenant) -> None:
    await _exam(tenant, 2)
    work = await _allocated(tenant)
    a = work["g1"][0]
    await _mark(tenant, "g1", a, 8)
    grader = await user_token(tenant, "g2")
    mod = await _moderator(tenant)
    await grant(tenant, "c1", "p1", "planner")
    planner = await user_token(tenant, "p1")
    g1 = await user_token(tenant, "g1")
    # Graders do not moderate or see moderation.
    for method, url, body in (
        ("POST", f"{M}/sample", {"percent": 50}),
        ("GET", M, None),
        ("GET", f"{M}/samples", None),
        ("POST", f"{M}/samples/{a}:agree", {}),
        ("PUT", f"{M}/scalings/g1", {"factor": 2, "reason": "x"}),
    ):
        assert_problem(await tenant.request(method, url, json=body, as_=grader), 403)
    # Moderators review but do not pick the sample; planners pick it (and may moderate).
    assert_problem(await tenant.post(f"{M}/sample", json={"percent": 50}, as_=mod), 403)
    r = await tenant.post(f"{M}/sample", json={"percent": 50}, as_=planner)
    assert r.status_code == 200 and r.json()["added"] == 1
    assert (await tenant.get(f"{M}/samples", as_=mod)).status_code == 200
    # Nobody moderates work they marked, nor scales their own marks, nor acts as someone else.
    await grant(tenant, "c1", "g1", "grader", "moderator")
    assert_problem(await tenant.post(f"{M}/samples/{a}:agree", json={}, as_=g1), 403)
    assert_problem(await tenant.put(f"{M}/scalings/g1", json={"factor": 2, "reason": "x"}, as_=g1), 403)
    assert (await tenant.put(f"{M}/scalings/g1", json={"factor": 2, "reason": "x"}, as_=mod)).status_code == 200
    assert_problem(await tenant.delete(f"{M}/scalings/g1", as_=g1), 403)
    r = await tenant.post(f"{M}/samples/{a}:agree", json={}, params={"moderator": "other"}, as_=mod)
    assert_problem(r, 403)
    r = await tenant.post(f"{M}/samples/{a}:agree", json={}, as_=planner)
    assert r.status_code == 200 and r.json()["moderator"] == "p1"
    # The role is granted through the members route, and audited there.
    (granted, *_) = [e for e in await _audit(tenant, "member.roles_changed") if e["new"]["user_id"] == "mod"]
    assert granted["new"]["roles"] == ["moderator"]


async def test_moderators_see_candidate_labels_on_an_anonymous_assessment(tenant: Tenant) -> None:
    learners = await _exam(tenant, 2, anonymous=True)
    learner = (await _allocated(tenant))["g1"][0]
    await _mark(tenant, "g1", learner, 8)
    await tenant.post(f"{M}/sample", json={"learners": [learner]})
    mod = await _moderator(tenant)
    (s,) = await _sampled(tenant, as_=mod)
    shown = s["learner"]
    assert shown.startswith("candidate-") and shown not in learners
    # The real id is unknown to the moderator; the label is how they address the work.
    assert_problem(await tenant.post(f"{M}/samples/{learner}:agree", json={}, as_=mod), 404)
    r = await tenant.post(f"{M}/samples/{shown}:adjust", json={"items": [{"item": "q2", "points": 6}]}, as_=mod)
    assert r.status_code == 200, r.text
    assert r.json()["learner"] == shown and not any(x in r.text for x in learners)
    # The planner (an API key here) sees the learner.
    (s,) = await _sampled(tenant)
    assert s["learner"] == learner and s["status"] == "adjusted"


def test_reconciliation_with_scalings_and_a_moderator() -> None:
    """The rule itself, by hand: scaled marks enter the average (capped, 6 decimals); whether the markers
    disagree is judged on the marks as given; a moderator's mark decides even where the graders disagree
    beyond the threshold; a moderator's mark is never scaled."""
    cfg = MarkingSettings.model_validate({"graders_per_item": 2, "reconciliation": "average", "discrepancy_points": 3})
    ten = Decimal(10)
    marks = [("g1", "marker", Decimal(6)), ("g2", "marker", Decimal(7))]
    assert marking.reconcile(cfg, ten, marks).score == Decimal("6.5")
    # g1 x 1.1 = 6.6: average (6.6 + 7) / 2 = 6.8.
    assert marking.reconcile(cfg, ten, marks, {"g1": Decimal("1.1")}).score == Decimal("6.8")
    # g2 x 2 = 14 is capped at 10; the marks as given are 1 apart, so no third marker: (6 + 10) / 2 = 8.
    state = marking.reconcile(cfg, ten, marks, {"g2": Decimal(2)})
    assert (state.status, state.score) == ("reconciled", Decimal(8))
    # Marks 4 apart as given need a third marker, whatever a scaling would make of them ...
    apart = [("g1", "marker", Decimal(3)), ("g2", "marker", Decimal(7))]
    assert marking.reconcile(cfg, ten, apart).status == "needs_third_marker"
    assert marking.reconcile(cfg, ten, apart, {"g1": Decimal(2)}).status == "needs_third_marker"
    # ... unless a moderator decides; their mark counts as given, scaled or not.
    moderated = [*apart, ("m1", "moderator", Decimal(5))]
    state = marking.reconcile(cfg, ten, moderated, {"g2": Decimal(2), "m1": Decimal(2)})
    assert (state.status, state.score, state.decided_by) == ("moderated", Decimal(5), "m1")
    assert marking.scaled(Decimal("3.333333"), Decimal("1.5"), ten) == Decimal("5.000000")
    assert marking.scaled(Decimal("0.000001"), Decimal("0.5"), ten) == Decimal("0.000001")  # half up
