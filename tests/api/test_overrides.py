"""Extensions: an assessment's due date and attempts for one learner or one group (overrides), audited, and the
learner's own date and attempts wherever they matter (attempts, results table, progress, automatic release).

A hand-built course:
  learners   ann: group red     bob: groups red, blue     cid: no group
  quiz       10 points, due DUE, one attempt allowed
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gradeflow.core import clock
from gradeflow.core.settings import Settings
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, grant, user_token

C = "/v1/courses/c1"
OV = f"{C}/assessments/quiz/overrides"
DUE = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _same(value: str | None, moment: datetime | None) -> bool:
    return (value is None and moment is None) or (
        value is not None and moment is not None and datetime.fromisoformat(value) == moment
    )


async def _course(t: Tenant, **quiz: Any) -> None:
    await course(t)
    rows = [
        {"external_id": "ann", "groups": ["red"]},
        {"external_id": "bob", "groups": ["red", "blue"]},
        {"external_id": "cid"},
    ]
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "quiz", due_at=_at(DUE), **quiz)


async def _audit(t: Tenant, action: str) -> list[dict[str, Any]]:
    r = await t.get(f"{C}/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return sorted(r.json()["items"], key=lambda e: e["id"])


async def test_overrides_are_set_listed_changed_and_removed(tenant: Tenant) -> None:
    await _course(tenant)
    assert (await tenant.get(OV)).json()["items"] == []
    later = DUE + timedelta(days=2)
    r = await tenant.put(f"{OV}/learners/ann", json={"due_at": _at(later), "reason": "illness"})
    assert r.status_code == 200, r.text
    ann = r.json()
    assert (ann["learner"], ann["group"], ann["extra_attempts"], ann["reason"]) == ("ann", None, 0, "illness")
    assert _same(ann["due_at"], later) and ann["created_by"].startswith("key:")
    r = await tenant.put(f"{OV}/groups/red", json={"extra_attempts": 2})
    assert r.status_code == 200, r.text
    assert (r.json()["learner"], r.json()["group"], r.json()["due_at"]) == (None, "red", None)
    listed = (await tenant.get(OV)).json()["items"]
    assert [(o["learner"], o["group"]) for o in listed] == [("ann", None), (None, "red")]

    # PUT replaces; the same override again records nothing.
    r = await tenant.put(f"{OV}/learners/ann", json={"extra_attempts": 1})
    assert r.status_code == 200 and r.json()["due_at"] is None and r.json()["reason"] is None
    assert (await tenant.put(f"{OV}/learners/ann", json={"extra_attempts": 1})).status_code == 200
    set_ = await _audit(tenant, "override.set")
    assert [(e["learner"], e["assessment"]) for e in set_] == [("ann", "quiz"), (None, "quiz"), ("ann", "quiz")]
    assert set_[0]["old"] is None and set_[0]["new"]["reason"] == "illness"
    assert set_[1]["new"] == {"group": "red", "due_at": None, "extra_attempts": 2, "reason": None}
    assert set_[2]["old"]["reason"] == "illness" and set_[2]["new"]["extra_attempts"] == 1

    assert (await tenant.delete(f"{OV}/learners/ann")).status_code == 204
    assert (await tenant.delete(f"{OV}/groups/red")).status_code == 204
    assert (await tenant.get(OV)).json()["items"] == []
    removed = await _audit(tenant, "override.removed")
    assert [(e["learner"], (e["old"] or {}).get("group")) for e in removed] == [("ann", None), (None, "red")]
    assert removed[0]["old"]["extra_attempts"] == 1 and removed[0]["new"] is None
    # Nothing left to remove.
    assert_problem(await tenant.delete(f"{OV}/learners/ann"), 404)
    assert_problem(await tenant.delete(f"{OV}/groups/red"), 404)


async def test_unknown_names_are_404_and_bad_input_is_422_naming_the_field(tenant: Tenant) -> None:
    await _course(tenant)
    body = {"extra_attempts": 1}
    assert_problem(await tenant.put(f"{OV}/learners/zed", json=body), 404)
    assert_problem(await tenant.put(f"{OV}/groups/green", json=body), 404)  # no enrollment names it
    assert_problem(await tenant.put(f"{C}/assessments/nope/overrides/learners/ann", json=body), 404)
    assert_problem(await tenant.get(f"{C}/assessments/nope/overrides"), 404)
    assert_problem(await tenant.put(f"{OV}/learners/ann", json={"extra_attempts": 1001}), 422, "/extra_attempts")
    assert_problem(await tenant.put(f"{OV}/learners/ann", json={"extra_attempts": -1}), 422, "/extra_attempts")
    assert_problem(await tenant.put(f"{OV}/learners/ann", json={"due_at": "2030-05-01T12:00:00"}), 422, "/due_at")
    assert_problem(await tenant.put(f"{OV}/learners/ann", json={}), 422, "/due_at")  # neither a date nor attempts
    assert_problem(await tenant.put(f"{OV}/learners/ann", json={**body, "reason": "x" * 1001}), 422, "/reason")
    assert_problem(await tenant.put(f"{OV}/learners/ann", json={**body, "learner": "bob"}), 422, "/learner")
    assert_problem(await tenant.put(f"{OV}/groups/red", json={**body, "reason": "a\x00b"}), 422, "/reason")
    assert (await tenant.get(OV)).json()["items"] == []


async def test_planners_set_overrides_and_staff_read_them(tenant: Tenant) -> None:
    await _course(tenant)
    await grant(tenant, "c1", "pat", "planner")
    await grant(tenant, "c1", "gil", "grader")
    planner, grader = await user_token(tenant, "pat"), await user_token(tenant, "gil")
    r = await tenant.put(f"{OV}/groups/blue", json={"extra_attempts": 1}, as_=planner)
    assert r.status_code == 200 and r.json()["created_by"] == "pat"
    assert_problem(await tenant.put(f"{OV}/learners/ann", json={"extra_attempts": 1}, as_=grader), 403)
    assert_problem(await tenant.delete(f"{OV}/groups/blue", as_=grader), 403)
    assert [o["group"] for o in (await tenant.get(OV, as_=grader)).json()["items"]] == ["blue"]
    learner = await user_token(tenant, "ann")
    assert (await tenant.get(OV, as_=learner)).status_code == 404


async def test_latest_due_date_and_most_extra_attempts_win(tenant: Tenant) -> None:
    """bob has his own override and both his groups have one: the latest date and the most attempts count."""
    await _course(tenant)
    for group, days, extra in (("red", 2, 1), ("blue", 5, 0)):
        body = {"due_at": _at(DUE + timedelta(days=days)), "extra_attempts": extra}
        assert (await tenant.put(f"{OV}/groups/{group}", json=body)).status_code == 200
    body = {"due_at": _at(DUE + timedelta(days=1)), "extra_attempts": 3}
    assert (await tenant.put(f"{OV}/learners/bob", json=body)).status_code == 200
    for learner in ("ann", "bob", "cid"):
        r = await tenant.put(f"{C}/assessments/quiz/attempts/{learner}", json={"status": "in_progress"})
        assert r.status_code == 200, r.text
    rows = {r["learner"]: r for r in (await tenant.get(f"{C}/results")).json()["items"]}
    expected = {
        "ann": (DUE + timedelta(days=2), 1, 2),  # red's
        "bob": (DUE + timedelta(days=5), 3, 4),  # blue's date (the latest), his own attempts (the most)
        "cid": (DUE, 0, 1),  # the assessment's
    }
    for learner, (due, extra, allowed) in expected.items():
        row = rows[learner]
        assert _same(row["due_at"], due) and (row["extra_attempts"], row["allowed_attempts"]) == (extra, allowed)
        attempt = (await tenant.get(f"{C}/assessments/quiz/attempts/{learner}")).json()
        assert (attempt["attempt_number"], attempt["allowed_attempts"]) == (1, allowed)
    # Without overrides everyone is back to the assessment's.
    for path in ("groups/red", "groups/blue", "learners/bob"):
        assert (await tenant.delete(f"{OV}/{path}")).status_code == 204
    rows = {r["learner"]: r for r in (await tenant.get(f"{C}/results")).json()["items"]}
    assert all(_same(r["due_at"], DUE) and r["allowed_attempts"] == 1 for r in rows.values())


async def test_progress_shows_the_learners_own_due_date(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    await assessment(tenant, "c1", "essay")  # no due date
    policy = {"categories": [{"name": "Homework", "weight": 1}]}
    assert (await tenant.put(f"{C}/policy", json=policy)).status_code == 200
    await run_worker(settings)
    later = DUE + timedelta(days=3)
    body = {"due_at": _at(later), "extra_attempts": 1}
    assert (await tenant.put(f"{OV}/learners/ann", json=body)).status_code == 200
    learner = await user_token(tenant, "ann")
    for who in (None, learner):  # staff and the learner herself
        r = await tenant.get(f"{C}/learners/ann/progress", as_=who)
        assert r.status_code == 200, r.text
        own = {a["assessment"]: (a["due_at"], a["allowed_attempts"]) for a in r.json()["assessments"]}
        assert _same(own["quiz"][0], later) and own["quiz"][1] == 2 and own["essay"] == (None, 1)
    bob = (await tenant.get(f"{C}/learners/bob/progress")).json()["assessments"]
    assert _same(next(a for a in bob if a["assessment"] == "quiz")["due_at"], DUE)


async def test_automatic_release_waits_for_an_extended_due_date(tenant: Tenant, settings: Settings) -> None:
    """Released after the last attempt: every result waits until the last learner's own due date has passed."""
    await course(tenant)
    await tenant.post(f"{C}/enrollments:batch", json={"enrollments": [{"external_id": x} for x in ("ann", "bob")]})
    due = datetime.now(UTC) - timedelta(hours=1)
    release = {"mode": "automatic", "after": "last_attempt"}
    await assessment(tenant, "c1", "quiz", due_at=_at(due), release=release)
    extended = datetime.now(UTC) + timedelta(days=1)
    assert (await tenant.put(f"{OV}/learners/bob", json={"due_at": _at(extended)})).status_code == 200
    for learner, earned in (("ann", 7), ("bob", 9)):
        assert (await tenant.put(f"{C}/assessments/quiz/scores/{learner}", json={"earned": earned})).status_code == 200
    ann = await user_token(tenant, "ann")
    await run_worker(settings)
    assert (await tenant.get("/v1/me/courses/c1/results", as_=ann)).json()["results"] == []  # bob's date is ahead
    clock.freeze(extended + timedelta(minutes=1))
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    assert [r["earned"] for r in (await tenant.get("/v1/me/courses/c1/results", as_=ann)).json()["results"]] == [7]


