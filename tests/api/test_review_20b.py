"""Review of #20 (anonymous marking and moderation): defects a user would notice, each a failing test."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from gradeflow.core.settings import Settings
from gradeflow.marking.service import marking
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import course, enroll, grant, user_token

C = "/v1/courses/c1"
A = f"{C}/assessments/exam"
M = f"{A}/moderation"
LEARNERS = ("lrn-zed-7731", "lrn-yve-4402")


async def _exam(t: Tenant, anonymous: bool = True, **marking: Any) -> None:
    """Course c1 with a grading policy and an exam (q1 automatic, q2 manual) both learners have started;
    the work allocated to grader g1."""
    await course(t)
    await enroll(t, "c1", *LEARNERS)
    body = {
        "external_id": "exam",
        "title": "Exam",
        "category": "Exam",
        "anonymous": anonymous,
        "marking": marking,
        "items": [
            {"external_id": "q1", "points_possible": 4},
            {"external_id": "q2", "points_possible": 10, "marking": "manual"},
        ],
    }
    r = await t.post(f"{C}/assessments", json=body)
    assert r.status_code == 201, r.text
    policy = {
        "categories": [{"name": "Exam", "weight": 1}],
        "cutoffs": [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}],
    }
    r = await t.put(f"{C}/policy", json=policy)
    assert r.status_code == 200, r.text
    for learner in LEARNERS:
        r = await t.put(f"{A}/scores/{learner}", json={"items": [{"item": "q1", "earned": 3}]})
        assert r.status_code == 200, r.text


async def _grader(t: Tenant, user: str, *roles: str) -> str:
    await grant(t, "c1", user, *roles)
    return await user_token(t, user)


async def _labels(t: Tenant, token: str) -> list[str]:
    r = await t.get(f"{C}/marking/queue", as_=token)
    assert r.status_code == 200, r.text
    return [q["learner"] for q in r.json()["to_mark"]]


# --- anonymity --------------------------------------------------------------------------------------


async def test_oversized_candidate_label_is_404_not_500(tenant: Tenant) -> None:
    """A label the grammar accepts (up to 10 digits) but beyond the integer column must be the same 404
    as any unknown label, on every route a grader addresses work by label."""
    await _exam(tenant)
    g1 = await _grader(tenant, "g1", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    assert await _labels(tenant, g1)
    for path in (f"{A}/attempts/candidate-9999999999", f"{A}/scores/candidate-9999999999"):
        r = await tenant.get(path, as_=g1)
        assert_problem(r, 404)
    r = await tenant.put(f"{A}/marks/candidate-9999999999/q2", json={"points": 5}, as_=g1)
    assert_problem(r, 404)


async def _graded_anonymous_exam(t: Tenant, settings: Settings) -> str:
    """The anonymous exam marked by g1 (by label) and confirmed; returns a token of gv, who holds both the
    grader and the viewer role in the course."""
    await _exam(t)
    g1 = await _grader(t, "g1", "grader")
    gv = await _grader(t, "gv", "grader", "viewer")
    r = await t.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    for n, label in enumerate(await _labels(t, g1)):
        r = await t.put(f"{A}/marks/{label}/q2", json={"points": 4 + n}, as_=g1)
        assert r.status_code == 200, r.text
    r = await t.post(f"{A}/confirmations", json={})
    assert r.status_code == 200, r.text
    await run_worker(settings)
    return gv


async def test_grader_who_also_views_gets_no_anonymous_scores_in_the_gradebook(
    tenant: Tenant, settings: Settings
) -> None:
    """gv holds grader (so anonymity.concealed() is true for them: the results table and dashboard leave the
    anonymous exam out) and viewer (GRADE_READ). The gradebook still pairs each learner id with their exam
    score: matching those against the candidates' scores gv sees while marking names every candidate."""
    gv = await _graded_anonymous_exam(tenant, settings)
    # The results table keeps the exam away from them (the rule as written there) ...
    r = await tenant.get(f"{C}/results", as_=gv)
    assert r.status_code == 200, r.text
    assert all(row.get("assessment") != "exam" for row in r.json()["items"])
    # ... the gradebook must too: no learner's row carries a score for the anonymous exam.
    r = await tenant.get(f"{C}/gradebook", as_=gv)
    assert r.status_code == 200, r.text
    leaked = [
        (row["learner"], cell["score"])
        for row in r.json()["items"]
        for cell in row["assessments"]
        if cell["assessment"] == "exam" and cell["score"] is not None
    ]
    assert leaked == []


