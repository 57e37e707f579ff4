"""Review of #20 (late and missing policies, extensions and extra attempts): defects a user would notice."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from gradeflow.core.settings import Settings
from tests.conftest import Tenant, run_worker
from tests.helpers import assessment, course, user_token

DUE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LATE_BY_DAY = {
    "late_submission_deduction_enabled": True,
    "late_submission_deduction": 10,
    "late_submission_interval": "day",
}


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def _course(t: Tenant, rows: list[dict[str, Any]]) -> str:
    c = "r20a-" + secrets.token_hex(4)
    await course(t, c)
    r = await t.post(f"/v1/courses/{c}/enrollments:batch", json={"enrollments": rows})
    assert r.status_code == 200, r.text
    await assessment(t, c, "hw", points_possible=10, due_at=_iso(DUE))
    return c


async def _submit(t: Tenant, c: str, learner: str, at: datetime, earned: float) -> None:
    r = await t.put(
        f"/v1/courses/{c}/assessments/hw/attempts/{learner}",
        json={"status": "submitted", "started_at": _iso(at - HOUR), "submitted_at": _iso(at)},
    )
    assert r.status_code == 200, r.text
    r = await t.put(f"/v1/courses/{c}/assessments/hw/scores/{learner}", json={"earned": earned})
    assert r.status_code == 200, r.text


async def _score(t: Tenant, c: str, learner: str) -> dict[str, Any]:
    r = await t.get(f"/v1/courses/{c}/assessments/hw/scores/{learner}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_joining_a_group_with_an_extension_lifts_the_late_deduction(tenant: Tenant) -> None:
    """The learner's own due date follows their groups (due_dates.py); moving a learner into a group whose
    extension covers their submission must make their work on time, as setting that extension does."""
    c = await _course(tenant, [{"external_id": "ann", "groups": ["red"]}, {"external_id": "bob", "groups": ["red"]}])
    r = await tenant.put(f"/v1/courses/{c}/late-policy", json=LATE_BY_DAY)
    assert r.status_code == 200, r.text
    # bob is in "ext" only so the group name exists for the override.
    r = await tenant.patch(f"/v1/courses/{c}/enrollments/bob", json={"groups": ["ext"]})
    assert r.status_code == 200, r.text
    r = await tenant.put(f"/v1/courses/{c}/assessments/hw/overrides/groups/ext", json={"due_at": _iso(DUE + 3 * DAY)})
    assert r.status_code == 200, r.text
    await _submit(tenant, c, "ann", DUE + HOUR, 8)  # 1 day late under the assessment's date: 1.00 off
    s = await _score(tenant, c, "ann")
    assert (s["late_status"], float(s["points_deducted"]), float(s["earned"])) == ("late", 1.0, 7.0)
    # ann joins "ext": her own due date is now DUE + 3 days, her work was on time.
    r = await tenant.patch(f"/v1/courses/{c}/enrollments/ann", json={"groups": ["red", "ext"]})
    assert r.status_code == 200, r.text
    s = await _score(tenant, c, "ann")
    assert (s["late_status"], s["points_deducted"], float(s["earned"])) == (None, None, 8.0)


async def test_reverting_an_import_puts_a_missing_result_back_to_missing(tenant: Tenant, settings: Settings) -> None:
    """eve never handed in: missing, 10 - 30 % = 7. An import scores her 9, then is reverted as a whole: her result
    is what it was before the import (missing, 7), not a 'submitted' attempt she never handed in with no result."""
    c = await _course(tenant, [{"external_id": "eve"}])
    r = await tenant.put(
        f"/v1/courses/{c}/late-policy",
        json={"missing_submission_deduction_enabled": True, "missing_submission_deduction": 30},
    )
    assert r.status_code == 200, r.text
    await run_worker(settings)  # a course's policy is applied by the worker (late_policies.request_application)
    before = await _score(tenant, c, "eve")
    assert (before["status"], before["late_status"], float(before["earned"])) == ("graded", "missing", 7.0)
    r = await tenant.post(
        f"/v1/courses/{c}/imports",
        files={"file": ("s.csv", b"learner,assessment,earned\neve,hw,9\n", "text/csv")},
        data={"mapping": '{"learner": "learner", "assessment": "assessment", "earned": "earned"}'},
    )
    assert r.status_code == 202, r.text
    await run_worker(settings)
    done = (await tenant.get(f"/v1/courses/{c}/imports/{r.json()['id']}")).json()
    assert done["status"] == "succeeded", done
    assert float((await _score(tenant, c, "eve"))["earned"]) == 9
    r = await tenant.post(f"/v1/courses/{c}/imports/{done['id']}:revert")
    assert r.status_code == 200, r.text
    after = await _score(tenant, c, "eve")
    assert (after["status"], after["late_status"], after["earned"]) == ("graded", "missing", before["earned"])


async def test_staff_see_a_published_result_as_changed_when_only_its_late_flag_moved(
    tenant: Tenant, settings: Settings
) -> None:
    """ann handed in an hour late (no deduction: flagged late, 0.00 off) and that was published: she sees "late".
    An extension then makes her on time: publishing offers her result again (it compares the late figures), but
    the staff views (score detail, results table) use published.CHANGED, which ignores them, and say "published"
    though ann still sees "late"."""
    c = await _course(tenant, [{"external_id": "ann"}])
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    assert (await _score(tenant, c, "ann"))["late_status"] == "late"
    r = await tenant.post(f"/v1/courses/{c}/publications", json={"assessments": ["hw"], "audience": {"all": True}})
    assert r.status_code in (200, 201, 202), r.text
    await run_worker(settings)
    r = await tenant.put(f"/v1/courses/{c}/assessments/hw/overrides/learners/ann", json={"due_at": _iso(DUE + DAY)})
    assert r.status_code == 200, r.text
    assert (await _score(tenant, c, "ann"))["late_status"] is None
    mine = (await tenant.get(f"/v1/me/courses/{c}/results", as_=await user_token(tenant, "ann"))).json()
    assert next(x for x in mine["results"] if x["assessment"] == "hw")["late_status"] == "late"
    assert (await _score(tenant, c, "ann"))["publication"]["state"] == "changed"


async def test_an_openedx_course_can_always_put_back_the_late_policy_it_reads(tenant: Tenant) -> None:
    """Two rules for "openedx has no late policy": the late-policy PUT refuses a floor being enabled, the
    grading-policy PUT lets a course whose late policy enables one switch to openedx. The course then holds a
    policy its own GET returns and its PUT refuses (422), even unchanged."""
    c = await _course(tenant, [{"external_id": "ann"}])
    cutoffs = [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}]
    policy = {"cutoffs": cutoffs, "categories": [{"name": "Homework", "weight": 1}]}
    assert (await tenant.put(f"/v1/courses/{c}/policy", json={"preset": "standard", **policy})).status_code == 200
    r = await tenant.put(
        f"/v1/courses/{c}/late-policy",
        json={"late_submission_minimum_percent_enabled": True, "late_submission_minimum_percent": 50},
    )
    assert r.status_code == 200, r.text
    switched = await tenant.put(f"/v1/courses/{c}/policy", json={"preset": "openedx", **policy})
    current = (await tenant.get(f"/v1/courses/{c}/late-policy")).json()
    body = {k: v for k, v in current.items() if k not in ("revision", "updated_by", "updated_at")}
    again = await tenant.put(f"/v1/courses/{c}/late-policy", json=body)
    # Either the switch is refused (as for a deduction) or the policy it kept is accepted back.
    assert switched.status_code == 422 or again.status_code == 200, (switched.text, again.text)


async def test_the_learner_review_shows_the_late_deduction_of_the_published_result(tenant: Tenant) -> None:
    """ann's published result is 8 entered, 1.00 off for a day late, 7: her review page shows the same figures as
    her results (the deduction and the late flag), not a bare 7 with nothing to say why."""
    c = await _course(tenant, [{"external_id": "ann"}])
    assert (await tenant.put(f"/v1/courses/{c}/late-policy", json=LATE_BY_DAY)).status_code == 200
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    r = await tenant.post(f"/v1/courses/{c}/publications", json={"assessments": ["hw"], "audience": {"all": True}})
    assert r.status_code in (200, 201, 202), r.text
    now = datetime.now(UTC)
    window = {"external_id": "w1", "starts_at": _iso(now - HOUR), "ends_at": _iso(now + HOUR)}
    r = await tenant.post(f"/v1/courses/{c}/assessments/hw/review-sessions", json=window)
    assert r.status_code == 201, r.text
    r = await tenant.get(f"/v1/me/courses/{c}/assessments/hw/review", as_=await user_token(tenant, "ann"))
    assert r.status_code == 200, r.text
    mine = r.json()
    assert (float(mine["earned"]), float(mine["points_deducted"]), mine["late_status"]) == (7.0, 1.0, "late")


async def test_handing_in_missing_work_reopens_its_confirmation(tenant: Tenant, settings: Settings) -> None:
    """On a manually marked assessment a planner confirms eve's missing result (the policy's 7 of 10). She then
    hands in late: the confirmation was of the missing result, not of her work, so it no longer stands."""
    c = "r20a-" + secrets.token_hex(4)
    await course(tenant, c)
    assert (await tenant.put(f"/v1/courses/{c}/enrollments/eve", json={})).status_code in (200, 201)
    items = [{"external_id": "q1", "points_possible": 10, "marking": "manual"}]
    body = {"external_id": "hw", "title": "Essay", "category": "Homework", "due_at": _iso(DUE), "items": items}
    assert (await tenant.post(f"/v1/courses/{c}/assessments", json=body)).status_code == 201
    policy = {"missing_submission_deduction_enabled": True, "missing_submission_deduction": 30}
    assert (await tenant.put(f"/v1/courses/{c}/late-policy", json=policy)).status_code == 200
    await run_worker(settings)
    assert (await tenant.post(f"/v1/courses/{c}/assessments/hw/confirmations", json={})).status_code == 200
    s = await _score(tenant, c, "eve")
    assert (s["late_status"], float(s["earned"]), s["confirmed"]) == ("missing", 7.0, True)
    r = await tenant.put(
        f"/v1/courses/{c}/assessments/hw/attempts/eve", json={"status": "submitted", "submitted_at": _iso(DUE + HOUR)}
    )
    assert r.status_code == 200, r.text
    s = await _score(tenant, c, "eve")
    assert (s["status"], s["late_status"], s["confirmed"], s["confirmed_by"]) == ("submitted", "late", False, None)


async def test_a_course_team_extension_does_not_hold_back_the_release(tenant: Tenant, settings: Settings) -> None:
    """Released after the last attempt: a course team member (whom the late policy never marks missing either) with
    an extension does not keep the learners' results back."""
    c = await _course(tenant, [{"external_id": "ann"}, {"external_id": "tim", "is_course_team": True}])
    release = {"mode": "automatic", "after": "last_attempt"}
    assert (await tenant.patch(f"/v1/courses/{c}/assessments/hw", json={"release": release})).status_code == 200
    later = datetime.now(UTC) + DAY
    r = await tenant.put(f"/v1/courses/{c}/assessments/hw/overrides/learners/tim", json={"due_at": _iso(later)})
    assert r.status_code == 200, r.text
    await _submit(tenant, c, "ann", DUE - HOUR, 8)
    await run_worker(settings)
    mine = (await tenant.get(f"/v1/me/courses/{c}/results", as_=await user_token(tenant, "ann"))).json()
    assert [x["earned"] for x in mine["results"]] == [8]


