"""Progression reports: a final test names its initial test (`initial_assessment`), and the group
progression PDF and the ZIP of individual progression PDFs compare the two, built by the worker from a
hand-built course and read back (pdftotext, ZIP entries)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest

from gradeflow.core.settings import Settings
from gradeflow.reports.service import reports as report_service
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course
from tests.worker.test_pdf_documents import lines

C = "/v1/courses/c1"
REPORTS = f"{C}/reports"


def _items(*specs: tuple[str, str, float, list[tuple[str, float]]]) -> list[dict[str, Any]]:
    return [
        {
            "external_id": ext,
            "title": title,
            "points_possible": points,
            "skills": [{"skill": s, "weight": w} for s, w in skills],
        }
        for ext, title, points, skills in specs
    ]


async def _scores(t: Tenant, test: str, **by_learner: dict[str, float]) -> None:
    rows = [
        {"assessment": test, "learner": learner, "item": item, "earned": earned}
        for learner, items in by_learner.items()
        for item, earned in items.items()
    ]
    r = await t.post(f"{C}/scores:batch", json={"scores": rows})
    assert r.status_code == 200, r.text


async def _course(t: Tenant, settings: Settings) -> None:
    """Group g1: ann, bob and cid took the initial test `pre` and the final test `post` (they share
    question q1 "Fractions"); dan took only `pre`; tom (course team) took both; fay (group g2) too.
    `post2` (also after `pre`) shares no question with it, only skills. ann's and bob's results are
    published (ann's with their questions, bob's `post` as a total only); cid's `post` is not; ann's
    `post` is then re-scored and not published again."""
    await course(t, title="Algebra I")
    people = {"ann": "Ann Ünal", "bob": "Bob Berg", "cid": "Cid Ødegård", "dan": "Dan", "tom": "Tom", "fay": "Fay"}
    rows = [
        {"external_id": x, "username": x, "full_name": name, "groups": ["g2" if x == "fay" else "g1"]}
        | {"is_course_team": x == "tom"}
        for x, name in people.items()
    ]
    assert (await t.post(f"{C}/enrollments:batch", json={"enrollments": rows})).status_code == 200
    pre = _items(("q1", "Fractions", 10, [("algebra", 1)]), ("q2", "Angles", 10, [("geometry", 1)]))
    await assessment(t, "c1", "pre", title="Diagnostic test", items=pre)
    post = _items(("q1", "Fractions", 10, [("algebra", 1)]), ("q3", "Areas", 10, [("geometry", 1)]))
    body = await assessment(t, "c1", "post", title="Final test", items=post, initial_assessment="pre")
    assert body["initial_assessment"] == "pre"
    post2 = _items(("r1", "Equations", 5, [("algebra", 2)]), ("r2", "Triangles", 5, [("geometry", 1)]))
    await assessment(t, "c1", "post2", title="Retake", items=post2, initial_assessment="pre")
    await _scores(
        t,
        "pre",
        ann={"q1": 4, "q2": 6},  # 50 %
        bob={"q1": 10, "q2": 6},  # 80 %
        cid={"q1": 5, "q2": 5},  # 50 %
        dan={"q1": 3, "q2": 3},
        tom={"q1": 10, "q2": 10},
        fay={"q1": 1, "q2": 1},
    )
    # cid sat the final test in 2020: outside a period starting in 2021.
    r = await t.put(
        f"{C}/assessments/post/attempts/cid", json={"status": "submitted", "submitted_at": "2020-06-01T10:00:00Z"}
    )
    assert r.status_code == 200, r.text
    await _scores(
        t,
        "post",
        ann={"q1": 8, "q3": 9},  # 85 %
        bob={"q1": 7, "q3": 8},  # 75 %
        cid={"q1": 5, "q3": 5},  # 50 %
        tom={"q1": 10, "q3": 10},
        fay={"q1": 2, "q3": 2},
    )
    await _scores(t, "post2", ann={"r1": 5, "r2": 0}, bob={"r1": 2, "r2": 5})
    await run_worker(settings)
    for what in (
        {"assessments": ["pre"], "show": "with_items", "audience": {"learners": ["ann", "bob", "cid"]}},
        {"assessments": ["post"], "show": "with_items", "audience": {"learners": ["ann"]}},
        {"assessments": ["post"], "audience": {"learners": ["bob"]}},
    ):
        r = await t.post(f"{C}/publications", json=what)
        assert r.status_code == 201, r.text
    await run_worker(settings)
    await _scores(t, "post", ann={"q1": 10})  # ann now has 95 %; she was shown 85 %


async def _report(t: Tenant, settings: Settings, kind: str, **params: Any) -> tuple[dict[str, Any], bytes]:
    r = await t.post(REPORTS, json={"kind": kind, "params": params})
    assert r.status_code == 202, r.text
    await run_worker(settings)
    body = (await t.get(r.headers["location"])).json()
    assert body["status"] == "succeeded", body
    async with httpx.AsyncClient() as http:
        file = await http.get(body["download_url"])
    assert file.status_code == 200, file.text
    return body, file.content


async def test_a_final_test_names_its_initial_test(tenant: Tenant) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "pre")
    await assessment(tenant, "c1", "mid", initial_assessment="pre")
    problem = assert_problem(
        await tenant.post(
            f"{C}/assessments",
            json={
                "external_id": "x",
                "title": "X",
                "category": "Quiz",
                "points_possible": 5,
                "initial_assessment": "no",
            },
        ),
        422,
        "/initial_assessment",
    )
    assert problem["errors"][0]["detail"] == "The course has no assessment 'no'."
    r = await tenant.post(
        f"{C}/assessments",
        json={"external_id": "y", "title": "Y", "category": "Quiz", "points_possible": 5, "initial_assessment": "y"},
    )
    assert_problem(r, 422, "/initial_assessment")
    await assessment(tenant, "c1", "post")
    r = await tenant.patch(f"{C}/assessments/post", json={"initial_assessment": "mid"})
    assert r.status_code == 200 and r.json()["initial_assessment"] == "mid", r.text
    # Refused: itself, and closing a loop (pre after post, which comes after mid, after pre).
    problem = assert_problem(
        await tenant.patch(f"{C}/assessments/post", json={"initial_assessment": "post"}), 422, "/initial_assessment"
    )
    assert "its own initial assessment" in problem["errors"][0]["detail"]
    problem = assert_problem(
        await tenant.patch(f"{C}/assessments/pre", json={"initial_assessment": "post"}), 422, "/initial_assessment"
    )
    assert "loop" in problem["errors"][0]["detail"]
    # Read back one by one and in the list; a change of something else keeps the link.
    r = await tenant.patch(f"{C}/assessments/post", json={"title": "Final"})
    assert r.json()["initial_assessment"] == "mid"
    listed = {a["external_id"]: a["initial_assessment"] for a in (await tenant.get(f"{C}/assessments")).json()["items"]}
    assert listed == {"pre": None, "mid": "pre", "post": "mid"}
    # null unlinks; each change is in the assessment's audit entry.
    r = await tenant.patch(f"{C}/assessments/post", json={"initial_assessment": None})
    assert r.status_code == 200 and r.json()["initial_assessment"] is None
    entries = (await tenant.get(f"{C}/audit", params={"action": "assessment.updated"})).json()["items"]
    links = [(e["old"], e["new"]) for e in entries if "initial_assessment" in (e["new"] or {})]
    assert sorted(links, key=str) == sorted(
        [
            ({"initial_assessment": None}, {"initial_assessment": "mid"}),
            ({"initial_assessment": "mid"}, {"initial_assessment": None}),
        ],
        key=str,
    )
    # A progression report needs the link, at request time.
    for kind in ("group_progression_pdf", "individual_progression_zip"):
        problem = assert_problem(
            await tenant.post(REPORTS, json={"kind": kind, "params": {"assessment": "post"}}), 422, "/params/assessment"
        )
        assert problem["errors"][0]["detail"] == "The assessment 'post' has no initial assessment."
    assert_problem(
        await tenant.post(REPORTS, json={"kind": "group_progression_pdf", "params": {"assessment": "zzz"}}),
        422,
        "/params/assessment",
    )
    assert (await tenant.get(REPORTS)).json()["items"] == []


async def test_a_link_removed_after_the_request_fails_the_report_in_words(tenant: Tenant, settings: Settings) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "pre")
    await assessment(tenant, "c1", "post", initial_assessment="pre")
    r = await tenant.post(REPORTS, json={"kind": "group_progression_pdf", "params": {"assessment": "post"}})
    assert r.status_code == 202, r.text
    assert (await tenant.patch(f"{C}/assessments/post", json={"initial_assessment": None})).status_code == 200
    await run_worker(settings)
    failed = (await tenant.get(r.headers["location"])).json()
    assert failed["status"] == "failed"
    assert failed["error"] == (
        "The assessment 'post' has no initial assessment. It was unlinked after the report was requested."
    )


async def test_group_progression_pdf(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    body, content = await _report(tenant, settings, "group_progression_pdf", assessment="post", group="g1")
    assert content.startswith(b"%PDF") and body["file_name"].endswith(".pdf") and body["rows"] == 3
    shown = lines(content)
    assert shown[:5] == [
        "Group progression: Final test",
        "Course Algebra I",
        "Initial test Diagnostic test",
        "Final test Final test",
        "Learners Group g1",
    ]
    # ann, bob, cid compared (the current results: ann's 95 %); dan took one test; tom is the course team.
    assert "3 1 1 1 1" in shown  # compared, not compared, improved, unchanged, declined
    assert "Mean 60% 73.33% +13.33%" in shown and "Median 50% 75% +25%" in shown
    at = shown.index("Learner Name Before After Change")
    assert shown[at + 1 : at + 4] == [
        "ann Ann Ünal 50% 95% +45%",
        "bob Bob Berg 80% 75% -5%",
        "cid Cid Ødegård 50% 50% 0%",
    ]
    assert shown[shown.index("Change per question") + 1].startswith("Compared per question (1 in both tests)")
    at = shown.index("Question Learners Before After Change")
    assert shown[at + 1] == "Fractions 3 63.33% 73.33% +10%"
    assert not any(x.startswith(("tom ", "dan ", "fay ")) for x in shown)


async def test_group_progression_period_and_skills(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    # From 2021: cid's final test (2020) is outside the period, so cid is not compared.
    _, content = await _report(
        tenant, settings, "group_progression_pdf", assessment="post", group="g1", since="2021-01-01T00:00:00Z"
    )
    shown = lines(content)
    assert "2 2 1 0 1" in shown and "Period from January 1, 2021" in shown
    assert not any(x.startswith("cid ") for x in shown)
    # post2 shares no question with pre: compared per skill (weighted: r1 counts twice for algebra).
    _, content = await _report(tenant, settings, "group_progression_pdf", assessment="post2", language="fr")
    shown = lines(content)
    at = shown.index("Évolution par compétence")
    assert shown[at + 1].startswith("Les deux tests n'ont aucune question en commun")
    at = shown.index("Compétence Apprenants Avant Après Évolution")
    # French puts a no-break space before %; pdftotext keeps it in some cells and not in others.
    rows = [x.replace(" %", "%") for x in shown[at + 1 : at + 3]]
    assert rows == ["algebra 2 70% 70% 0%", "geometry 2 60% 50% -10%"]


async def test_individual_progression_zip_shows_what_each_learner_was_shown(
    tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant, settings)
    shown: list[tuple[int, str]] = []
    record = report_service.progress

    async def progress(sessionmaker: Any, report_id: int, try_: int, percent: int, message: str) -> None:
        await record(sessionmaker, report_id, try_, percent, message)
        shown.append((percent, message))

    monkeypatch.setattr(report_service, "progress", progress)
    body, content = await _report(tenant, settings, "individual_progression_zip", assessment="post", group="g1")
    archive = zipfile.ZipFile(io.BytesIO(content))
    # Only ann and bob have both results published; cid's final test is not, dan has one test.
    assert sorted(archive.namelist()) == ["ann.pdf", "bob.pdf"] and body["rows"] == 2
    ann = lines(archive.read("ann.pdf"))
    assert ann[0] == "Progression: Ann Ünal"
    # The published 85 %, not the 95 % she has since: she was not shown it.
    assert "Initial test Diagnostic test 10 20 50%" in ann and "Final test Final test 17 20 85%" in ann
    assert "Change: +35%" in ann
    assert "Fractions 40% 80% +40%" in ann  # both published with their questions
    bob = lines(archive.read("bob.pdf"))
    assert "Final test Final test 15 20 75%" in bob and "Change: -5%" in bob
    assert "The questions of both tests were not published to you: only the totals are compared." in bob
    assert not any("Fractions" in x for x in bob)
    # Progress counts the learners the ZIP covers (group g1: five), those without a report included.
    assert shown[-2:] == [(98, "5 of 5 learners"), (99, "uploading")]
    assert (body["progress"], body["message"]) == (100, "ready")