async def test_grader_who_also_views_gets_no_anonymous_score_in_a_learners_progress(
    tenant: Tenant, settings: Settings
) -> None:
    """The same pairing through GET /learners/{learner}/progress (GRADE_READ): the learner's exam score."""
    gv = await _graded_anonymous_exam(tenant, settings)
    r = await tenant.get(f"{C}/learners/{LEARNERS[0]}/progress", as_=gv)
    assert r.status_code == 200, r.text
    exam = [a for a in r.json()["assessments"] if a["assessment"] == "exam"]
    assert all(a["earned"] is None and a["percent"] is None for a in exam), exam


async def test_grader_lists_do_not_follow_the_roster_order(tenant: Tenant) -> None:
    """Candidate numbers are random so that a label says nothing of who it is; but the queue, attempts,
    scores and marks lists come ORDER BY t.id (attempt creation order: here, as an LMS syncs, the roster
    order), and the roster (GET /enrollments) is open to graders. The k-th label listed is the k-th learner
    enrolled: every candidate is named. Listed in candidate-number order, the lists say nothing."""
    await course(tenant)
    roster = [f"lrn-{n}" for n in range(7)]
    await enroll(tenant, "c1", *roster)
    body = {
        "external_id": "exam",
        "title": "Exam",
        "category": "Exam",
        "anonymous": True,
        "items": [
            {"external_id": "q1", "points_possible": 4},
            {"external_id": "q2", "points_possible": 10, "marking": "manual"},
        ],
    }
    r = await tenant.post(f"{C}/assessments", json=body)
    assert r.status_code == 201, r.text
    for learner in roster:  # the LMS sends the automatic scores in roster order
        r = await tenant.put(f"{A}/scores/{learner}", json={"items": [{"item": "q1", "earned": 3}]})
        assert r.status_code == 200, r.text
    g1 = await _grader(tenant, "g1", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text

    def by_number(labels: list[str]) -> list[str]:
        return sorted(labels, key=lambda x: int(x.rsplit("-", 1)[1]))

    queue = await _labels(tenant, g1)
    assert len(queue) == len(roster)
    attempts = [a["learner"] for a in (await tenant.get(f"{A}/attempts", as_=g1)).json()["items"]]
    scores = [s["learner"] for s in (await tenant.get(f"{A}/scores", as_=g1)).json()["items"]]
    # What the grader can line up against: the roster, in enrollment order.
    r = await tenant.get(f"{C}/enrollments", as_=g1)
    assert [e["external_id"] for e in r.json()["items"]] == roster
    for listed in (queue, attempts, scores):
        assert listed == by_number(listed), listed


# --- moderation -------------------------------------------------------------------------------------


async def _item(t: Tenant, learner: str, item: str = "q2") -> dict[str, Any]:
    r = await t.get(f"{A}/scores/{learner}")
    assert r.status_code == 200, r.text
    return dict(next(i for i in r.json()["items"] if i["item"] == item))


async def test_agreeing_keeps_a_planners_override(tenant: Tenant) -> None:
    """Scaling keeps an overridden score (`keep_overrides=True`); agreeing ("the graders' marks stand")
    silently replaces the planner's override with the graders' mark: the same rule, written twice, disagrees."""
    await _exam(tenant, anonymous=False)
    await _grader(tenant, "g1", "grader")
    mod = await _grader(tenant, "mod", "moderator")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    learner = LEARNERS[0]
    r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 6}, params={"grader": "g1"})
    assert r.status_code == 200, r.text
    # The planner overrides the item's score.
    r = await tenant.put(f"{A}/scores/{learner}", json={"items": [{"item": "q2", "earned": 9}], "source": "override"})
    assert r.status_code == 200, r.text
    assert (await _item(tenant, learner))["earned"] == 9
    r = await tenant.post(f"{M}/sample", json={"learners": [learner]})
    assert r.status_code == 200, r.text
    r = await tenant.post(f"{M}/samples/{learner}:agree", json={}, as_=mod)
    assert r.status_code == 200, r.text
    item = await _item(tenant, learner)
    assert (item["earned"], item["source"]) == (9, "override")


