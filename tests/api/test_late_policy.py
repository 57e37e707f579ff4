"""Late and missing policies (Canvas's LatePolicy): set per course, applied to every result by the learner's own due
date, hand-computed per preset, shown to staff (entered, deduction, result) and to learners once published."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from gradeflow.core import clock
from gradeflow.core.settings import Settings
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, enroll, grant, user_token

DUE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
CUTOFFS = [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}]
HOMEWORK = [{"name": "Homework", "weight": 1}]
LATE_BY_DAY = {
    "late_submission_deduction_enabled": True,
    "late_submission_deduction": 10,
    "late_submission_interval": "day",
    "late_submission_minimum_percent_enabled": True,
    "late_submission_minimum_percent": 50,
    "missing_submission_deduction_enabled": True,
    "missing_submission_deduction": 30,
}


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def _course(t: Tenant, preset: str, *learners: str, points: float = 10) -> str:
    c = "late-" + secrets.token_hex(4)
    await course(t, c)
    await enroll(t, c, *learners)
    await assessment(t, c, "hw", points_possible=points, due_at=_iso(DUE))
    r = await t.put(f"/v1/courses/{c}/policy", json={"preset": preset, "cutoffs": CUTOFFS, "categories": HOMEWORK})
    assert r.status_code == 200, r.text
    return c


async def _submit(t: Tenant, c: str, learner: str, at: datetime, earned: float | None, a: str = "hw") -> None:
    r = await t.put(
        f"/v1/courses/{c}/assessments/{a}/attempts/{learner}",
        json={"status": "submitted", "started_at": _iso(at - HOUR), "submitted_at": _iso(at)},
    )
    assert r.status_code == 200, r.text
    if earned is not None:
        r = await t.put(f"/v1/courses/{c}/assessments/{a}/scores/{learner}", json={"earned": earned})
        assert r.status_code == 200, r.text


# The test's settings, for the helpers that run the worker (a policy or due date change is applied by it).
_SETTINGS: list[Settings] = []


@pytest.fixture(autouse=True)
async def _worker_settings(settings: Settings) -> None:
    _SETTINGS[:] = [settings]


async def _applied(t: Tenant, c: str) -> dict[str, Any]:
    """Run the worker (no crons): the course's late policy application done; the policy as GET shows it."""
    await run_worker(_SETTINGS[0], crons=False)
    r = await t.get(f"/v1/courses/{c}/late-policy")
    assert r.status_code == 200 and r.json()["application"]["status"] == "applied", r.text
    return dict(r.json())


async def _policy(t: Tenant, c: str, **body: Any) -> dict[str, Any]:
    r = await t.put(f"/v1/courses/{c}/late-policy", json=body)
    assert r.status_code == 200, r.text
    return await _applied(t, c)


async def _patch(t: Tenant, c: str, **body: Any) -> None:
    """Change the assessment (a due date, points possible), then let the worker apply the policy again."""
    r = await t.patch(f"/v1/courses/{c}/assessments/hw", json=body)
    assert r.status_code == 200, r.text
    await _applied(t, c)