async def test_automatic_release_publishes_a_result_whose_late_flag_moved(tenant: Tenant, settings: Settings) -> None:
    """Released after each attempt: ann's late result (flagged, 0.00 off) is released; an extension then makes it on
    time. The release publishes it again, as it does any result changed since published (published.CHANGED)."""
    c = await _course(tenant, [{"external_id": "ann"}])
    release = {"mode": "automatic", "after": "each_attempt"}
    assert (await tenant.patch(f"/v1/courses/{c}/assessments/hw", json={"release": release})).status_code == 200
    await _submit(tenant, c, "ann", DUE + HOUR, 8)
    await run_worker(settings)
    ann = await user_token(tenant, "ann")
    mine = (await tenant.get(f"/v1/me/courses/{c}/results", as_=ann)).json()["results"]
    assert [(x["earned"], x["late_status"]) for x in mine] == [(8, "late")]
    r = await tenant.put(f"/v1/courses/{c}/assessments/hw/overrides/learners/ann", json={"due_at": _iso(DUE + DAY)})
    assert r.status_code == 200, r.text
    await run_worker(settings)
    mine = (await tenant.get(f"/v1/me/courses/{c}/results", as_=ann)).json()["results"]
    assert [(x["earned"], x["late_status"]) for x in mine] == [(8, None)]