async def test_scaling_a_grader_moves_the_score_even_when_scaled_marks_drift_apart(tenant: Tenant) -> None:
    """Two markers, average, discrepancy 2 points: g1 and g2 both gave 6 (reconciled 6). Scaling g1 by 1.5
    must make the item count 9 and 6, i.e. 7.5. reconcile() applies the scaling BEFORE the discrepancy test,
    so the scaled marks are 3 apart -> "needs_third_marker" with score None, and moderation.rescore skips a
    None score: the item keeps 6, the scaling answers rescored 0 and is silently not applied."""
    await _exam(tenant, anonymous=False, graders_per_item=2, discrepancy_points=2)
    await _grader(tenant, "g1", "grader")
    await _grader(tenant, "g2", "grader")
    mod = await _grader(tenant, "mod", "moderator")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1", "g2"]})
    assert r.status_code == 200, r.text
    learner = LEARNERS[0]
    for g in ("g1", "g2"):
        r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 6}, params={"grader": g})
        assert r.status_code == 200, r.text
    assert (await _item(tenant, learner))["earned"] == 6
    r = await tenant.put(f"{M}/scalings/g1", json={"factor": 1.5, "reason": "Marks harshly"}, as_=mod)
    assert r.status_code == 200, r.text
    assert (await _item(tenant, learner))["earned"] == 7.5


async def test_agreeing_withdraws_an_adjustment_even_before_every_grader_marked(tenant: Tenant) -> None:
    """Two markers per item; g1 marked q2 (4), g2 not yet. The moderator adjusts q2 to 8 (allowed: a grader
    marked it), then agrees: "an earlier adjustment is withdrawn and its items' scores follow the graders'
    marks again". The moderator's mark is deleted, but reconcile() says awaiting_marks (score None) and
    moderation.rescore skips a None score: the item keeps the withdrawn 8, which no mark now gives, and it
    counts in the total and the grade."""
    await _exam(tenant, anonymous=False, graders_per_item=2)
    await _grader(tenant, "g1", "grader")
    await _grader(tenant, "g2", "grader")
    mod = await _grader(tenant, "mod", "moderator")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1", "g2"]})
    assert r.status_code == 200, r.text
    learner = LEARNERS[0]
    r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 4}, params={"grader": "g1"})
    assert r.status_code == 200, r.text
    assert (await _item(tenant, learner))["earned"] is None  # awaiting g2's mark
    r = await tenant.post(f"{M}/sample", json={"learners": [learner]})
    assert r.status_code == 200, r.text
    r = await tenant.post(f"{M}/samples/{learner}:adjust", json={"items": [{"item": "q2", "points": 8}]}, as_=mod)
    assert r.status_code == 200, r.text
    assert (await _item(tenant, learner))["earned"] == 8
    r = await tenant.post(f"{M}/samples/{learner}:agree", json={}, as_=mod)
    assert r.status_code == 200, r.text
    marks = {(m["grader"], m["points"]) for m in (await tenant.get(f"{A}/marks")).json()}
    assert marks == {("g1", 4)}  # the moderator's mark is gone ...
    assert (await _item(tenant, learner))["earned"] is None  # ... and so must its score be


