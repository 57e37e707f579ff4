"""Publishing results: who may publish, partial and scheduled publication, release modes, retraction,
what learners can read, and the results e-mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from gradeflow.core import clock
from gradeflow.core.settings import Settings, SmtpSettings
from gradeflow.courses.commands import ReleaseSettings
from gradeflow.devstack.mailsink import Memory
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, email, grant, user_token

PUBS = "/v1/courses/c1/publications"


async def _course(t: Tenant) -> None:
    """ann (cohort A) 8/10, bob (cohort B) 6/10, cid (cohort B) no attempt, dan (no e-mail) 9/10 on hw1;
    an exam with a manual item, scored for ann (unconfirmed) and bob (confirmed)."""
    await course(t)
    rows = [
        {"external_id": "ann", "email": email(t, "ann"), "full_name": "Ann Lee", "cohort": "A", "groups": ["g1"]},
        {"external_id": "bob", "email": email(t, "bob"), "cohort": "B"},
        {"external_id": "cid", "email": email(t, "cid"), "cohort": "B"},
        {"external_id": "dan", "cohort": "A"},
    ]
    assert (await t.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "hw1", title="Homework 1")
    items = [
        {"external_id": "q1", "number": "1", "points_possible": 4},
        {"external_id": "q2", "number": "2", "points_possible": 6, "marking": "manual"},
    ]
    await assessment(t, "c1", "exam", title="Final exam", category="Exam", items=items)
    for learner, earned in (("ann", 8), ("bob", 6), ("dan", 9)):
        r = await t.put(f"/v1/courses/c1/assessments/hw1/scores/{learner}", json={"earned": earned})
        assert r.status_code == 200, r.text
    for learner in ("ann", "bob"):
        body = {"items": [{"item": "q1", "earned": 3}, {"item": "q2", "earned": 5}], "source": "manual"}
        assert (await t.put(f"/v1/courses/c1/assessments/exam/scores/{learner}", json=body)).status_code == 200
    r = await t.post("/v1/courses/c1/assessments/exam/confirmations", json={"learners": ["bob"]})
    assert r.status_code == 200, r.text


async def _publish(t: Tenant, **body: Any) -> dict[str, Any]:
    r = await t.post(PUBS, json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{PUBS}/{r.json()['id']}"
    return dict(r.json())


async def _mine(t: Tenant, learner: str) -> dict[str, Any]:
    r = await t.get("/v1/me/courses/c1/results", as_=await user_token(t, learner))
    assert r.status_code == 200, r.text
    return dict(r.json())


def _skips(publication: dict[str, Any]) -> set[tuple[str, str | None, str]]:
    return {(s["learner"], s["assessment"], s["reason"]) for s in publication["skipped_detail"]}


async def test_only_publishers_publish(tenant: Tenant, other_tenant: Tenant) -> None:
    await _course(tenant)
    body = {"assessments": ["hw1"], "audience": {"all": True}}
    await grant(tenant, "c1", "gina", "grader", "planner", "viewer")
    await grant(tenant, "c1", "paul", "publisher")
    r = await tenant.put("/v1/courses/c1/members/lim", json={"roles": ["publisher"], "publish_assessments": ["exam"]})
    assert r.status_code == 200
    gina, paul, lim = [await user_token(tenant, u) for u in ("gina", "paul", "lim")]
    # Grading and planning do not make a publisher; a publisher need not grade.
    assert_problem(await tenant.post(PUBS, json=body, as_=gina), 403)
    assert_problem(await tenant.post(PUBS, json=body, as_=lim), 403)  # limited to the exam
    assert_problem(await tenant.post(PUBS, json={**body, "course_grade": True}, as_=lim), 403)
    assert_problem(await other_tenant.post(PUBS, json=body), 404)
    r = await tenant.post(PUBS, json=body, as_=paul)
    assert r.status_code == 201 and r.json()["created_by"] == "paul"
    # Staff who oversee results read publications; the learner's own token does not.
    assert (await tenant.get(PUBS, as_=gina)).json()["items"][0]["id"] == r.json()["id"]
    assert_problem(await tenant.get(PUBS, as_=await user_token(tenant, "ann")), 404)


async def test_publication_input_errors(tenant: Tenant) -> None:
    await _course(tenant)
    assert_problem(await tenant.post(PUBS, json={"audience": {"all": True}}), 422, "/assessments")
    two = {"assessments": ["hw1"], "audience": {"all": True, "learners": ["ann"]}}
    assert_problem(await tenant.post(PUBS, json=two), 422, "/audience")
    unknown = {"assessments": ["hw1", "nope"], "audience": {"all": True}}
    assert_problem(await tenant.post(PUBS, json=unknown), 422, "/assessments/1")
    twice = {"assessments": ["hw1", "hw1"], "audience": {"all": True}}
    assert_problem(await tenant.post(PUBS, json=twice), 422, "/assessments/1")
    retract_mail = {"action": "retract", "assessments": ["hw1"], "audience": {"all": True}, "notify_email": True}
    assert_problem(await tenant.post(PUBS, json=retract_mail), 422, "/notify_email")
    assert_problem(await tenant.get(f"{PUBS}/999999999"), 404)


async def test_partial_publication_by_list_and_cohort(tenant: Tenant) -> None:
    await _course(tenant)
    p = await _publish(tenant, assessments=["hw1"], audience={"learners": ["ann", "cid", "zed"]})
    assert (p["status"], p["action"], p["changed"], p["skipped"]) == ("done", "publish", 1, 2)
    assert _skips(p) == {("cid", "hw1", "no_attempt"), ("zed", None, "not_enrolled")}
    assert "no attempt" in next(s["detail"] for s in p["skipped_detail"] if s["learner"] == "cid")
    assert [r["assessment"] for r in (await _mine(tenant, "ann"))["results"]] == ["hw1"]
    assert (await _mine(tenant, "bob"))["results"] == []

    p = await _publish(tenant, assessments=["hw1"], audience={"cohorts": ["B"]})
    assert p["changed"] == 1 and _skips(p) == {("cid", "hw1", "no_attempt")}
    mine = (await _mine(tenant, "bob"))["results"][0]
    assert (mine["earned"], mine["possible"], mine["title"]) == (6, 10, "Homework 1") and mine["items"] is None

    summary = (await tenant.get("/v1/courses/c1/publication-summary")).json()
    hw1 = next(a for a in summary["assessments"] if a["assessment"] == "hw1")
    assert (hw1["participants"], hw1["published"], hw1["fully_published"]) == (3, 2, False)  # dan is not yet
    p = await _publish(tenant, assessments=["hw1"], audience={"unpublished": True})
    assert p["changed"] == 1  # dan; ann and bob are published already, cid has nothing
    summary = (await tenant.get("/v1/courses/c1/publication-summary")).json()
    assert next(a for a in summary["assessments"] if a["assessment"] == "hw1")["fully_published"]

    # A change after publication stays hidden from the learner until it is published again.
    assert (await tenant.put("/v1/courses/c1/assessments/hw1/scores/bob", json={"earned": 7})).status_code == 200
    staff = (await tenant.get("/v1/courses/c1/assessments/hw1/scores/bob")).json()
    assert staff["publication"]["state"] == "changed" and staff["earned"] == 7
    assert (await _mine(tenant, "bob"))["results"][0]["earned"] == 6
    p = await _publish(tenant, assessments=["hw1"], audience={"unpublished": True})
    assert p["changed"] == 1 and (await _mine(tenant, "bob"))["results"][0]["earned"] == 7
    listed = (await tenant.get("/v1/courses/c1/assessments/hw1/scores")).json()["items"]
    assert {s["learner"]: s["publication"]["state"] for s in listed} == {
        "ann": "published",
        "bob": "published",
        "dan": "published",
    }
    again = await _publish(tenant, assessments=["hw1"], audience={"learners": ["ann"]})
    assert again["changed"] == 0 and _skips(again) == {("ann", "hw1", "already_published")}


async def test_only_graded_confirmed_results_are_published(tenant: Tenant) -> None:
    await _course(tenant)
    r = await tenant.put("/v1/courses/c1/assessments/exam/attempts/cid", json={"status": "in_progress"})
    assert r.status_code == 200, r.text
    p = await _publish(tenant, assessments=["exam"], audience={"all": True}, show="with_items")
    assert p["changed"] == 1  # bob, whose manual marking is confirmed
    assert ("ann", "exam", "not_confirmed") in _skips(p) and ("dan", "exam", "no_attempt") in _skips(p)
    exam = (await _mine(tenant, "bob"))["results"][0]
    assert exam["earned"] == 8 and [(i["item"], i["earned"]) for i in exam["items"]] == [("q1", 3), ("q2", 5)]
    assert (await _mine(tenant, "ann"))["results"] == []


async def test_learners_read_only_their_own_published_results(tenant: Tenant, other_tenant: Tenant) -> None:
    await _course(tenant)
    await _publish(tenant, assessments=["hw1"], audience={"learners": ["ann"]})
    await _publish(tenant, assessments=["exam"], audience={"learners": ["bob"]}, show="total_only")
    ann_token = await user_token(tenant, "ann")
    bob = await _mine(tenant, "bob")
    assert [r["assessment"] for r in bob["results"]] == ["exam"] and bob["results"][0]["items"] is None
    assert bob["learner"] == "bob" and bob["course_grade"] is None
    # Every route that could show another learner's data or an unpublished mark is closed to a learner.
    for path in (
        "/v1/courses/c1/assessments/hw1/scores/bob",
        "/v1/courses/c1/assessments/hw1/scores",
        "/v1/courses/c1/learners/bob/grade",
        "/v1/courses/c1/grades",
        "/v1/courses/c1/publications",
        "/v1/courses/c1/publication-summary",
        "/v1/courses/c1/assessments/hw1/scores/ann",
        "/v1/courses/c1/marks",
    ):
        assert_problem(await tenant.get(path, as_=ann_token), 404)
    # Not enrolled, another organization's course, or an API key: no learner view.
    assert_problem(await tenant.get("/v1/me/courses/c1/results", as_=await user_token(tenant, "zed")), 404)
    assert_problem(await other_tenant.get("/v1/me/courses/c1/results", as_=await user_token(other_tenant, "ann")), 404)
    assert_problem(await tenant.get("/v1/me/courses/c1/results"), 403)


async def test_course_grade_and_retraction_are_audited(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    p = await _publish(tenant, course_grade=True, audience={"learners": ["ann"]})
    assert _skips(p) == {("ann", None, "no_grade")}  # no policy yet
    policy = {
        "categories": [{"name": "Homework", "weight": 1}, {"name": "Exam", "weight": 0}],
        "cutoffs": [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}],
    }
    assert (await tenant.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    await run_worker(settings)
    p = await _publish(tenant, assessments=["hw1"], course_grade=True, audience={"learners": ["ann", "cid"]})
    assert p["changed"] == 2 and _skips(p) == {("cid", "hw1", "no_attempt"), ("cid", None, "no_attempt")}
    mine = await _mine(tenant, "ann")
    assert mine["results"][0]["earned"] == 8
    assert (mine["course_grade"]["percent"], mine["course_grade"]["grade"]) == (80, "P")
    staff = (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()
    assert staff["publication"]["state"] == "published"
    assert (await tenant.get("/v1/courses/c1/learners/bob/grade")).json()["publication"]["state"] == "unpublished"

    r = await _publish(tenant, action="retract", assessments=["hw1"], audience={"learners": ["ann", "bob"]})
    assert r["changed"] == 1 and _skips(r) == {("bob", "hw1", "not_published")}
    assert (await _mine(tenant, "ann"))["results"] == []
    actions = [e["action"] for e in (await tenant.get("/v1/courses/c1/audit", params={"limit": 1000})).json()["items"]]
    for action in ("publication.publish", "result.published", "publication.retract", "result.retracted"):
        assert action in actions, action


async def test_scheduled_publication_runs_in_the_worker(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    at = datetime.now(UTC) + timedelta(hours=1)
    p = await _publish(tenant, assessments=["hw1"], audience={"all": True}, publish_at=at.isoformat())
    assert p["status"] == "scheduled" and p["changed"] == 0
    later = await _publish(
        tenant, assessments=["hw1"], audience={"all": True}, publish_at=(at + timedelta(days=1)).isoformat()
    )
    cancelled = await tenant.post(f"{PUBS}/{later['id']}:cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert_problem(await tenant.post(f"{PUBS}/{later['id']}:cancel"), 409)
    await run_worker(settings)
    assert (await _mine(tenant, "ann"))["results"] == []  # not yet
    clock.freeze(at + timedelta(seconds=1))  # the worker's clock, not a sleep: a loaded machine is slow, not late
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    done = (await tenant.get(f"{PUBS}/{p['id']}")).json()
    assert (done["status"], done["changed"]) == ("done", 3)
    assert [r["assessment"] for r in (await _mine(tenant, "ann"))["results"]] == ["hw1"]
    assert (await tenant.get(f"{PUBS}/{later['id']}")).json()["changed"] == 0


async def test_automatic_release_after_each_auto_scored_attempt(
    tenant: Tenant, settings: Settings, mailbox: Memory
) -> None:
    await _course(tenant)
    release = {"mode": "automatic", "after": "each_attempt", "notify_email": True}
    r = await tenant.patch("/v1/courses/c1/assessments/exam", json={"release": release})
    assert_problem(r, 422, "/release/mode")  # it has a manual item
    await assessment(tenant, "c1", "quiz", release=release)
    assert (await tenant.put("/v1/courses/c1/assessments/quiz/scores/ann", json={"earned": 7})).status_code == 200
    await run_worker(settings)
    assert [r["earned"] for r in (await _mine(tenant, "ann"))["results"] if r["assessment"] == "quiz"] == [7]
    assert (await _mine(tenant, "bob"))["results"] == []
    [message] = mailbox.to(email(tenant, "ann"))
    assert "QUIZ: 7 out of 10" in message.get_body(("plain",)).get_content()
    publications = (await tenant.get(PUBS)).json()["items"]
    assert [(p["trigger"], p["created_by"]) for p in publications] == [("automatic", "gradeflow:release")]
    await run_worker(settings)  # nothing new: no second publication, no second e-mail
    assert len((await tenant.get(PUBS)).json()["items"]) == 1 and len(mailbox.to(email(tenant, "ann"))) == 1
    shown = (await tenant.get("/v1/courses/c1/assessments/quiz")).json()["release"]
    assert ReleaseSettings.model_validate(shown).mode == "automatic"


async def test_automatic_release_after_the_last_attempt(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    await assessment(tenant, "c1", "final", release={"mode": "automatic", "after": "last_attempt"})
    assert (await tenant.put("/v1/courses/c1/assessments/final/scores/ann", json={"earned": 5})).status_code == 200
    r = await tenant.put("/v1/courses/c1/assessments/final/attempts/bob", json={"status": "in_progress"})
    assert r.status_code == 200
    await run_worker(settings)
    assert (await _mine(tenant, "ann"))["results"] == []  # bob is still sitting it
    assert (await tenant.put("/v1/courses/c1/assessments/final/scores/bob", json={"earned": 6})).status_code == 200
    await run_worker(settings)
    assert [r["earned"] for r in (await _mine(tenant, "ann"))["results"]] == [5]
    assert [r["earned"] for r in (await _mine(tenant, "bob"))["results"]] == [6]


async def test_results_email_once_per_learner(
    tenant: Tenant, settings: Settings, sessionmaker: Any, mailbox: Memory
) -> None:
    await _course(tenant)
    p = await _publish(tenant, assessments=["hw1"], audience={"all": True}, notify_email=True)
    assert p["emails"] == {"pending": 2, "sent": 0, "failed": 0}  # dan has no address; cid no result
    # The SMTP server is down: the e-mails wait and are retried with back-off.
    down = settings.model_copy(update={"smtp": SmtpSettings(host="127.0.0.1", port=9, timeout_seconds=2)})
    await run_worker(down)
    assert mailbox.to(tenant.slug) == []
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                text("SELECT status, tries, error FROM notifications WHERE publication_id = :p"), {"p": p["id"]}
            )
        ).all()
    assert {(r[0], r[1]) for r in rows} == {("queued", 1)} and all(r[2] for r in rows)
    # A worker died while sending bob's: that one is never sent again; ann's goes out once.
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE notifications n SET status = 'sending', claimed_at = now() FROM enrollments e"
                " WHERE e.id = n.enrollment_id AND e.external_id = 'bob' AND n.publication_id = :p"
            ),
            {"p": p["id"]},
        )
        await session.commit()
    clock.freeze(datetime.now(UTC) + timedelta(minutes=15))
    try:
        await run_worker(settings)
        await run_worker(settings)
    finally:
        clock.freeze(None)
    assert len(mailbox.to(email(tenant, "ann"))) == 1 and mailbox.to(email(tenant, "bob")) == []
    emails = (await tenant.get(f"{PUBS}/{p['id']}")).json()["emails"]
    assert emails == {"pending": 0, "sent": 1, "failed": 1}

    [message] = mailbox.to(email(tenant, "ann"))
    assert message["To"] == f"Ann Lee <{email(tenant, 'ann')}>" and message["Subject"] == "New results in Physics 101"
    plain = message.get_body(("plain",)).get_content()
    assert "Homework 1: 8 out of 10" in plain and "https://lms.example/courses/c1/me" in plain
    html = message.get_body(("html",)).get_content()
    assert "Homework 1" in html and 'href="https://lms.example/courses/c1/me"' in html
    assert "X-Amz" not in plain and "signature" not in plain.lower()  # a link to the LMS, never to a file


async def test_course_grade_waits_for_every_counted_result_to_be_final(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)  # ann's exam awaits confirmation; bob's is confirmed
    policy = {
        "categories": [{"name": "Homework", "weight": 0.5}, {"name": "Exam", "weight": 0.5}],
        "cutoffs": [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}],
    }
    assert (await tenant.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    await run_worker(settings)
    p = await _publish(tenant, course_grade=True, audience={"all": True})
    # ann's final grade would leave out her unconfirmed exam: she would see three different grades.
    assert _skips(p) == {("ann", None, "not_confirmed"), ("cid", None, "no_attempt")}
    assert "not final" in next(s["detail"] for s in p["skipped_detail"] if s["learner"] == "ann")
    assert (await _mine(tenant, "ann"))["course_grade"] is None
    assert (await _mine(tenant, "bob"))["course_grade"] is not None
    assert (await _mine(tenant, "dan"))["course_grade"] is not None  # no exam attempt: nothing awaited
    # An attempt still being taken is not final either.
    r = await tenant.put("/v1/courses/c1/assessments/exam/attempts/dan", json={"status": "in_progress"})
    assert r.status_code == 200, r.text
    p = await _publish(tenant, course_grade=True, audience={"learners": ["dan"]})
    assert _skips(p) == {("dan", None, "not_confirmed")}

    r = await tenant.post("/v1/courses/c1/assessments/exam/confirmations", json={"learners": ["ann"]})
    assert r.json()["confirmed"] == ["ann"], r.text
    p = await _publish(tenant, course_grade=True, audience={"learners": ["ann"]})
    assert p["changed"] == 1 and p["skipped"] == 0
    grade = (await _mine(tenant, "ann"))["course_grade"]
    assert grade["percent"] == (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()["final"]["percent"]


async def test_limited_publisher_cancels_only_within_their_assessments(tenant: Tenant) -> None:
    await _course(tenant)
    r = await tenant.put("/v1/courses/c1/members/lim", json={"roles": ["publisher"], "publish_assessments": ["exam"]})
    assert r.status_code == 200, r.text
    lim = await user_token(tenant, "lim")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    others = [
        await _publish(tenant, assessments=["hw1"], audience={"all": True}, publish_at=later),
        await _publish(tenant, assessments=["exam", "hw1"], audience={"all": True}, publish_at=later),
        await _publish(tenant, assessments=["exam"], course_grade=True, audience={"all": True}, publish_at=later),
    ]
    for p in others:
        assert_problem(await tenant.post(f"{PUBS}/{p['id']}:cancel", as_=lim), 403)
        assert (await tenant.get(f"{PUBS}/{p['id']}")).json()["status"] == "scheduled"
    own = await _publish(tenant, assessments=["exam"], audience={"all": True}, publish_at=later)
    r = await tenant.post(f"{PUBS}/{own['id']}:cancel", as_=lim)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert_problem(await tenant.post(f"{PUBS}/999999999:cancel", as_=lim), 404)
    entries = (await tenant.get("/v1/courses/c1/audit", params={"action": "publication.cancelled"})).json()["items"]
    assert [(e["actor"], e["new"]["publication"]) for e in entries] == [("lim", own["id"])]