async def test_a_course_whose_late_policy_fails_does_not_stop_the_cron_for_the_others(
    tenant: Tenant, settings: Settings, sessionmaker: Any, monkeypatch: Any
) -> None:
    """Suspected (confirmed, fixed): the missing cron applied course after course in one loop; one that raised left
    every course after it unprocessed and the swept-up-to time where it was. Now each course's due dates go to the
    worker's application (its own job) and new learners are applied per course, a failure logged and handed on."""
    from gradeflow.core import clock
    from gradeflow.deadlines import tasks as late
    from gradeflow.deadlines.service import late_results

    due = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    courses = []
    for _ in range(2):
        c = "r20a-" + secrets.token_hex(4)
        await course(tenant, c)
        r = await tenant.post(f"/v1/courses/{c}/enrollments:batch", json={"enrollments": [{"external_id": "ann"}]})
        assert r.status_code == 200, r.text
        await assessment(tenant, c, "hw", points_possible=10, due_at=_iso(due))
        body = {"missing_submission_deduction_enabled": True, "missing_submission_deduction": 30}
        assert (await tenant.put(f"/v1/courses/{c}/late-policy", json=body)).status_code == 200
        courses.append(c)
    await run_worker(settings)
    # bob joins the course that will break (before it breaks: the enrollment applies the policy too)
    r = await tenant.post(f"/v1/courses/{courses[0]}/enrollments:batch", json={"enrollments": [{"external_id": "bob"}]})
    assert r.status_code == 200, r.text
    async with sessionmaker() as session:
        sql = "SELECT id FROM courses WHERE organization_id = :o AND external_id = :c"
        broken = await session.scalar(text(sql), {"o": tenant.id, "c": courses[0]})
    apply_at = late_results.apply_at

    async def failing(session: Any, course_id: int, *args: Any, **kw: Any) -> list[int]:
        if course_id == broken:
            raise RuntimeError("this course's data breaks the late policy")
        return await apply_at(session, course_id, *args, **kw)

    monkeypatch.setattr(late_results, "apply_at", failing)
    clock.freeze(due + timedelta(minutes=1))
    try:
        await run_worker(settings)
        r = await tenant.post(
            f"/v1/courses/{courses[1]}/enrollments:batch", json={"enrollments": [{"external_id": "bob"}]}
        )
        assert r.status_code == 200
        clock.freeze(due + timedelta(minutes=2))
        await run_worker(settings)
    finally:
        clock.freeze(None)
    from gradeflow import jobs

    redis = await jobs.connect(settings.redis_url)
    try:
        import urllib.parse

        database = urllib.parse.urlsplit(settings.database_url.get_secret_value()).path.lstrip("/")
        swept = await redis.get(late.KEY.format(database=database))
    finally:
        await redis.aclose()
    assert swept is not None and datetime.fromisoformat(swept.decode()) >= due + timedelta(minutes=1)
    for learner in ("ann", "bob"):
        s = (await tenant.get(f"/v1/courses/{courses[1]}/assessments/hw/scores/{learner}")).json()
        assert (s["late_status"], float(s["earned"])) == ("missing", 7.0), s
    # The broken course waits for the worker (nothing lost): its application is still there to retry.
    assert (await tenant.get(f"/v1/courses/{courses[0]}/late-policy")).json()["application"]["status"] != "applied"