# --- moderation: suspected items, confirmed and fixed ------------------------------------------------


async def _audit(t: Tenant, action: str) -> list[dict[str, Any]]:
    r = await t.get(f"{C}/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _sample_status(t: Tenant) -> str:
    r = await t.get(f"{M}/samples")
    assert r.status_code == 200, r.text
    (s,) = r.json()["items"]
    return str(s["status"])


async def test_a_grader_changing_a_mark_after_the_moderator_agreed_reopens_the_sample(tenant: Tenant) -> None:
    """The moderator agreed with marks that are no longer the marks: the attempt goes back to pending (audited),
    and confirmation waits for the moderator again. Putting the same mark again changes nothing."""
    await _exam(tenant, anonymous=False)
    r = await tenant.patch(A, json={"moderation_required": True})
    assert r.status_code == 200, r.text
    await _grader(tenant, "g1", "grader")
    mod = await _grader(tenant, "mod", "moderator")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    learner = LEARNERS[0]
    r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 6}, params={"grader": "g1"})
    assert r.status_code == 200, r.text
    r = await tenant.post(f"{M}/sample", json={"learners": [learner]})
    assert r.status_code == 200, r.text
    r = await tenant.post(f"{M}/samples/{learner}:agree", json={"note": "Fair"}, as_=mod)
    assert r.status_code == 200, r.text
    r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 6, "comment": "same"}, params={"grader": "g1"})
    assert r.status_code == 200, r.text
    assert await _sample_status(tenant) == "agreed"
    r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 7}, params={"grader": "g1"})
    assert r.status_code == 200, r.text
    assert await _sample_status(tenant) == "pending"
    assert (await tenant.get(M)).json()["status"] == "in_progress"
    assert (
        "1 sampled attempts pending" in assert_problem(await tenant.post(f"{A}/confirmations", json={}), 409)["detail"]
    )
    (entry,) = await _audit(tenant, "moderation.reopened")
    assert (entry["learner"], entry["actor"], entry["old"]["status"], entry["old"]["moderator"]) == (
        learner,
        "g1",
        "agreed",
        "mod",
    )
    r = await tenant.post(f"{M}/samples/{learner}:agree", json={}, as_=mod)
    assert r.status_code == 200, r.text
    assert (await _item(tenant, learner))["earned"] == 7
    r = await tenant.post(f"{A}/confirmations", json={"learners": [learner]})
    assert r.status_code == 200, r.text
    assert r.json()["confirmed"] == [learner]