async def test_a_group_extension_holds_back_release_and_its_removal_frees_it(
    tenant: Tenant, settings: Settings
) -> None:
    await _course(tenant, release={"mode": "automatic", "after": "last_attempt"})
    past = datetime.now(UTC) - timedelta(hours=2)
    assert (await tenant.patch(f"{C}/assessments/quiz", json={"due_at": _at(past)})).status_code == 200
    body = {"due_at": _at(datetime.now(UTC) + timedelta(days=1))}
    assert (await tenant.put(f"{OV}/groups/blue", json=body)).status_code == 200
    for learner in ("ann", "bob", "cid"):
        assert (await tenant.put(f"{C}/assessments/quiz/scores/{learner}", json={"earned": 5})).status_code == 200
    await run_worker(settings)
    publications = f"{C}/publications"
    assert (await tenant.get(publications)).json()["items"] == []
    assert (await tenant.delete(f"{OV}/groups/blue")).status_code == 204
    await run_worker(settings)
    assert [p["trigger"] for p in (await tenant.get(publications)).json()["items"]] == ["automatic"]


async def test_an_extension_never_lowers_a_result(tenant: Tenant, settings: Settings) -> None:
    """With a late policy: a late score loses points; an extension past the submission gives them back, and a later
    extension never takes any away."""
    await _course(tenant)
    policy = {
        "late_submission_deduction_enabled": True,
        "late_submission_deduction": 10,
        "late_submission_interval": "day",
    }
    r = await tenant.put(f"{C}/late-policy", json=policy)
    assert r.status_code == 200, r.text
    submitted = DUE + timedelta(days=2, hours=1)  # 3 days late: 30 % of 10 points
    body = {"status": "submitted", "submitted_at": _at(submitted)}
    assert (await tenant.put(f"{C}/assessments/quiz/attempts/ann", json=body)).status_code == 200
    assert (await tenant.put(f"{C}/assessments/quiz/scores/ann", json={"earned": 8})).status_code == 200

    async def result() -> float:
        rows = (await tenant.get(f"{C}/results", params={"search": "ann"})).json()["items"]
        return float(rows[0]["result"])

    assert await result() == 5.0
    earned = [5.0]
    for days in (1, 2, 3, 10):  # each extension at least as late as the last
        r = await tenant.put(f"{OV}/learners/ann", json={"due_at": _at(DUE + timedelta(days=days))})
        assert r.status_code == 200, r.text
        earned.append(await result())
        assert earned[-1] >= earned[-2], earned
    assert earned == [5.0, 6.0, 7.0, 8.0, 8.0]
    # A group extension earlier than hers changes nothing: hers is the latest (a group's: applied by the worker).
    assert (await tenant.put(f"{OV}/groups/red", json={"due_at": _at(DUE)})).status_code == 200
    await run_worker(settings, crons=False)
    assert await result() == 8.0
    # Removing hers gives the late deduction back (the group's date is the assessment's).
    assert (await tenant.delete(f"{OV}/learners/ann")).status_code == 204
    assert await result() == 5.0
    # A group extension past her submission lifts it again.
    assert (await tenant.put(f"{OV}/groups/red", json={"due_at": _at(DUE + timedelta(days=3))})).status_code == 200
    await run_worker(settings, crons=False)
    assert await result() == 8.0