async def _score(t: Tenant, c: str, learner: str, a: str = "hw") -> dict[str, Any]:
    r = await t.get(f"/v1/courses/{c}/assessments/{a}/scores/{learner}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _audit(t: Tenant, c: str, action: str) -> list[dict[str, Any]]:
    """The course's audit entries of one action, oldest first."""
    r = await t.get(f"/v1/courses/{c}/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return sorted(r.json()["items"], key=lambda e: e["id"])


def _figures(s: dict[str, Any]) -> tuple[Any, ...]:
    num = lambda x: None if x is None else float(x)  # noqa: E731
    return (num(s["entered"]), num(s["points_deducted"]), num(s["earned"]), s["late_status"], s["status"])


async def test_canvas_and_standard_deduct_by_day_down_to_the_floor_and_mark_missing(tenant: Tenant) -> None:
    for preset in ("canvas", "standard"):
        c = await _course(tenant, preset, "ann", "bob", "cid", "dan", "eve", "fay", "gus")
        await _submit(tenant, c, "ann", DUE + HOUR, 8)  # 1 day late: 10 % of 10 = 1.00
        await _submit(tenant, c, "bob", DUE + DAY + HOUR, 9)  # 2 days: 2.00
        await _submit(tenant, c, "cid", DUE + 10 * DAY, 6)  # 100 %, but the floor (5 points) leaves 1.00
        await _submit(tenant, c, "dan", DUE + 3 * DAY, 4)  # at/below the floor: nothing, never raised
        await _submit(tenant, c, "gus", DUE - HOUR, 7)  # on time
        r = await tenant.put(f"/v1/courses/{c}/assessments/hw/excused/fay", json={})
        assert r.status_code in (200, 201), r.text
        policy = await _policy(tenant, c, **LATE_BY_DAY)
        assert policy["revision"] == 1 and policy["late_submission_interval"] == "day"
        assert _figures(await _score(tenant, c, "ann")) == (8, 1, 7, "late", "graded")
        assert _figures(await _score(tenant, c, "bob")) == (9, 2, 7, "late", "graded")
        assert _figures(await _score(tenant, c, "cid")) == (6, 1, 5, "late", "graded")
        assert _figures(await _score(tenant, c, "dan")) == (4, 0, 4, "late", "graded")
        assert _figures(await _score(tenant, c, "gus")) == (7, None, 7, None, "graded")
        # eve never submitted: missing, 10 - 30 % = 7 (an attempt made for her); fay is excused: untouched.
        assert _figures(await _score(tenant, c, "eve")) == (None, 3, 7, "missing", "graded")
        fay = (await tenant.get(f"/v1/courses/{c}/assessments/hw/attempts/fay")).json()
        assert fay["status"] == "to_be_taken" and fay["earned"] is None and fay.get("late_status") is None


async def test_deduction_by_hour_rounds_half_up_to_cents(tenant: Tenant) -> None:
    c = await _course(tenant, "standard", "ann", "bob", "cid", points=7)
    await _policy(
        tenant,
        c,
        late_submission_deduction_enabled=True,
        late_submission_deduction=2.5,
        late_submission_interval="hour",
    )
    # 90 minutes late: 2 hours x 2.5 % x 7 = 0.35; 5 h 1 s: 6 h x 2.5 % x 7 = 1.05.
    await _submit(tenant, c, "ann", DUE + timedelta(minutes=90), 6)
    await _submit(tenant, c, "bob", DUE + 5 * HOUR + timedelta(seconds=1), 6.5)
    assert _figures(await _score(tenant, c, "ann")) == (6, 0.35, 5.65, "late", "graded")
    assert _figures(await _score(tenant, c, "bob")) == (6.5, 1.05, 5.45, "late", "graded")
    # 3 % per hour of 7.5 points, 1 hour: 0.225 -> 0.23 (half up).
    await _policy(
        tenant, c, late_submission_deduction_enabled=True, late_submission_deduction=3, late_submission_interval="hour"
    )
    await _patch(tenant, c, points_possible=7.5)
    await _submit(tenant, c, "cid", DUE + timedelta(minutes=1), 6)
    s = await _score(tenant, c, "cid")
    assert float(s["points_deducted"]) == 0.23 and float(s["earned"]) == 5.77


async def test_points_possible_zero_deducts_nothing(tenant: Tenant) -> None:
    c = await _course(tenant, "canvas", "ann", "bob", points=0)
    await _submit(tenant, c, "ann", DUE + 2 * DAY, 0)
    await _policy(tenant, c, **LATE_BY_DAY)
    assert _figures(await _score(tenant, c, "ann")) == (0, 0, 0, "late", "graded")
    assert _figures(await _score(tenant, c, "bob")) == (None, 0, 0, "missing", "graded")


async def test_openedx_has_no_late_policy(tenant: Tenant) -> None:
    c = await _course(tenant, "openedx", "ann")
    r = await tenant.put(f"/v1/courses/{c}/late-policy", json={"late_submission_deduction_enabled": True})
    assert_problem(r, 422, "/late_submission_deduction_enabled")
    assert (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["revision"] == 0
    # Everything off is accepted (and a no-op).
    assert (await _policy(tenant, c))["revision"] == 0
    # A course whose late policy deducts cannot switch to openedx.
    c2 = await _course(tenant, "canvas", "ann")
    await _policy(tenant, c2, missing_submission_deduction_enabled=True, missing_submission_deduction=50)
    r = await tenant.put(
        f"/v1/courses/{c2}/policy", json={"preset": "openedx", "cutoffs": CUTOFFS, "categories": HOMEWORK}
    )
    assert_problem(r, 422, "/preset")


async def test_a_late_policy_names_bad_fields(tenant: Tenant) -> None:
    c = await _course(tenant, "canvas", "ann")
    r = await tenant.put(f"/v1/courses/{c}/late-policy", json={"late_submission_deduction": 101})
    assert_problem(r, 422, "/late_submission_deduction")
    r = await tenant.put(f"/v1/courses/{c}/late-policy", json={"late_submission_interval": "week"})
    assert_problem(r, 422, "/late_submission_interval")


async def test_policy_change_recomputes_and_is_audited(tenant: Tenant) -> None:
    c = await _course(tenant, "canvas", "ann", "bob")
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    # No policy: late is flagged, nothing deducted; bob not marked missing.
    assert _figures(await _score(tenant, c, "ann")) == (8, 0, 8, "late", "graded")
    assert (await tenant.get(f"/v1/courses/{c}/assessments/hw/scores/bob")).status_code == 404
    await _policy(tenant, c, **LATE_BY_DAY)
    assert _figures(await _score(tenant, c, "ann")) == (8, 1, 7, "late", "graded")
    off = await _policy(tenant, c)
    assert off["revision"] == 2 and not off["missing_submission_deduction_enabled"]
    assert _figures(await _score(tenant, c, "ann")) == (8, 0, 8, "late", "graded")
    bob = (await tenant.get(f"/v1/courses/{c}/assessments/hw/attempts/bob")).json()
    assert bob["status"] == "to_be_taken" and bob["earned"] is None
    log = await _audit(tenant, c, "late_policy.updated")
    assert [(e["old"] and e["old"]["revision"], e["new"]["revision"]) for e in log] == [(None, 1), (1, 2)]
    assert log[1]["old"]["missing_submission_deduction_enabled"] is True
    assert log[1]["new"]["missing_submission_deduction_enabled"] is False
    results = await _audit(tenant, c, "result.late_policy")
    ann = [(e["old"]["earned"], e["new"]["earned"]) for e in results if e["learner"] == "ann"]
    assert ann[-2:] == [(8, 7), (7, 8)]
    bob = [(e["new"]["late_status"], e["new"]["earned"]) for e in results if e["learner"] == "bob"]
    assert bob == [("missing", 7), (None, None)]


async def test_due_date_change_and_a_new_score_recompute(tenant: Tenant) -> None:
    c = await _course(tenant, "canvas", "ann", "bob")
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    await _policy(tenant, c, **LATE_BY_DAY)
    assert _figures(await _score(tenant, c, "bob"))[3] == "missing"
    # A score entered for missing work is the teacher's grade: no longer missing.
    r = await tenant.put(f"/v1/courses/{c}/assessments/hw/scores/bob", json={"earned": 2})
    assert r.status_code == 200 and r.json()["late_status"] is None and float(r.json()["earned"]) == 2
    await _patch(tenant, c, due_at=_iso(DUE + 2 * HOUR))
    assert _figures(await _score(tenant, c, "ann")) == (8, None, 8, None, "graded")
    await _patch(tenant, c, due_at=None)
    assert _figures(await _score(tenant, c, "ann")) == (8, None, 8, None, "graded")
    await _patch(tenant, c, due_at=_iso(DUE - DAY))
    assert _figures(await _score(tenant, c, "ann")) == (8, 2, 6, "late", "graded")


async def test_course_grade_uses_the_final_score_and_learners_see_the_deduction(
    tenant: Tenant, settings: Settings
) -> None:
    c = await _course(tenant, "standard", "ann", "bob")
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    await _policy(tenant, c, **LATE_BY_DAY)
    await run_worker(settings)
    r = await tenant.get(f"/v1/courses/{c}/learners/ann/grade")
    assert r.status_code == 200, r.text
    assert float(r.json()["final"]["percent"]) == 70  # 8 - 1 of 10
    r = await tenant.post(f"/v1/courses/{c}/publications", json={"assessments": ["hw"], "audience": {"all": True}})
    assert r.status_code in (200, 201, 202), r.text
    await run_worker(settings)
    for learner, expected in (("ann", (7, 1, "late")), ("bob", (7, 3, "missing"))):
        r = await tenant.get(f"/v1/me/courses/{c}/results", as_=await user_token(tenant, learner))
        assert r.status_code == 200, r.text
        hw = next(x for x in r.json()["results"] if x["assessment"] == "hw")
        assert (float(hw["earned"]), float(hw["points_deducted"]), hw["late_status"]) == expected
        assert "entered" not in hw


async def test_the_cron_marks_missing_once_the_due_date_passes(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    c = "late-" + secrets.token_hex(4)
    await course(tenant, c)
    await enroll(tenant, c, "ann", "bob")
    due = datetime.now(UTC) + timedelta(minutes=1)
    await assessment(tenant, c, "hw", points_possible=20, due_at=_iso(due))
    await _policy(tenant, c, missing_submission_deduction_enabled=True, missing_submission_deduction=25)
    await _submit(tenant, c, "ann", due - HOUR, 18)
    await run_worker(settings)
    assert (await tenant.get(f"/v1/courses/{c}/assessments/hw/scores/bob")).status_code == 404
    clock.freeze(due + timedelta(minutes=1))
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    assert _figures(await _score(tenant, c, "bob")) == (None, 5, 15, "missing", "graded")
    assert _figures(await _score(tenant, c, "ann")) == (18, None, 18, None, "graded")
    assert [e["learner"] for e in await _audit(tenant, c, "result.late_policy")] == ["bob"]
    # A learner enrolled after the due date is missing it too, on the next run.
    await enroll(tenant, c, "cid")
    clock.freeze(due + timedelta(minutes=2))
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    assert _figures(await _score(tenant, c, "cid")) == (None, 5, 15, "missing", "graded")
    # Idempotent: bob is not marked (nor audited) again.
    assert [e["learner"] for e in await _audit(tenant, c, "result.late_policy")] == ["bob", "cid"]
    # An assessment added with a due date already past: missing for everyone on the next run.
    await assessment(tenant, c, "old", points_possible=4, due_at=_iso(DUE))
    async with sessionmaker() as s:  # the learners enrolled long ago: only the new assessment is news
        sql = "UPDATE enrollments e SET updated_at = e.updated_at - interval '1 hour' FROM courses c"
        sql += " WHERE c.id = e.course_id AND c.organization_id = :o AND c.external_id = :c"
        await s.execute(text(sql), {"o": tenant.id, "c": c})
        await s.commit()
    clock.freeze(due + timedelta(minutes=3))
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    for learner in ("ann", "bob", "cid"):
        assert _figures(await _score(tenant, c, learner, "old")) == (None, 1, 3, "missing", "graded")


async def test_graders_see_the_figures_and_the_policy_needs_policy_rights(tenant: Tenant) -> None:
    c = await _course(tenant, "canvas", "ann")
    await grant(tenant, c, "gr", "grader")
    token = await user_token(tenant, "gr")
    assert_problem(await tenant.put(f"/v1/courses/{c}/late-policy", json=LATE_BY_DAY, as_=token), 403)
    assert (await tenant.get(f"/v1/courses/{c}/late-policy", as_=token)).status_code == 200


async def test_results_table_and_gradebook_show_late_and_missing(tenant: Tenant) -> None:
    c = await _course(tenant, "canvas", "ann", "bob", "cid")
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    await _submit(tenant, c, "cid", DUE - HOUR, 9)
    await _policy(tenant, c, **LATE_BY_DAY)
    r = await tenant.get(f"/v1/courses/{c}/results")
    assert r.status_code == 200, r.text
    rows = {x["learner"]: x for x in r.json()["items"]}
    got = {k: (x["entered"], x["points_deducted"], x["result"], x["late_status"]) for k, x in rows.items()}
    num = {k: (*(None if v is None else float(v) for v in t[:3]), t[3]) for k, t in got.items()}
    assert num == {"ann": (8, 1, 7, "late"), "bob": (None, 3, 7, "missing"), "cid": (9, None, 9, None)}
    r = await tenant.get(f"/v1/courses/{c}/gradebook", params={"view": "absolute"})
    assert r.status_code == 200, r.text
    cells = {x["learner"]: x["assessments"][0] for x in r.json()["items"]}
    assert {k: (x["score"], x["late_status"]) for k, x in cells.items()} == {
        "ann": (7, "late"),
        "bob": (7, "missing"),
        "cid": (9, None),
    }


async def test_excusing_late_or_missing_work_clears_the_policy_and_unexcusing_restores_it(tenant: Tenant) -> None:
    c = await _course(tenant, "canvas", "ann", "bob")
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    await _policy(tenant, c, **LATE_BY_DAY)
    for learner in ("ann", "bob"):
        r = await tenant.put(f"/v1/courses/{c}/assessments/hw/excused/{learner}", json={})
        assert r.status_code in (200, 201), r.text
    assert _figures(await _score(tenant, c, "ann")) == (8, None, 8, None, "graded")
    bob = (await tenant.get(f"/v1/courses/{c}/assessments/hw/attempts/bob")).json()
    assert (bob["status"], bob["earned"], bob["late_status"]) == ("to_be_taken", None, None)
    for learner in ("ann", "bob"):
        r = await tenant.delete(f"/v1/courses/{c}/assessments/hw/excused/{learner}")
        assert r.status_code == 204, r.text
    assert _figures(await _score(tenant, c, "ann")) == (8, 1, 7, "late", "graded")
    assert _figures(await _score(tenant, c, "bob")) == (None, 3, 7, "missing", "graded")


async def test_missing_work_can_still_be_handed_in_late(tenant: Tenant) -> None:
    c = await _course(tenant, "canvas", "eve")
    await _policy(tenant, c, **LATE_BY_DAY)
    assert _figures(await _score(tenant, c, "eve")) == (None, 3, 7, "missing", "graded")
    # Graded by the policy, not handed in: she may still hand it in (not a next attempt, not a 409).
    await _submit(tenant, c, "eve", DUE + DAY + HOUR, 9)
    assert _figures(await _score(tenant, c, "eve")) == (9, 2, 7, "late", "graded")
    attempt = (await tenant.get(f"/v1/courses/{c}/assessments/hw/attempts/eve")).json()
    assert (attempt["attempt_number"], attempt["late_status"], attempt["points_deducted"]) == (1, "late", 2)


# --- The worker's application (a policy, due date or group override change: every learner, in chunks) ---


async def test_a_policy_change_is_queued_then_applied_by_the_worker(tenant: Tenant, settings: Settings) -> None:
    c = await _course(tenant, "canvas", "ann", "bob")
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    r = await tenant.put(f"/v1/courses/{c}/late-policy", json=LATE_BY_DAY)
    assert r.status_code == 200, r.text
    queued = r.json()["application"]
    assert queued["status"] == "queued" and queued["requested_at"] and queued["learners_done"] == 0
    assert (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["application"] == queued
    # Not applied yet: ann keeps her score, bob is not missing.
    assert _figures(await _score(tenant, c, "ann")) == (8, 0, 8, "late", "graded")
    await run_worker(settings, crons=False)
    applied = (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["application"]
    assert applied == {"status": "applied", "requested_at": None, "learners_done": None, "results_changed": None}
    assert _figures(await _score(tenant, c, "ann")) == (8, 1, 7, "late", "graded")
    assert _figures(await _score(tenant, c, "bob")) == (None, 3, 7, "missing", "graded")
    # The same policy again changes nothing and asks for nothing.
    r = await tenant.put(f"/v1/courses/{c}/late-policy", json=LATE_BY_DAY)
    assert r.status_code == 200 and r.json()["application"]["status"] == "applied" and r.json()["revision"] == 1


async def test_a_lost_application_job_is_found_again_by_the_cron(tenant: Tenant, settings: Settings) -> None:
    from arq.constants import default_queue_name

    from gradeflow import jobs

    c = await _course(tenant, "canvas", "ann", "bob")
    r = await tenant.put(f"/v1/courses/{c}/late-policy", json=LATE_BY_DAY)
    assert r.status_code == 200, r.text
    redis = await jobs.connect(settings.redis_url)
    try:
        await redis.delete(default_queue_name)  # Redis lost the job
    finally:
        await redis.aclose()
    await run_worker(settings, crons=False)
    assert (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["application"]["status"] == "queued"
    clock.freeze(datetime.now(UTC) + timedelta(seconds=10))  # queued and not started for longer than LOST_AFTER
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    assert (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["application"]["status"] == "applied"
    assert _figures(await _score(tenant, c, "bob")) == (None, 3, 7, "missing", "graded")


async def test_a_worker_that_died_leaves_its_application_to_another(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    c = await _course(tenant, "canvas", "ann", "bob")
    assert (await tenant.put(f"/v1/courses/{c}/late-policy", json=LATE_BY_DAY)).status_code == 200
    async with sessionmaker() as s:  # taken by a worker that died at once (its lease runs 5 minutes)
        await s.execute(text("UPDATE late_applications SET started_at = now() - interval '1 minute'"))
        await s.commit()
    await run_worker(settings, crons=False)
    assert (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["application"]["status"] == "running"
    clock.freeze(datetime.now(UTC) + timedelta(minutes=5))
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    assert (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["application"]["status"] == "applied"
    assert _figures(await _score(tenant, c, "bob")) == (None, 3, 7, "missing", "graded")


async def test_requests_in_a_row_and_during_a_run_converge(
    tenant: Tenant, settings: Settings, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradeflow.deadlines.service import late_policies, late_results

    c = await _course(tenant, "canvas", "ann", "bob", "cid")
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    await _submit(tenant, c, "cid", DUE + HOUR, 8)
    # Two requests before the worker runs: the last policy is what it applies.
    assert (await tenant.put(f"/v1/courses/{c}/late-policy", json=LATE_BY_DAY)).status_code == 200
    assert await tenant.put(f"/v1/courses/{c}/late-policy", json={**LATE_BY_DAY, "missing_submission_deduction": 40})
    await run_worker(settings, crons=False)
    assert _figures(await _score(tenant, c, "bob")) == (None, 4, 6, "missing", "graded")
    # A new request while the worker is between chunks (one learner each): it starts again under the new policy.
    monkeypatch.setattr(late_policies, "CHUNK", 1)
    apply = late_results.apply
    calls: list[int] = []

    async def meanwhile(session: Any, course_id: int, **kw: Any) -> list[int]:
        calls.append(course_id)
        if len(calls) == 2:  # after the first chunk: a teacher changes the policy
            async with sessionmaker() as other:
                sql = "UPDATE late_policies SET late_submission_deduction = 20 WHERE course_id = :c"
                await other.execute(text(sql), {"c": course_id})
                await late_policies.request_application(other, course_id, None)
                await other.commit()
        return await apply(session, course_id, **kw)

    monkeypatch.setattr(late_results, "apply", meanwhile)
    assert await tenant.put(f"/v1/courses/{c}/late-policy", json={**LATE_BY_DAY, "late_submission_deduction": 15})
    await run_worker(settings, crons=False)
    assert len(calls) > 3  # started again
    assert (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["application"]["status"] == "applied"
    for learner in ("ann", "cid"):  # 1 day late: 20 % of 10
        assert _figures(await _score(tenant, c, learner)) == (8, 2, 6, "late", "graded")


async def test_chunks_of_learners_give_the_figures_of_one_chunk(
    tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradeflow.deadlines.service import late_policies

    figures = []
    for chunk in (1000, 2):
        monkeypatch.setattr(late_policies, "CHUNK", chunk)
        c = await _course(tenant, "canvas", "ann", "bob", "cid", "dan", "eve")
        await _submit(tenant, c, "ann", DUE + HOUR, 8)
        await _submit(tenant, c, "bob", DUE + DAY + HOUR, 9)
        await _submit(tenant, c, "dan", DUE - HOUR, 4)
        await _policy(tenant, c, **LATE_BY_DAY)
        audited = sorted((e["learner"], str(e["new"])) for e in await _audit(tenant, c, "result.late_policy"))
        figures.append(([_figures(await _score(tenant, c, x)) for x in ("ann", "bob", "cid", "dan", "eve")], audited))
    assert figures[0] == figures[1]
    assert sorted({x for x, _ in figures[0][1]}) == ["ann", "bob", "cid", "eve"]
    figures = [f for f, _ in figures]
    assert figures[0][2] == (None, 3, 7, "missing", "graded")


async def test_a_group_extension_is_applied_by_the_worker(tenant: Tenant, settings: Settings) -> None:
    c = "late-" + secrets.token_hex(4)
    await course(tenant, c)
    rows = [{"external_id": "ann", "groups": ["red"]}, {"external_id": "bob"}]
    assert (await tenant.post(f"/v1/courses/{c}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(tenant, c, "hw", points_possible=10, due_at=_iso(DUE))
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    await _policy(tenant, c, **LATE_BY_DAY)
    assert _figures(await _score(tenant, c, "ann")) == (8, 1, 7, "late", "graded")
    r = await tenant.put(f"/v1/courses/{c}/assessments/hw/overrides/groups/red", json={"due_at": _iso(DUE + DAY)})
    assert r.status_code == 200, r.text
    assert (await tenant.get(f"/v1/courses/{c}/late-policy")).json()["application"]["status"] == "queued"
    await _applied(tenant, c)
    assert _figures(await _score(tenant, c, "ann")) == (8, None, 8, None, "graded")
    assert _figures(await _score(tenant, c, "bob")) == (None, 3, 7, "missing", "graded")
