"""Anonymous marking: graders see and address candidate labels, planners and API keys see learners,
ids cannot be probed, and lifting anonymity (audited) shows identities."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.conftest import Tenant, assert_problem
from tests.helpers import assessment, course, grant, user_token

C = "/v1/courses/c1"
A = f"{C}/assessments/exam"
LABEL = re.compile(r"^candidate-[1-9][0-9]*$")

# Learners whose every identity field is distinctive, so a leak is found by plain search.
LEARNERS = {
    "lrn-zed-7731": ("Zed Quimby", "cohort-amber"),
    "lrn-yve-4402": ("Yve Oberlin", "cohort-basalt"),
    "lrn-xan-9158": ("Xan Pettigrew", "cohort-cobalt"),
}


def identities(t: Tenant) -> list[str]:
    """Every string that identifies a learner of the anonymous exam."""
    out = []
    for ext, (name, cohort) in LEARNERS.items():
        out += [ext, name, *name.split(), cohort, f"{ext}@{t.slug}.example.org", f"user-{ext}", f"team-{ext}"]
        out.append(f"group-{ext}")
    return out


async def anonymous_exam(t: Tenant, **marking: Any) -> dict[str, str]:
    """Course c1 with an anonymous exam (q1 automatic, q2 manual) every learner has taken, allocated by
    candidate between graders g1 and g2. Returns user tokens for g1, g2, planner p1 and g1p (grader and
    planner)."""
    await course(t)
    rows = [
        {
            "external_id": ext,
            "username": f"user-{ext}",
            "email": f"{ext}@{t.slug}.example.org",
            "full_name": name,
            "cohort": cohort,
            "team": f"team-{ext}",
            "groups": [f"group-{ext}"],
        }
        for ext, (name, cohort) in LEARNERS.items()
    ]
    r = await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})
    assert r.status_code == 200, r.text
    body = {
        "external_id": "exam",
        "title": "Exam",
        "category": "Exam",
        "anonymous": True,
        "marking": marking,
        "items": [
            {"external_id": "q1", "points_possible": 4},
            {"external_id": "q2", "points_possible": 10, "marking": "manual"},
        ],
    }
    r = await t.post(f"{C}/assessments", json=body)
    assert r.status_code == 201, r.text
    for ext in LEARNERS:
        # The automatic item's score starts the attempt (pending grading of the manual one).
        r = await t.put(f"{A}/scores/{ext}", json={"items": [{"item": "q1", "earned": 3}]})
        assert r.status_code == 200, r.text
    tokens = {}
    for user, roles in (("g1", ["grader"]), ("g2", ["grader"]), ("p1", ["planner"]), ("g1p", ["grader", "planner"])):
        await grant(t, "c1", user, *roles)
        tokens[user] = await user_token(t, user)
    r = await t.post(f"{A}/allocations", json={"graders": ["g1", "g2"], "by": "candidate"})
    assert r.status_code == 200, r.text
    return tokens


async def queue_labels(t: Tenant, token: str) -> list[str]:
    r = await t.get(f"{C}/marking/queue", as_=token)
    assert r.status_code == 200, r.text
    return [q["learner"] for q in r.json()["to_mark"]]


async def test_grader_sees_labels_everywhere_planner_and_key_see_learners(tenant: Tenant) -> None:
    tok = await anonymous_exam(tenant)
    labels = await queue_labels(tenant, tok["g1"])
    assert labels and all(LABEL.match(x) for x in labels)
    # The same labels in the attempts, the score list and each detail, and again on a second read.
    attempts = (await tenant.get(f"{A}/attempts", as_=tok["g1"])).json()["items"]
    assert sorted(a["learner"] for a in attempts) == sorted(labels)
    scores = (await tenant.get(f"{A}/scores", as_=tok["g1"])).json()["items"]
    assert sorted(s["learner"] for s in scores) == sorted(labels)
    assert await queue_labels(tenant, tok["g1"]) == labels
    for label in labels:
        for path in (f"{A}/attempts/{label}", f"{A}/scores/{label}", f"{A}/feedback/{label}"):
            r = await tenant.get(path, as_=tok["g1"])
            assert r.status_code == 200, (path, r.text)
            assert r.json()["learner"] == label
    # The two graders' labels are distinct candidates of one numbering.
    all_labels = labels + await queue_labels(tenant, tok["g2"])
    assert len(set(all_labels)) == len(LEARNERS)
    # Planners (also a grader who plans) and API keys see learner ids.
    for who in (tok["p1"], tok["g1p"], None):
        learners = [a["learner"] for a in (await tenant.get(f"{A}/attempts", as_=who)).json()["items"]]
        assert sorted(learners) == sorted(LEARNERS)
    r = await tenant.get(f"{A}/scores/{labels[0]}", as_=tok["p1"])
    assert_problem(r, 404)
    # The planner sees which label stands for which learner (to talk with graders about the work).
    planner_view = {
        a["candidate"]: a["learner"] for a in (await tenant.get(f"{A}/attempts", as_=tok["p1"])).json()["items"]
    }
    assert set(labels) <= set(planner_view) and set(planner_view.values()) == set(LEARNERS)
    for label in labels:
        assert (await tenant.get(f"{A}/attempts/{planner_view[label]}", as_=tok["p1"])).json()["candidate"] == label


async def test_marking_by_label_reaches_the_learner_and_the_audit_names_them(tenant: Tenant) -> None:
    tok = await anonymous_exam(tenant)
    (label, *_) = await queue_labels(tenant, tok["g1"])
    r = await tenant.put(f"{A}/marks/{label}/q2", json={"points": 7, "comment": "clear"}, as_=tok["g1"])
    assert r.status_code == 200, r.text
    assert r.json()["learner"] == label and r.json()["status"] == "reconciled"
    # The grader's marks and the score detail: by label, with the mark applied.
    marks = (await tenant.get(f"{A}/marks", as_=tok["g1"])).json()
    assert [(m["learner"], m["points"]) for m in marks] == [(label, 7)]
    assert (await tenant.get(f"{A}/scores/{label}", as_=tok["g1"])).json()["earned"] == 10
    r = await tenant.put(f"{A}/feedback/{label}", json={"text": "Well argued."}, as_=tok["g1"])
    assert r.status_code == 200 and r.json()["learner"] == label
    # The planner sees the real learner, and the audit trail (planners only) names them.
    (mark,) = (await tenant.get(f"{A}/marks", as_=tok["p1"])).json()
    learner = mark["learner"]
    assert learner in LEARNERS
    assert (await tenant.get(f"{A}/scores/{learner}", as_=tok["p1"])).json()["earned"] == 10
    audit = (await tenant.get(f"{C}/audit", params={"action": "mark.set"})).json()["items"]
    assert [e["learner"] for e in audit] == [learner]
    audit = (await tenant.get(f"{C}/audit", params={"action": "feedback.set"})).json()["items"]
    assert [e["learner"] for e in audit] == [learner]
    assert_problem(await tenant.get(f"{C}/audit", as_=tok["g1"]), 403)


async def test_learner_ids_cannot_be_probed(tenant: Tenant) -> None:
    tok = await anonymous_exam(tenant)
    ext = next(iter(LEARNERS))
    paths = [
        ("GET", f"{A}/attempts/{{}}", None),
        ("GET", f"{A}/scores/{{}}", None),
        ("GET", f"{A}/feedback/{{}}", None),
        ("PUT", f"{A}/feedback/{{}}", {"text": "x"}),
        ("PUT", f"{A}/marks/{{}}/q2", {"points": 1}),
    ]
    for method, path, body in paths:
        answers = []
        for given in (ext, "candidate-1", "nobody"):
            r = await tenant.request(method, path.format(given), json=body, as_=tok["g1"])
            problem = assert_problem(r, 404)
            answers.append(problem["detail"])
            # (`instance` repeats the caller's own path; nothing else may name a learner.)
            assert all(x not in problem["detail"] for x in identities(tenant)), r.text
        # A real learner id gets the very answer an unknown label does.
        assert len(set(answers)) == 1, (path, answers)
    # Confirming by learner id finds nobody either (and says so without the id).
    await tenant.patch(f"{A}", json={"marking": {"graders_confirm": True}})
    r = await tenant.post(f"{A}/confirmations", json={"learners": [ext]}, as_=tok["g1"])
    assert r.status_code == 200, r.text
    assert r.json() == {"confirmed": [], "skipped": [{"learner": ext, "reason": "not found"}]}


async def test_lifting_is_planners_audited_and_shows_identities(tenant: Tenant) -> None:
    tok = await anonymous_exam(tenant)
    (label, *_) = await queue_labels(tenant, tok["g1"])
    assert_problem(await tenant.post(f"{A}/anonymity:lift", as_=tok["g1"]), 403)
    r = await tenant.post(f"{A}/anonymity:lift", as_=tok["p1"])
    assert r.status_code == 200, r.text
    lifted = r.json()
    assert lifted["anonymous"] is True and lifted["anonymity_lifted_by"] == "p1"
    assert (await tenant.get(A)).json()["anonymity_lifted_at"] is not None
    # Idempotent: lifting again answers the first lift and writes no second entry.
    assert (await tenant.post(f"{A}/anonymity:lift", as_=tok["p1"])).json() == lifted
    (entry,) = (await tenant.get(f"{C}/audit", params={"action": "assessment.anonymity_lifted"})).json()["items"]
    assert entry["actor"] == "p1" and entry["assessment"] == "exam"
    # Graders now see and address learners by id; labels are no longer names.
    learners = await queue_labels(tenant, tok["g1"])
    assert learners and all(x in LEARNERS for x in learners)
    assert (await tenant.get(f"{A}/scores/{learners[0]}", as_=tok["g1"])).status_code == 200
    assert_problem(await tenant.get(f"{A}/scores/{label}", as_=tok["g1"]), 404)
    # A lift is final: the assessment stays lifted.
    assert (await tenant.patch(A, json={"anonymous": True})).status_code == 200
    assert (await queue_labels(tenant, tok["g1"])) == learners


async def test_lifting_an_assessment_that_is_not_anonymous_is_409(tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw")
    assert_problem(await tenant.post(f"{C}/assessments/hw/anonymity:lift"), 409)
    assert_problem(await tenant.post(f"{C}/assessments/nope/anonymity:lift"), 404)


async def test_turning_anonymous_off_shows_ids_and_on_again_the_same_labels(tenant: Tenant) -> None:
    tok = await anonymous_exam(tenant)
    labels = await queue_labels(tenant, tok["g1"])
    assert (await tenant.patch(A, json={"anonymous": False})).status_code == 200
    assert all(x in LEARNERS for x in await queue_labels(tenant, tok["g1"]))
    assert (await tenant.patch(A, json={"anonymous": True})).status_code == 200
    assert await queue_labels(tenant, tok["g1"]) == labels


async def test_a_late_learner_gets_a_new_number_and_nobody_elses_changes(tenant: Tenant) -> None:
    tok = await anonymous_exam(tenant)
    before = {a["learner"] for a in (await tenant.get(f"{A}/attempts", as_=tok["g1"])).json()["items"]}
    # A grader who also views results sees every attempt, so every candidate's label.
    await grant(tenant, "c1", "g1", "grader", "viewer")
    everyone = {a["learner"] for a in (await tenant.get(f"{A}/attempts", as_=tok["g1"])).json()["items"]}
    assert before <= everyone and len(everyone) == len(LEARNERS)
    r = await tenant.put(f"{C}/enrollments/lrn-late-1", json={"full_name": "Late Comer"})
    assert r.status_code in (200, 201), r.text
    r = await tenant.put(f"{A}/scores/lrn-late-1", json={"items": [{"item": "q1", "earned": 2}]})
    assert r.status_code == 200, r.text
    after = {a["learner"] for a in (await tenant.get(f"{A}/attempts", as_=tok["g1"])).json()["items"]}
    assert everyone < after and len(after) == len(LEARNERS) + 1
    assert all(LABEL.match(x) for x in after)


async def test_candidate_numbers_say_nothing_of_enrollment_order(tenant: Tenant) -> None:
    await course(tenant)
    learners = [f"s{i:02d}" for i in range(20)]
    r = await tenant.post(f"{C}/enrollments:batch", json={"enrollments": [{"external_id": x} for x in learners]})
    assert r.status_code == 200, r.text
    body = {"external_id": "exam", "title": "Exam", "category": "Exam", "anonymous": True}
    r = await tenant.post(
        f"{C}/assessments", json={**body, "items": [{"external_id": "q", "points_possible": 1, "marking": "manual"}]}
    )
    assert r.status_code == 201, r.text
    rows = [{"assessment": "exam", "learner": x, "item": "q", "earned": 0} for x in learners]
    assert (await tenant.post(f"{C}/scores:batch", json={"scores": rows})).status_code == 200
    await grant(tenant, "c1", "g1", "grader")
    # Allocating numbers every learner with an attempt (here all are graded: nothing to allocate).
    r = await tenant.post(f"{A}/allocations", json={"graders": ["g1"]})
    assert r.status_code == 200, r.text
    attempts = (await tenant.get(f"{A}/attempts")).json()["items"]
    numbers = {a["learner"]: int(a["candidate"].removeprefix("candidate-")) for a in attempts}
    assert sorted(numbers) == learners and len(set(numbers.values())) == len(learners)
    # Not 1, 2, 3... and not in the order learners were enrolled (or their ids sort): 1 in 20! by chance.
    assert min(numbers.values()) > 1000
    assert sorted(learners, key=numbers.__getitem__) != learners


async def test_readers_at_once_get_one_numbering(tenant: Tenant) -> None:
    await course(tenant)
    r = await tenant.post(f"{C}/enrollments:batch", json={"enrollments": [{"external_id": x} for x in LEARNERS]})
    assert r.status_code == 200, r.text
    await assessment(tenant, "c1", "exam", anonymous=True)
    for learner in LEARNERS:
        assert (await tenant.put(f"{A}/scores/{learner}", json={"earned": 5})).status_code == 200
    # Nothing allocated, so nothing numbered yet: the first reads number the candidates, all at once.
    await grant(tenant, "c1", "gv", "grader", "viewer")
    token = await user_token(tenant, "gv")
    answers = await asyncio.gather(*(tenant.get(f"{A}/attempts", as_=token) for _ in range(6)))
    seen = [sorted(a["learner"] for a in r.json()["items"]) for r in answers]
    assert all(s == seen[0] for s in seen) and len(set(seen[0])) == len(LEARNERS)
    assert all(LABEL.match(x) for x in seen[0])