async def test_graders_on_an_anonymous_assessment_see_only_group_overrides(tenant: Tenant) -> None:
    """A learner's extension and its reason would tell a grader who a candidate is."""
    await _course(tenant, anonymous=True)
    await grant(tenant, "c1", "gil", "grader")
    grader = await user_token(tenant, "gil")
    body = {"due_at": _at(DUE + timedelta(days=1)), "reason": "Ann's broken arm"}
    assert (await tenant.put(f"{OV}/learners/ann", json=body)).status_code == 200
    assert (await tenant.put(f"{OV}/groups/blue", json={"extra_attempts": 1})).status_code == 200
    r = await tenant.get(OV, as_=grader)
    assert r.status_code == 200 and [(o["learner"], o["group"]) for o in r.json()["items"]] == [(None, "blue")]
    assert "ann" not in r.text.lower()
    staff = (await tenant.get(OV)).json()["items"]
    assert [(o["learner"], o["group"]) for o in staff] == [("ann", None), (None, "blue")]


async def test_a_group_name_with_a_slash_is_addressed_encoded(tenant: Tenant) -> None:
    await _course(tenant)
    row = {"external_id": "dan", "groups": ["2024/25"]}
    assert (await tenant.post(f"{C}/enrollments:batch", json={"enrollments": [row]})).status_code == 200
    r = await tenant.put(f"{OV}/groups/2024%2F25", json={"extra_attempts": 1})
    assert r.status_code == 200 and r.json()["group"] == "2024/25", r.text
    assert (await tenant.put(f"{C}/assessments/quiz/attempts/dan", json={"status": "in_progress"})).status_code == 200
    assert (await tenant.get(f"{C}/assessments/quiz/attempts/dan")).json()["allowed_attempts"] == 2
    assert (await tenant.delete(f"{OV}/groups/2024%2F25")).status_code == 204