async def test_required_moderation_leaves_out_work_scored_without_marks(tenant: Tenant) -> None:
    """Manual items scored by import or PUT (no grader's marks) have nothing to moderate: the assessment does not
    wait for a sample that can never be picked. Once a grader marks an attempt, that attempt is moderated."""
    await _exam(tenant, anonymous=False)
    r = await tenant.patch(A, json={"moderation_required": True})
    assert r.status_code == 200, r.text
    r = await tenant.put(f"{A}/scores/{LEARNERS[0]}", json={"items": [{"item": "q2", "earned": 5}]})
    assert r.status_code == 200, r.text
    status = (await tenant.get(M)).json()
    assert (status["required"], status["status"]) == (True, "not_required")
    r = await tenant.post(f"{A}/confirmations", json={"learners": [LEARNERS[0]]})
    assert r.status_code == 200, r.text
    assert r.json()["confirmed"] == [LEARNERS[0]]
    # A grader's mark on the other attempt: now there is marking to moderate, and only that attempt is sampled.
    await _grader(tenant, "g1", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    r = await tenant.put(f"{A}/marks/{LEARNERS[1]}/q2", json={"points": 8}, params={"grader": "g1"})
    assert r.status_code == 200, r.text
    assert (await tenant.get(M)).json()["status"] == "not_started"
    assert_problem(await tenant.post(f"{A}/confirmations", json={}), 409)
    r = await tenant.post(f"{M}/sample", json={"percent": 100})
    assert r.status_code == 200, r.text
    assert (r.json()["added"], r.json()["status"]) == (1, "in_progress")


async def test_a_mark_that_makes_markers_disagree_takes_the_reconciled_score_away(tenant: Tenant) -> None:
    """Both markers gave 6 (score 6); g1 changes to 10, 4 apart beyond the threshold of 2: the item needs a third
    marker and has no score until then (it does not keep the 6 that no marks give any more; audited)."""
    await _exam(tenant, anonymous=False, graders_per_item=2, discrepancy_points=2)
    await _grader(tenant, "g1", "grader")
    await _grader(tenant, "g2", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1", "g2"]})
    assert r.status_code == 200, r.text
    learner = LEARNERS[0]
    for g in ("g1", "g2"):
        r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 6}, params={"grader": g})
        assert r.status_code == 200, r.text
    assert (await _item(tenant, learner))["earned"] == 6
    r = await tenant.put(f"{A}/marks/{learner}/q2", json={"points": 10}, params={"grader": "g1"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "needs_third_marker"
    assert (await _item(tenant, learner))["earned"] is None
    r = await tenant.get(f"{A}/scores/{learner}")
    assert r.json()["status"] == "pending_grading"
    (entry,) = await _audit(tenant, "item_score.removed")
    assert (entry["learner"], entry["item"], entry["old"]["earned"]) == (learner, "q2", 6)


async def test_a_mark_waits_for_a_scaling_in_progress_and_counts_under_it(tenant: Tenant, sessionmaker: Any) -> None:
    """A scaling of g1 is being written (it holds the assessment's marking lock exclusively) while g1 marks: the
    mark waits, then reconciles under the new factor, not from the snapshot before the scaling committed."""
    await _exam(tenant, anonymous=False)
    await _grader(tenant, "g1", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    learner = LEARNERS[0]
    async with sessionmaker() as session:
        a = await session.scalar(
            text(
                "SELECT a.id FROM assessments a JOIN courses c ON c.id = a.course_id"
                " WHERE c.organization_id = :o AND c.external_id = 'c1' AND a.external_id = 'exam'"
            ),
            {"o": tenant.id},
        )
        await marking.lock(session, a, [], exclusive=True)
        await session.execute(
            text(
                "INSERT INTO moderation_scalings (assessment_id, grader, factor, scaled_by, reason, updated_at)"
                " VALUES (:a, 'g1', 1.5, 'mod', 'harsh', now())"
            ),
            {"a": a},
        )
        put = asyncio.create_task(tenant.put(f"{A}/marks/{learner}/q2", json={"points": 4}, params={"grader": "g1"}))
        await asyncio.sleep(0.5)
        assert not put.done()  # the mark waits for the scaling
        await session.commit()
    r = await put
    assert r.status_code == 200, r.text
    assert (await _item(tenant, learner))["earned"] == 6  # 4 x 1.5


# --- anonymity: suspected combinations, confirmed and fixed -----------------------------------------


async def test_marker_who_also_oversees_reads_no_report_while_an_assessment_is_anonymous(tenant: Tenant) -> None:
    """Reports are one file for the course (every learner's results, the anonymous exam's included): a grader
    who also views gets 403 on reading one until anonymity is lifted; a plain viewer reads it."""
    await _exam(tenant)
    gv = await _grader(tenant, "gv", "grader", "viewer")
    vic = await _grader(tenant, "vic", "viewer")
    r = await tenant.post(f"{C}/reports", json={"kind": "grade_report"})
    assert r.status_code == 202, r.text
    report = f"/v1/reports/{r.json()['id']}"
    assert (await tenant.get(report, as_=vic)).status_code == 200
    problem = assert_problem(await tenant.get(report, as_=gv), 403)
    assert "anonym" in problem["detail"]
    assert_problem(await tenant.get(f"{report}/download", as_=gv), 403)
    r = await tenant.post(f"{A}/anonymity:lift")
    assert r.status_code == 200, r.text
    assert (await tenant.get(report, as_=gv)).status_code == 200


async def test_grader_who_also_views_gets_no_anonymous_statistics_of_a_cohort(tenant: Tenant) -> None:
    """Statistics narrowed to a group (here of one learner) are that learner's result: refused for the
    anonymous exam, and its line left out of the course's; the whole course's figures stay."""
    await _exam(tenant)
    gv = await _grader(tenant, "gv", "grader", "viewer")
    assert (await tenant.get(f"{C}/statistics", params={"assessment": "exam"}, as_=gv)).status_code == 200
    r = await tenant.get(f"{C}/statistics", params={"assessment": "exam", "cohort": "x"}, as_=gv)
    assert_problem(r, 403)
    r = await tenant.get(f"{C}/statistics", params={"cohort": "x"}, as_=gv)
    assert r.status_code == 200, r.text
    assert all(a["assessment"] != "exam" for a in r.json()["assessments"])
    r = await tenant.get(f"{C}/statistics", params={"cohort": "x"})  # the LMS sees it
    assert any(a["assessment"] == "exam" for a in r.json()["assessments"])


async def test_grader_who_also_publishes_sees_no_skipped_learner_of_the_anonymous_exam(tenant: Tenant) -> None:
    """A publication's skipped list pairs a learner id with the state of their work ("not graded"): a
    grader who also publishes gets the counts, not the learners, while the exam is anonymous."""
    await _exam(tenant)
    gp = await _grader(tenant, "gp", "grader", "publisher")
    r = await tenant.post(f"{C}/publications", json={"assessments": ["exam"], "audience": {"all": True}}, as_=gp)
    assert r.status_code == 201, r.text
    assert r.json()["skipped"] == len(LEARNERS) and r.json()["skipped_detail"] == []
    for view in (await tenant.get(r.headers["location"], as_=gp), await tenant.get(f"{C}/publications", as_=gp)):
        assert view.status_code == 200, view.text
        assert not any(x in view.text for x in LEARNERS)
    assert len((await tenant.get(r.headers["location"])).json()["skipped_detail"]) == len(LEARNERS)


async def test_grader_pages_and_marks_follow_candidate_numbers(tenant: Tenant) -> None:
    """Paged (limit 1) attempts and scores, and the marks list, come in candidate-number order too."""
    await _exam(tenant)
    g1 = await _grader(tenant, "g1", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    labels = sorted(await _labels(tenant, g1), key=lambda x: int(x.rsplit("-", 1)[1]))
    for label in reversed(labels):
        r = await tenant.put(f"{A}/marks/{label}/q2", json={"points": 5}, as_=g1)
        assert r.status_code == 200, r.text
    for path in (f"{A}/attempts", f"{A}/scores"):
        listed, cursor = [], None
        for _ in range(len(labels) + 1):
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            r = await tenant.get(path, params=params, as_=g1)
            assert r.status_code == 200, r.text
            listed += [x["learner"] for x in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert listed == labels, path
    r = await tenant.get(f"{A}/marks", as_=g1)
    assert [m["learner"] for m in r.json()] == labels


async def test_late_starters_numbers_fall_among_the_others(tenant: Tenant) -> None:
    """Numbers were handed out above the highest so far: the last labels (now the end of every list) were
    the late starters, e.g. the learner with an extension. Drawn at random over the same range instead."""
    await course(tenant)
    learners = [f"s{i:02d}" for i in range(25)]
    await enroll(tenant, "c1", *learners)
    body = {"external_id": "exam", "title": "Exam", "category": "Exam", "anonymous": True}
    items = [{"external_id": "q", "points_possible": 1, "marking": "manual"}]
    r = await tenant.post(f"{C}/assessments", json={**body, "items": items})
    assert r.status_code == 201, r.text

    async def numbers() -> dict[str, int]:
        r = await tenant.get(f"{A}/attempts")
        return {a["learner"]: int(a["candidate"].rsplit("-", 1)[1]) for a in r.json()["items"]}

    rows = [{"assessment": "exam", "learner": x, "item": "q", "earned": 0} for x in learners[:20]]
    assert (await tenant.post(f"{C}/scores:batch", json={"scores": rows})).status_code == 200
    await _grader(tenant, "g1", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})  # numbers the first twenty
    assert r.status_code == 200, r.text
    first = await numbers()
    rows = [{"assessment": "exam", "learner": x, "item": "q", "earned": 0} for x in learners[20:]]
    assert (await tenant.post(f"{C}/scores:batch", json={"scores": rows})).status_code == 200
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    after = await numbers()
    assert {k: after[k] for k in first} == first and len(set(after.values())) == len(learners)
    # All five late ones above every earlier number: 1 in 53,130 by chance.
    assert not all(after[x] > max(first.values()) for x in learners[20:])


async def test_graders_see_the_assessments_allowed_attempts_not_a_candidates_extension(tenant: Tenant) -> None:
    """An extra attempt granted to one learner (or a group on the roster) showed as that candidate's
    allowed_attempts: who has an extension is known outside marking. Graders see the assessment's own."""
    await _exam(tenant)
    g1 = await _grader(tenant, "g1", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    r = await tenant.put(f"{A}/overrides/learners/{LEARNERS[0]}", json={"extra_attempts": 2, "reason": "ill"})
    assert r.status_code in (200, 201), r.text
    r = await tenant.get(f"{A}/attempts/{LEARNERS[0]}")
    assert r.json()["allowed_attempts"] == 3  # staff who see identities see the extension
    listed = (await tenant.get(f"{A}/attempts", as_=g1)).json()["items"]
    assert [a["allowed_attempts"] for a in listed] == [1] * len(LEARNERS)
    for a in listed:
        assert (await tenant.get(f"{A}/attempts/{a['learner']}", as_=g1)).json()["allowed_attempts"] == 1


async def test_grader_who_also_views_may_not_see_who_holds_an_anonymous_exams_certificate(
    tenant: Tenant, settings: Settings
) -> None:
    """The exam's certificate holders are its passers: listing them (or reading a diploma of it) pairs learners
    with results of the anonymous exam for someone who marks it."""
    gv = await _graded_anonymous_exam(tenant, settings)
    r = await tenant.put(f"{A}/certification", json={"title": "Exam passed", "threshold": 10})
    assert r.status_code in (200, 201), r.text
    r = await tenant.get(f"{C}/certificates", params={"assessment": "exam"}, as_=gv)
    assert r.status_code == 403, r.text
    r = await tenant.get(f"{C}/certificates/{LEARNERS[0]}/diploma", params={"assessment": "exam"}, as_=gv)
    assert r.status_code == 403, r.text
    # The course's own certificates are no pairing with the exam: still readable.
    r = await tenant.get(f"{C}/certificates", as_=gv)
    assert r.status_code == 200, r.text


async def test_a_cancelled_attempt_takes_no_marks(tenant: Tenant) -> None:
    """A mark on a cancelled attempt is refused (409) and nothing of it is kept, whether or not it would complete
    the item (two markers per item: g1's mark alone would not)."""
    await _exam(tenant, anonymous=False, graders_per_item=2)
    g1 = await _grader(tenant, "g1", "grader")
    await _grader(tenant, "g2", "grader")
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1", "g2"]})
    assert r.status_code == 200, r.text
    r = await tenant.put(f"{A}/attempts/{LEARNERS[0]}", json={"status": "cancelled"})
    assert r.status_code == 200, r.text
    r = await tenant.put(f"{A}/marks/{LEARNERS[0]}/q2", json={"points": 5}, as_=g1)
    assert_problem(r, 409)
    r = await tenant.get(f"{A}/marks")
    assert r.status_code == 200, r.text
    assert not [m for m in r.json() if m["learner"] == LEARNERS[0]], r.json()