async def test_an_extension_that_lifts_a_confirmed_missing_result_reopens_its_confirmation(
    tenant: Tenant, settings: Settings
) -> None:
    """The planner confirmed eve's missing result; an extension then makes the work not due yet: the missing result
    is gone, and so is the confirmation that was of it."""
    c = "r20a-" + secrets.token_hex(4)
    await course(tenant, c)
    assert (await tenant.put(f"/v1/courses/{c}/enrollments/eve", json={})).status_code in (200, 201)
    items = [{"external_id": "q1", "points_possible": 10, "marking": "manual"}]
    body = {"external_id": "hw", "title": "Essay", "category": "Homework", "due_at": _iso(DUE), "items": items}
    assert (await tenant.post(f"/v1/courses/{c}/assessments", json=body)).status_code == 201
    policy = {"missing_submission_deduction_enabled": True, "missing_submission_deduction": 30}
    assert (await tenant.put(f"/v1/courses/{c}/late-policy", json=policy)).status_code == 200
    await run_worker(settings)
    assert (await tenant.post(f"/v1/courses/{c}/assessments/hw/confirmations", json={})).status_code == 200
    assert (await _score(tenant, c, "eve"))["confirmed"] is True
    later = datetime.now(UTC) + DAY
    r = await tenant.put(f"/v1/courses/{c}/assessments/hw/overrides/learners/eve", json={"due_at": _iso(later)})
    assert r.status_code == 200, r.text
    s = await _score(tenant, c, "eve")
    assert (s["status"], s["late_status"], s["earned"], s["confirmed"]) == ("to_be_taken", None, None, False)