async def test_property_no_extension_ever_lowers_a_result(tenant: Tenant, settings: Settings) -> None:
    """Random late and missing policies, submissions and scores, then extensions one after another (each at least as
    late as what it replaces, for a learner or a group): no learner's result ever goes down. A missing result may
    become no result at all (the learner can still hand in); a submitted one keeps a number."""
    rng = random.Random(20261203)
    raised = 0
    for case in range(2):
        c = f"prop{case}"
        await course(tenant, c)
        base = f"/v1/courses/{c}"
        policy = {
            "late_submission_deduction_enabled": True,
            "late_submission_deduction": str(Decimal(rng.randint(1, 5000)) / 100),
            "late_submission_interval": rng.choice(["hour", "day"]),
            "late_submission_minimum_percent_enabled": rng.random() < 0.5,
            "late_submission_minimum_percent": str(Decimal(rng.randint(0, 8000)) / 100),
            "missing_submission_deduction_enabled": True,
            "missing_submission_deduction": str(Decimal(rng.randint(0, 10000)) / 100),
        }
        assert (await tenant.put(f"{base}/late-policy", json=policy)).status_code == 200
        due = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
        await assessment(tenant, c, "quiz", due_at=_at(due))
        learners = [f"l{i}" for i in range(10)]
        groups = {x: rng.sample(["g0", "g1", "g2"], rng.randint(0, 2)) for x in learners}
        rows = [{"external_id": x, "groups": groups[x]} for x in learners]
        assert (await tenant.post(f"{base}/enrollments:batch", json={"enrollments": rows})).status_code == 200
        submitted = {x for x in learners if rng.random() < 0.7}
        for x in sorted(submitted):
            handed_in = due + timedelta(seconds=rng.randint(0, 12 * 86_400))
            body = {"status": "submitted", "submitted_at": _at(handed_in)}
            assert (await tenant.put(f"{base}/assessments/quiz/attempts/{x}", json=body)).status_code == 200
        scores = [
            {"assessment": "quiz", "learner": x, "earned": str(Decimal(rng.randint(0, 1000)) / 100)}
            for x in sorted(submitted)
        ]
        assert (await tenant.post(f"{base}/scores:batch", json={"scores": scores})).status_code == 200
        before = await _results(tenant, base)
        latest: dict[str, datetime] = {}
        for _ in range(6):
            target = rng.choice([*(f"learners/{x}" for x in learners), "groups/g0", "groups/g1", "groups/g2"])
            new_due = max(latest.get(target, due), due) + timedelta(seconds=rng.randint(0, 14 * 86_400))
            r = await tenant.put(f"{base}/assessments/quiz/overrides/{target}", json={"due_at": _at(new_due)})
            if r.status_code == 404:  # a group nobody is in
                continue
            assert r.status_code == 200, r.text
            if target.startswith("groups/"):  # a group's extension is applied by the worker
                await run_worker(settings, crons=False)
            latest[target] = new_due
            after = await _results(tenant, base)
            for x in learners:
                old, new = before.get(x), after.get(x)
                if isinstance(old, int | float) and isinstance(new, int | float):
                    assert new >= old, (case, x, old, new, policy)
                    raised += new > old
                elif isinstance(old, int | float):
                    assert x not in submitted, (case, x, old, new)
            before = after
    assert raised  # the extensions did give points back


async def _results(t: Tenant, base: str) -> dict[str, Any]:
    r = await t.get(f"{base}/results", params={"assessment": "quiz", "limit": 1000})
    return {row["learner"]: row["result"] for row in r.json()["items"]}
