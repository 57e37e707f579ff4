"""The read side (gradebook, results table, progress, statistics) against a small course whose numbers
are worked out by hand.

Homework (40 %, lowest dropped): hw1, hw2 of 10 points; Exam (60 %): exam of 20 points (one auto item
of 10 and one manual item of 10). Final grades (unscored work counts 0, then the lowest homework is
dropped):
  ann  hw1 8, hw2 6, exam 18  -> Homework 8/10 (hw2 dropped), Exam 0.9 -> 0.32 + 0.54 = 86 %  A
  bob  hw1 5, exam 10         -> Homework 5/10 (hw2 dropped), Exam 0.5 -> 0.20 + 0.30 = 50 %  F
  eve  hw1 5, exam 10         -> the same as bob, 50 %: a tie for sorting
  cid  hw1 10                 -> Homework 1.0, Exam 0                   -> 40 %              F
  tom  hw1 9 (course team)
"""

from __future__ import annotations

import csv
import io
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from gradeflow.core.paging import encode_cursor
from gradeflow.core.settings import Settings
from gradeflow.readside.schemas.gradebook import GradebookPage
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, enroll, grant, populated_course, user_token

GB = "/v1/courses/c1/gradebook"


async def _course(t: Tenant, settings: Settings) -> None:
    await course(t)
    rows = [
        {
            "external_id": "ann",
            "username": "ann",
            "full_name": "Ann Ünal",
            "email": "ann@example.org",
            "track": "verified",
            "cohort": "A",
            "groups": ["g1"],
        },
        {
            "external_id": "bob",
            "username": "bob",
            "full_name": "Bob Stone",
            "email": "bob@example.org",
            "cohort": "B",
            "groups": ["g2"],
        },
        {"external_id": "eve", "username": "eve", "full_name": "Eve Stone", "cohort": "B", "status": "unenrolled"},
        {"external_id": "cid", "username": "=cmd()", "full_name": "Cid Ødegård", "cohort": "A"},
        {"external_id": "tom", "username": "tom", "full_name": "Tom Staff", "is_course_team": True},
    ]
    assert (await t.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "hw1", title="Intro")
    await assessment(t, "c1", "hw2", title="Vectors")
    await assessment(t, "c1", "exam", title="Final", category="Exam", points_possible=20)
    policy = {
        "categories": [{"name": "Homework", "weight": 0.4, "drop_lowest": 1}, {"name": "Exam", "weight": 0.6}],
        "cutoffs": [{"grade": "A", "min": 0.8}, {"grade": "B", "min": 0.6}, {"grade": "F", "min": 0}],
    }
    assert (await t.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    await run_worker(settings)
    scores = [
        ("ann", "hw1", 8),
        ("ann", "hw2", 6),
        ("ann", "exam", 18),
        ("bob", "hw1", 5),
        ("bob", "exam", 10),
        ("eve", "hw1", 5),
        ("eve", "exam", 10),
        ("cid", "hw1", 10),
        ("tom", "hw1", 9),
    ]
    body = {"scores": [{"assessment": a, "learner": lr, "earned": e} for lr, a, e in scores]}
    assert (await t.post("/v1/courses/c1/scores:batch", json=body)).status_code == 200


def _learners(body: dict[str, Any]) -> list[str]:
    return [r["learner"] for r in body["items"]]


async def _all_pages(t: Tenant, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        r = await t.get(GB, params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        seen += _learners(r.json())
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen


async def test_gradebook_rows_cells_and_views(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    r = await tenant.get(GB)
    assert r.status_code == 200, r.text
    body = r.json()
    assert GradebookPage.model_validate(body).model_dump(mode="json") == body  # exactly the documented shape
    assert [c["assessment"] for c in body["columns"]] == ["hw1", "hw2", "exam"]
    assert _learners(body) == ["ann", "bob", "cid", "eve"]  # by name; the course team is left out
    ann = body["items"][0]
    assert ann["final"] == {"percent": 86.0, "grade": "A", "passed": True}
    cells = {c["assessment"]: c for c in ann["assessments"]}
    assert cells["hw1"]["display"] == "80%" and cells["hw1"]["score"] == 80.0 and not cells["hw1"]["dropped"]
    assert cells["hw2"]["dropped"] and cells["exam"]["display"] == "90%"
    homework = next(c for c in ann["categories"] if c["name"] == "Homework")
    assert homework["dropped"] == ["hw2"]
    bob = body["items"][1]
    assert bob["final"]["percent"] == 50.0 and bob["final"]["grade"] == "F"
    assert {c["assessment"]: c["status"] for c in bob["assessments"]}["hw2"] == "not_attempted"

    absolute = (await tenant.get(GB, params={"view": "absolute"})).json()["items"][0]
    cells = {c["assessment"]: c for c in absolute["assessments"]}
    assert cells["exam"]["display"] == "18 out of 20" and cells["exam"]["score"] == 18.0
    assert cells["exam"]["possible"] == 20.0

    only_exam = (await tenant.get(GB, params={"category": "Exam"})).json()
    assert [c["assessment"] for c in only_exam["columns"]] == ["exam"]
    assert [c["name"] for c in only_exam["items"][0]["categories"]] == ["Exam"]

    team = (await tenant.get(GB, params={"include_course_team": "true"})).json()
    assert _learners(team) == ["ann", "bob", "cid", "eve", "tom"]


async def test_gradebook_filters_and_their_combinations(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"cohort": "A"}, ["ann", "cid"]),
        ({"track": "verified"}, ["ann"]),
        ({"group": "g2"}, ["bob"]),
        ({"status": "unenrolled"}, ["eve"]),
        ({"assessment": "exam", "score_min": 80}, ["ann"]),
        ({"assessment": "exam", "score_max": 60}, ["bob", "eve"]),
        ({"assessment": "hw1", "score_min": 50, "score_max": 80}, ["ann", "bob", "eve"]),
        ({"grade_min": 60}, ["ann"]),
        ({"grade_min": 40, "grade_max": 55}, ["bob", "cid", "eve"]),
        ({"cohort": "B", "grade_max": 55, "status": "enrolled"}, ["bob"]),
        ({"cohort": "A", "assessment": "hw1", "score_min": 90}, ["cid"]),
        ({"search": "ÜNAL"}, ["ann"]),  # case-insensitive, beyond ASCII
        ({"search": "ødegård"}, ["cid"]),
        ({"search": "stone"}, ["bob", "eve"]),
        ({"search": "EXAMPLE.ORG"}, ["ann", "bob"]),
        ({"search": "100%"}, []),  # taken literally, not as a pattern
        ({"search": "stone", "cohort": "B", "grade_min": 50}, ["bob", "eve"]),
    ]
    for params, expected in cases:
        r = await tenant.get(GB, params=params)
        assert r.status_code == 200, (params, r.text)
        assert _learners(r.json()) == expected, params
    assert_problem(await tenant.get(GB, params={"assessment": "nope", "score_min": 1}), 404)
    assert_problem(await tenant.get(GB, params={"grade_min": 101}), 422)
    assert_problem(await tenant.get(GB, params={"sort": "assessment:nope"}), 422)


async def test_gradebook_sorting_is_stable_across_pages(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    assert await _all_pages(tenant) == ["ann", "bob", "cid", "eve"]
    assert await _all_pages(tenant, sort="-name") == ["eve", "cid", "bob", "ann"]
    # bob and eve tie at 50 %: the enrollment order settles it (reversed with the sort), on every page
    assert await _all_pages(tenant, sort="-grade") == ["ann", "eve", "bob", "cid"]
    assert await _all_pages(tenant, sort="grade") == ["cid", "bob", "eve", "ann"]
    assert await _all_pages(tenant, sort="assessment:hw1") == ["bob", "eve", "ann", "cid"]
    assert await _all_pages(tenant, sort="-assessment:exam", cohort="B") == ["eve", "bob"]
    # a learner without a score sorts after every score
    assert (await tenant.get(GB, params={"sort": "-assessment:exam"})).json()["items"][-1]["learner"] == "cid"
    assert_problem(await tenant.get(GB, params={"cursor": "bm90IGEgY3Vyc29y"}), 422)
    by_name = (await tenant.get(GB, params={"limit": 1})).json()["next_cursor"]
    assert_problem(await tenant.get(GB, params={"sort": "grade", "cursor": by_name}), 422, "cursor")  # another sort's
    for forged in (["1", 2**70], ["inf", 1], [1, 1]):
        assert_problem(await tenant.get(GB, params={"sort": "grade", "cursor": encode_cursor(forged)}), 422, "cursor")
    assert_problem(await tenant.get(RESULTS, params={"cursor": encode_cursor([2**64, 1])}), 422, "cursor")


async def test_gradebook_csv_streams_the_same_view(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    r = await tenant.get("/v1/courses/c1/gradebook.csv", params={"view": "absolute", "sort": "-grade"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    header, data = rows[0], rows[1:]
    assert header[:4] == ["Student ID", "Username", "Email", "Name"]
    assert header[7:10] == ["Intro (hw1)", "Vectors (hw2)", "Final (exam)"]
    assert [d[0] for d in data] == ["ann", "eve", "bob", "cid"]
    ann = dict(zip(header, data[0], strict=True))
    assert ann["Final (exam)"] == "18 out of 20" and ann["Final Grade"] == "86.0" and ann["Letter"] == "A"
    assert dict(zip(header, data[3], strict=True))["Username"] == "'=cmd()"  # never a formula


async def test_gradebook_access(tenant: Tenant, other_tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    assert_problem(await other_tenant.get(GB), 404)
    learner = await user_token(tenant, "ann")
    assert_problem(await tenant.get(GB, as_=learner), 404)
    await grant(tenant, "c1", "viewer1", "viewer")
    assert (await tenant.get(GB, as_=await user_token(tenant, "viewer1"))).status_code == 200


# --- the results table ----------------------------------------------------------------------------

RESULTS = "/v1/courses/c1/results"


async def test_results_table_rows_counts_and_filters(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    items = [
        {"external_id": "q1", "points_possible": 5},
        {"external_id": "q2", "points_possible": 5, "marking": "manual"},
    ]
    await assessment(tenant, "c1", "quiz", title="Quiz", category="Exam", items=items)
    for learner in ("ann", "bob"):
        r = await tenant.put(
            f"/v1/courses/c1/assessments/quiz/scores/{learner}", json={"items": [{"item": "q1", "earned": 4}]}
        )
        assert r.status_code == 200, r.text
    r = await tenant.post("/v1/courses/c1/assessments/quiz/allocations", json={"graders": ["g1"], "mode": "even"})
    assert r.status_code in (200, 201), r.text

    body = (await tenant.get(RESULTS)).json()
    assert body["counts"]["graded"] == 9 and body["counts"]["pending_grading"] == 2
    assert body["counts"]["to_be_taken"] == 0
    pending = [r for r in body["items"] if r["status"] == "pending_grading"]
    assert {r["learner"] for r in pending} == {"ann", "bob"}
    assert all(r["result"] == "No result yet" and r["percent"] is None and r["grader"] == "g1" for r in pending)
    exam = next(r for r in body["items"] if r["learner"] == "ann" and r["assessment"] == "exam")
    assert exam["result"] == 18 and exam["percent"] == 90.0 and exam["publication"] == "unpublished"
    # learner order, then assessment; pages follow on without gaps
    seen, cursor = [], None
    while True:
        page = (await tenant.get(RESULTS, params={"limit": 4, **({"cursor": cursor} if cursor else {})})).json()
        seen += [(r["learner"], r["assessment"]) for r in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [(r["learner"], r["assessment"]) for r in body["items"]] and len(seen) == 11

    def learners_of(params: dict[str, Any]) -> Any:
        return tenant.get(RESULTS, params=params)

    only = (await learners_of({"status": "pending_grading"})).json()
    assert {r["learner"] for r in only["items"]} == {"ann", "bob"}
    assert only["counts"]["graded"] == 9  # the tabs keep their counts under a status filter
    assert {r["learner"] for r in (await learners_of({"assessment": "exam"})).json()["items"]} == {"ann", "bob", "eve"}
    both = (await learners_of({"cohort": "B", "assessment": "hw1"})).json()["items"]
    assert [r["learner"] for r in both] == ["bob", "eve"]
    assert {r["learner"] for r in (await learners_of({"search": "ünal"})).json()["items"]} == {"ann"}
    assert (await learners_of({"group": "g1", "status": ["graded", "pending_grading"]})).json()["counts"] == {
        "to_be_taken": 0,
        "in_progress": 0,
        "submitted": 0,
        "pending_grading": 1,
        "graded": 3,
        "cancelled": 0,
    }
    assert (await learners_of({"since": "2999-01-01T00:00:00Z"})).json()["items"] == []
    assert_problem(await learners_of({"assessment": "nope"}), 404)
    assert_problem(await learners_of({"status": "done"}), 422)

    # a grader sees only the attempts allocated to them
    await grant(tenant, "c1", "g1", "grader")
    mine = (await tenant.get(RESULTS, as_=await user_token(tenant, "g1"))).json()
    assert {(r["learner"], r["assessment"]) for r in mine["items"]} == {("ann", "quiz"), ("bob", "quiz")}


# --- learner progress -----------------------------------------------------------------------------


async def test_progress_matches_the_engine_and_says_what_is_still_needed(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    r = await tenant.get("/v1/courses/c1/learners/ann/progress")
    assert r.status_code == 200, r.text
    ann = r.json()
    grade = (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()
    assert ann["final"]["percent"] == grade["final"]["percent"] == 86.0 and ann["final"]["grade"] == "A"
    explained = {c["name"]: c for c in grade["explanation"]["final"]}
    for category in ann["categories"]:
        assert category["final_percent"] == explained[category["name"]]["percent"]
        assert category["dropped"] == explained[category["name"]]["dropped"]
    assert {a["assessment"]: a["dropped"] for a in ann["assessments"]} == {"hw1": False, "hw2": True, "exam": False}
    assert ann["pass_mark"] == 0.6 and all(c["reached"] for c in ann["cutoffs"])

    # cid: hw1 10 of 10, the rest not graded. The lowest homework is dropped, so only the exam matters:
    # 40 % + 60 % x share >= 80 % (A) needs 2/3 of the remaining points, >= 60 % (B) needs 1/3.
    cid = (await tenant.get("/v1/courses/c1/learners/cid/progress")).json()
    assert cid["final"]["percent"] == 40.0
    needed = {c["grade"]: c for c in cid["cutoffs"]}
    assert needed["A"]["needed_share_of_remaining"] == 0.667 and needed["A"]["reachable"]
    assert needed["B"]["needed_share_of_remaining"] == 0.334
    assert needed["F"]["reached"] and needed["F"]["needed_share_of_remaining"] is None


async def test_learners_see_only_their_own_published_progress(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    token = await user_token(tenant, "ann")
    mine = (await tenant.get("/v1/courses/c1/learners/ann/progress", as_=token)).json()
    assert mine["published_only"] and not any(a["graded"] for a in mine["assessments"])
    r = await tenant.post(
        "/v1/courses/c1/publications", json={"assessments": ["hw1"], "audience": {"learners": ["ann"]}}
    )
    assert r.status_code in (200, 201, 202), r.text
    await run_worker(settings)
    mine = (await tenant.get("/v1/courses/c1/learners/ann/progress", as_=token)).json()
    assert [a["assessment"] for a in mine["assessments"] if a["graded"]] == ["hw1"]
    # hw1 (80 %) alone: hw2 counts 0 and is dropped, the exam counts 0: 0.4 x 0.8 = 32 %
    assert mine["final"]["percent"] == 32.0
    assert_problem(await tenant.get("/v1/courses/c1/learners/bob/progress", as_=token), 404)
    assert_problem(await tenant.get("/v1/courses/c1/learners/bob/progress.svg", as_=token), 404)


async def test_progress_and_histogram_charts_are_valid_svg_and_png(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    svg = await tenant.get("/v1/courses/c1/learners/ann/progress.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    root = ElementTree.fromstring(svg.content)
    assert root.tag.endswith("svg")
    text = " ".join(t for t in root.itertext())
    assert "Homework avg" in text and "Total" in text and "dropped" in text
    png = await tenant.get("/v1/courses/c1/learners/ann/progress.png")
    assert png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    image.verify()
    assert image.format == "PNG" and image.size[0] > 300
    for fmt in ("svg", "png"):
        r = await tenant.get(f"/v1/courses/c1/statistics/histogram.{fmt}", params={"assessment": "hw1", "bins": 5})
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/")
    ElementTree.fromstring((await tenant.get("/v1/courses/c1/statistics/histogram.svg")).content)
    assert_problem(await tenant.get("/v1/courses/c1/learners/ann/progress.gif"), 422)


async def test_chart_text_is_never_parsed_as_math(tenant: Tenant, settings: Settings) -> None:
    """Titles and names are drawn as the characters they are: `$\\sqrt{$` used to be a mathtext parse
    error (500) in every chart that showed it."""
    title, category = "$\\sqrt{$", "Lab $x^{"
    await course(tenant)
    await enroll(tenant, "c1", "ann")
    await assessment(tenant, "c1", "hw1", title=title, category=category)
    policy = {"categories": [{"name": category, "weight": 1}], "cutoffs": [{"grade": "$P$", "min": 0.5}]}
    assert (await tenant.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    assert (await tenant.put("/v1/courses/c1/assessments/hw1/scores/ann", json={"earned": 7})).status_code == 200
    await run_worker(settings)
    urls = ["/v1/courses/c1/learners/ann/progress", "/v1/courses/c1/statistics/histogram"]
    for url in urls:
        for fmt in ("svg", "png"):
            r = await tenant.get(f"{url}.{fmt}", params={"assessment": "hw1"} if "histogram" in url else None)
            assert r.status_code == 200, (url, fmt, r.text)
            if fmt == "png":
                Image.open(io.BytesIO(r.content)).verify()
                continue
            text = "".join(ElementTree.fromstring(r.content).itertext())
            assert title in text
            if "progress" in url:
                assert f"{category} avg" in text and "$P$" in text


# --- statistics -----------------------------------------------------------------------------------


def _reference(values: list[float]) -> dict[str, float]:
    v = np.array(values)
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return {
        "mean": v.mean(),
        "median": median,
        "std": v.std(ddof=1),
        "min": v.min(),
        "max": v.max(),
        "q1": q1,
        "q3": q3,
    }


async def test_course_and_assessment_statistics_match_numpy(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    stats = (await tenant.get("/v1/courses/c1/statistics", params={"bins": 5})).json()
    # enrolled learners outside the course team: ann 86, bob 50, cid 40 (eve has left)
    assert stats["count"] == 3
    for key, value in _reference([86, 50, 40]).items():
        assert stats[key] == pytest.approx(value), key
    assert stats["pass_rate"] == pytest.approx(1 / 3)
    assert stats["letters"] == {"A": 1, "B": 0, "F": 2}
    assert stats["histogram"] == {"edges": [0, 20, 40, 60, 80, 100], "counts": [0, 0, 2, 0, 1]}
    hw1 = next(a for a in stats["assessments"] if a["assessment"] == "hw1")
    assert hw1["count"] == 4 and hw1["mean"] == pytest.approx((80 + 50 + 50 + 100) / 4)  # tom is course team
    cohort = (await tenant.get("/v1/courses/c1/statistics", params={"cohort": "A"})).json()
    assert cohort["count"] == 2 and cohort["mean"] == pytest.approx(63)

    items = [{"external_id": f"q{k}", "number": str(k), "points_possible": 5} for k in (1, 2, 3)]
    await assessment(tenant, "c1", "test", title="Test", category="Exam", items=items)
    marks = {"ann": (5, 4, 3), "bob": (2, 1, 3), "cid": (4, 4, 1), "eve": (1, 0, 2), "tom": (0, 0, 0)}
    for learner, points in marks.items():
        body = {"items": [{"item": f"q{k + 1}", "earned": p} for k, p in enumerate(points)]}
        assert (await tenant.put(f"/v1/courses/c1/assessments/test/scores/{learner}", json=body)).status_code == 200
    test = (await tenant.get("/v1/courses/c1/statistics", params={"assessment": "test"})).json()
    scores = np.array([marks[lr] for lr in ("ann", "bob", "cid", "eve")], dtype=float)
    totals = scores.sum(axis=1) / 15 * 100
    assert test["count"] == 4
    for key, value in _reference(list(totals)).items():
        assert test[key] == pytest.approx(value), key
    assert test["pass_rate"] == pytest.approx(np.mean(totals >= 60))
    for k, item in enumerate(test["items"]):
        rest = scores.sum(axis=1) - scores[:, k]
        assert item["facility"] == pytest.approx(scores[:, k].mean() / 5)
        assert item["discrimination"] == pytest.approx(np.corrcoef(scores[:, k], rest)[0, 1])
    assert_problem(await tenant.get("/v1/courses/c1/statistics", params={"assessment": "nope"}), 404)
    assert_problem(await tenant.get("/v1/courses/c1/statistics", params={"bins": 0}), 422)


async def test_results_period_at_the_calendar_limits_is_422_not_500(tenant: Tenant) -> None:
    ids = await populated_course(tenant)
    for name, value in (("since", "9999-12-31T23:00:00-05:00"), ("until", "0001-01-01T00:00:00+01:00")):
        r = await tenant.get(f"/v1/courses/{ids['course']}/results", params={name: value})
        assert_problem(r, 422)
        assert r.json()["errors"][0]["parameter"] == name
