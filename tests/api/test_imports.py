"""CSV imports: dry run diff, all-or-nothing apply, revert as a whole."""

from __future__ import annotations

from typing import Any

from gradeflow.core.settings import Settings
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, enroll


async def _setup(t: Tenant) -> None:
    await course(t)
    await assessment(t, "c1", "hw1", points_possible=10)
    await assessment(
        t,
        "c1",
        "exam",
        category="Exam",
        items=[{"external_id": "q1", "points_possible": 5}, {"external_id": "q2", "points_possible": 5}],
    )
    await enroll(t, "c1", "ann", "bob", "cid")
    await t.put("/v1/courses/c1/assessments/hw1/scores/ann", json={"earned": 4, "source": "manual"})
    await t.put("/v1/courses/c1/assessments/hw1/scores/bob", json={"earned": 6})


async def _run(t: Tenant, settings: Settings, csv_text: str, **form: Any) -> dict[str, Any]:
    r = await t.post(
        "/v1/courses/c1/imports",
        files={"file": ("scores.csv", csv_text.encode(), "text/csv")},
        data={k: str(v).lower() if isinstance(v, bool) else v for k, v in form.items()},
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued" and r.headers["location"].endswith(f"/imports/{r.json()['id']}")
    await run_worker(settings)
    return dict((await t.get(f"/v1/courses/c1/imports/{r.json()['id']}")).json())


GOOD = """Student ID,Test,Question,Points
ann,hw1,,4
bob,hw1,,9
cid,hw1,,7.5
ann,exam,q1,5
"""
MAPPING = '{"learner": "Student ID", "assessment": "Test", "item": "Question", "earned": "Points"}'


async def test_dry_run_shows_the_diff_and_writes_nothing(tenant: Tenant, settings: Settings) -> None:
    await _setup(tenant)
    done = await _run(tenant, settings, GOOD, dry_run=True, mapping=MAPPING)
    assert done["status"] == "succeeded"
    result = done["result"]
    assert (result["create"], result["change"], result["unchanged"], result["error_count"]) == (2, 1, 1, 0)
    bob = next(c for c in result["changes"] if c["learner"] == "bob")
    assert (bob["line"], bob["effect"], bob["old"]["earned"], bob["new"]["earned"]) == (3, "change", 6, 9)
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/bob")).json()["earned"] == 6


async def test_rows_in_error_are_reported_by_line_and_nothing_applies(tenant: Tenant, settings: Settings) -> None:
    await _setup(tenant)
    bad = GOOD + "zed,hw1,,1\nann,hw1,,4\ncid,hw1,,ten\ncid,nope,,1\nbob,exam,q1,9\n"
    done = await _run(tenant, settings, bad, mapping=MAPPING)
    assert done["status"] == "failed"
    errors = {(e["line"], e["field"]) for e in done["result"]["errors"]}
    assert errors == {(6, "learner"), (7, "learner"), (8, "earned"), (9, "assessment"), (10, "earned")}
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/bob")).json()["earned"] == 6


async def test_apply_then_revert_as_a_whole(tenant: Tenant, settings: Settings) -> None:
    await _setup(tenant)
    done = await _run(tenant, settings, GOOD, mapping=MAPPING)
    assert done["status"] == "succeeded" and done["result"]["change"] == 1
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/bob")).json()["earned"] == 9
    exam = (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()
    assert (exam["earned"], exam["status"]) == (5, "pending_grading")
    entries = (await tenant.get("/v1/courses/c1/audit", params={"action": "score.set"})).json()["items"]
    assert {e["import_id"] for e in entries[-2:]} == {done["id"]}
    # cid's score is changed by hand after the import: the revert leaves it alone.
    await tenant.put("/v1/courses/c1/assessments/hw1/scores/cid", json={"earned": 8})
    r = await tenant.post(f"/v1/courses/c1/imports/{done['id']}:revert")
    assert r.status_code == 200, r.text
    assert r.json()["reverted"] == 2 and r.json()["kept"] == [{"learner": "cid", "assessment": "hw1", "item": None}]
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/bob")).json()["earned"] == 6
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/cid")).json()["earned"] == 8
    exam = (await tenant.get("/v1/courses/c1/assessments/exam/scores/ann")).json()
    assert exam["items"][0]["earned"] is None and exam["earned"] == 0
    assert_problem(await tenant.post(f"/v1/courses/c1/imports/{done['id']}:revert"), 409)


async def test_a_request_id_chosen_by_a_client_does_not_join_an_import(tenant: Tenant, settings: Settings) -> None:
    await _setup(tenant)
    done = await _run(tenant, settings, GOOD, mapping=MAPPING)
    # A manual change sent with the request id the import's entries used to carry.
    r = await tenant.put(
        "/v1/courses/c1/assessments/hw1/scores/ann",
        json={"earned": 1},
        headers={"X-Request-ID": f"import-{done['id']}"},
    )
    assert r.status_code == 200, r.text
    r = await tenant.post(f"/v1/courses/c1/imports/{done['id']}:revert")
    assert r.status_code == 200 and r.json()["reverted"] == 3, r.text  # bob, cid and ann's exam item
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/ann")).json()["earned"] == 1
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/bob")).json()["earned"] == 6


async def test_bad_files_are_refused_up_front(tenant: Tenant) -> None:
    await _setup(tenant)
    # A quote never closed would swallow every later line: refused, naming the line it opens on.
    unterminated = b'learner,assessment,earned\nann,hw1,4\nbob,hw1,"9\ncid,hw1,7\n'
    r = await tenant.post("/v1/courses/c1/imports", files={"file": ("x.csv", unterminated, "text/csv")})
    assert "Line 3 " in assert_problem(r, 422, "file")["errors"][0]["detail"]
    r = await tenant.post("/v1/courses/c1/imports", files={"file": ("x.csv", b"who,what\nann,1\n", "text/csv")})
    assert_problem(r, 422, "file")
    r = await tenant.post(
        "/v1/courses/c1/imports", files={"file": ("x.csv", GOOD.encode(), "text/csv")}, data={"mapping": "{nope"}
    )
    assert_problem(r, 422, "mapping")


async def test_ten_thousand_rows(tenant: Tenant, settings: Settings) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1", points_possible=100)
    rows = [{"external_id": f"u{i}"} for i in range(10_000)]
    assert (await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    content = "learner,assessment,earned\n" + "".join(f"u{i},hw1,{i % 101}\n" for i in range(10_000))
    done = await _run(tenant, settings, content)
    assert done["status"] == "succeeded" and done["result"]["create"] == 10_000
    assert (await tenant.get("/v1/courses/c1/assessments/hw1/scores/u9999")).json()["earned"] == 9999 % 101
