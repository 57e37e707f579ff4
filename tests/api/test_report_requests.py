"""Report requests: each kind's params typed in the OpenAPI document, every bad reference refused at
request time (never a job that fails later), and progress a planner can read while a report runs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from gradeflow.core.settings import Settings
from gradeflow.readside.service import course_data
from gradeflow.reports import builders as report_builders
from gradeflow.reports import kinds as report_kinds
from gradeflow.reports.kinds import REPORT_PARAMS
from gradeflow.reports.service import marks_report
from gradeflow.reports.service import reports as report_service
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course

REPORTS = "/v1/courses/c1/reports"
KINDS = {
    "grade_report": "GradeReportRequest",
    "problem_grade_report": "ProblemGradeReportRequest",
    "marks_and_grades": "MarksAndGradesRequest",
    "results_xlsx": "ResultsXlsxRequest",
    "skills_xlsx": "SkillsXlsxRequest",
    "group_report_pdf": "GroupReportRequest",
    "individual_reports_zip": "IndividualReportsRequest",
    "group_progression_pdf": "GroupProgressionRequest",
    "individual_progression_zip": "IndividualProgressionRequest",
    "certificates_zip": "CertificatesZipRequest",
}


async def _course(t: Tenant) -> None:
    """Five learners: l1-l4 in cohort A and group g1, l5 in cohort B; each has a homework score and an
    exam of two auto-scored items."""
    await course(t)
    rows = [
        {
            "external_id": f"l{n}",
            "username": f"l{n}",
            "cohort": "A" if n < 5 else "B",
            "groups": ["g1"] if n < 5 else [],
        }
        for n in range(1, 6)
    ]
    assert (await t.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "hw1")
    items = [{"external_id": f"q{n}", "number": str(n), "points_possible": 5} for n in (1, 2)]
    await assessment(t, "c1", "exam", category="Exam", items=items)
    scores = [{"assessment": "hw1", "learner": f"l{n}", "earned": n} for n in range(1, 6)]
    scores += [
        {"assessment": "exam", "learner": f"l{n}", "item": q, "earned": 3} for n in range(1, 6) for q in ("q1", "q2")
    ]
    r = await t.post("/v1/courses/c1/scores:batch", json={"scores": scores})
    assert r.status_code == 200, r.text


async def test_the_openapi_document_types_each_kinds_params(tenant: Tenant) -> None:
    document = (await tenant.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    body = document["paths"]["/v1/courses/{course}/reports"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ReportRequest"}
    request = schemas["ReportRequest"]
    assert request["discriminator"] == {
        "propertyName": "kind",
        "mapping": {kind: f"#/components/schemas/{name}" for kind, name in KINDS.items()},
    }
    assert sorted(x["$ref"] for x in request["oneOf"]) == sorted(f"#/components/schemas/{n}" for n in KINDS.values())

    def params(kind: str) -> dict[str, Any]:
        schema = schemas[KINDS[kind]]
        assert schema["properties"]["kind"]["const"] == kind and "notify_email" in schema["properties"]
        return dict(schemas[schema["properties"]["params"]["$ref"].rsplit("/", 1)[1]])

    assert set(params("grade_report")["properties"]) == {"bom"}
    assert params("marks_and_grades")["required"] == ["assessment"]
    assert "params" in schemas[KINDS["marks_and_grades"]]["required"]  # no assessment, no report
    group = params("group_report_pdf")
    assert {"assessment", "group", "cohort", "language", "since", "until"} <= set(group["properties"])
    assert group["properties"]["language"]["default"] == "en"
    assert {"learners", "group", "cohort", "language"} <= set(params("individual_reports_zip")["properties"])
    assert {"status", "assessment", "search", "since", "until"} <= set(params("results_xlsx")["properties"])


def test_the_worker_builds_every_kind_the_api_takes() -> None:
    # One registry (gradeflow/reports/kinds.py): each kind the API takes names its request, its builder and its file.
    assert set(REPORT_PARAMS) == set(KINDS) == set(report_kinds.KINDS)
    for name, kind in report_kinds.KINDS.items():
        assert kind.request == KINDS[name] and callable(kind.build) and kind.content_type


async def test_params_are_checked_against_the_kind(tenant: Tenant) -> None:
    await _course(tenant)

    async def refused(body: dict[str, Any], pointer: str, says: str = "") -> None:
        problem = assert_problem(await tenant.post(REPORTS, json=body), 422, pointer)
        assert says in " ".join(e["detail"] for e in problem["errors"]), problem

    await refused({"kind": "pie_chart"}, "/kind", "grade_report")
    await refused({"params": {}}, "/kind")
    await refused({"kind": "grade_report", "params": {"colour": "red"}}, "/params/colour")
    await refused({"kind": "grade_report", "params": {"assessment": "hw1"}}, "/params/assessment")  # not its param
    await refused({"kind": "marks_and_grades"}, "/params")
    await refused({"kind": "grade_report", "notify_email": "nobody"}, "/notify_email")
    await refused({"kind": "grade_report", "params": {"bom": "x"}}, "/params/bom")
    await refused(
        {"kind": "group_report_pdf", "params": {"assessment": "hw1", "language": "xx"}}, "/params/language", "en, fr"
    )
    await refused({"kind": "individual_reports_zip", "params": {"language": "tlh"}}, "/params/language", "'tlh'")
    await refused({"kind": "individual_reports_zip", "params": {"language": "<en>"}}, "/params/language")  # no tag
    both = {"cohort": "A", "learners": ["l1"]}
    await refused({"kind": "individual_reports_zip", "params": both}, "/params/learners", "one of group, cohort")
    twice = {"learners": ["l1", "l2", "l1"]}
    await refused(
        {"kind": "individual_reports_zip", "params": twice}, "/params/learners/2", "repeats /params/learners/0"
    )
    period = {"assessment": "hw1", "since": "2026-03-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"}
    await refused({"kind": "group_report_pdf", "params": period}, "/params/until", "later than since")
    await refused({"kind": "group_report_pdf", "params": {**period, "until": "2026-03-02"}}, "/params/until")  # no zone
    assert (await tenant.get(REPORTS)).json()["items"] == []  # nothing was queued
    ok = {"assessment": "hw1", "language": "fr", "since": "2026-03-01T00:00:00Z", "until": "2026-03-02T00:00:00+01:00"}
    r = await tenant.post(REPORTS, json={"kind": "group_report_pdf", "params": ok})
    assert r.status_code == 202, r.text
    assert r.json()["params"] == {**ok, "include_archived": False}  # the default, stored: archived groups hidden


async def test_bad_references_are_refused_at_request_time(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant)
    for kind, params in (
        ("marks_and_grades", {"assessment": "hw9"}),
        ("group_report_pdf", {"assessment": "hw9"}),
        ("results_xlsx", {"assessment": "hw9"}),
    ):
        problem = assert_problem(await tenant.post(REPORTS, json={"kind": kind, "params": params}), 422)
        assert problem["errors"] == [{"pointer": "/params/assessment", "detail": "The course has no assessment 'hw9'."}]
    body = {"kind": "individual_reports_zip", "params": {"learners": ["l1", "zed", "l2", "yan"]}}
    problem = assert_problem(await tenant.post(REPORTS, json=body), 422)
    assert problem["errors"] == [
        {"pointer": "/params/learners/1", "detail": "'zed' is not enrolled in this course."},
        {"pointer": "/params/learners/3", "detail": "'yan' is not enrolled in this course."},
    ]
    # A group or cohort nobody is in cannot be told from a typo: refused, naming those the course has.
    body = {"kind": "group_report_pdf", "params": {"assessment": "hw1", "group": "g2"}}
    problem = assert_problem(await tenant.post(REPORTS, json=body), 422, "/params/group")
    assert problem["errors"][0]["detail"] == "Nobody in the course is in group 'g2' (the course's groups are 'g1')."
    body = {"kind": "individual_reports_zip", "params": {"cohort": "C"}}
    problem = assert_problem(await tenant.post(REPORTS, json=body), 422, "/params/cohort")
    assert "cohorts are 'A', 'B'" in problem["errors"][0]["detail"]
    body = {"kind": "results_xlsx", "params": {"assessment": "hw9", "cohort": "C"}}
    assert_problem(await tenant.post(REPORTS, json=body), 422, "/params/assessment", "/params/cohort")
    assert (await tenant.get(REPORTS)).json()["items"] == []
    # A selection with learners and nothing to show is a legitimate, empty report.
    await assessment(tenant, "c1", "hw2")
    r = await tenant.post(REPORTS, json={"kind": "results_xlsx", "params": {"assessment": "hw2", "cohort": "B"}})
    assert r.status_code == 202, r.text
    await run_worker(settings)
    done = (await tenant.get(r.headers["location"])).json()
    assert (done["status"], done["rows"]) == ("succeeded", 0)


@pytest.mark.parametrize(
    ("bounds", "pointer"),
    [({"until": "0001-01-01T00:00:00Z"}, "/params/until"), ({"since": "9999-12-31T23:00:00-05:00"}, "/params/since")],
)
async def test_a_period_the_report_cannot_print_is_refused(
    tenant: Tenant, bounds: dict[str, str], pointer: str
) -> None:
    await _course(tenant)
    body = {"kind": "group_report_pdf", "params": {"assessment": "exam", **bounds}}
    assert_problem(await tenant.post(REPORTS, json=body), 422, pointer)


@pytest.mark.parametrize("kind", ["marks_and_grades", "results_xlsx", "group_report_pdf"])
async def test_an_assessment_gone_after_the_request_fails_the_report_in_words(
    tenant: Tenant, settings: Settings, sessionmaker: Any, kind: str
) -> None:
    await _course(tenant)
    r = await tenant.post(REPORTS, json={"kind": kind, "params": {"assessment": "exam"}})
    assert r.status_code == 202, r.text
    # Assessments cannot be deleted through the API: the record is pointed at one the course lacks.
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE reports SET params = jsonb_set(params, '{assessment}', '\"old\"') WHERE id = :id"),
            {"id": r.json()["id"]},
        )
        await session.commit()
    await run_worker(settings)
    failed = (await tenant.get(r.headers["location"])).json()
    assert failed["status"] == "failed"
    assert failed["error"] == "The assessment 'old' was deleted from the course after the report was requested."


Seen = list[tuple[int, str]]


@pytest.fixture
def seen(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Each progress the API shows while the worker runs, read through the API after every update."""
    shown: Seen = []
    record = report_service.progress

    async def progress(sessionmaker: Any, report_id: int, try_: int, percent: int, message: str) -> None:
        await record(sessionmaker, report_id, try_, percent, message)
        view = (await tenant.get(f"/v1/reports/{report_id}")).json()
        assert view["status"] == "running"
        shown.append((view["progress"], view["message"]))

    monkeypatch.setattr(report_service, "progress", progress)
    return shown


async def _run(t: Tenant, settings: Settings, seen: Seen, kind: str, **params: Any) -> tuple[Seen, dict[str, Any]]:
    seen.clear()
    r = await t.post(REPORTS, json={"kind": kind, "params": params})
    assert r.status_code == 202, r.text
    await run_worker(settings)
    body = (await t.get(r.headers["location"])).json()
    assert (body["status"], body["progress"], body["message"]) == ("succeeded", 100, "ready"), body
    return list(seen), body


async def test_csv_progress_counts_rows_written_and_learners_read(
    tenant: Tenant, settings: Settings, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant)
    monkeypatch.setattr(course_data, "PARALLEL_CHUNK", 2)  # the grade report: two learners a chunk
    shown, body = await _run(tenant, settings, seen, "grade_report")
    assert shown == [(40, "2 rows written"), (80, "4 rows written"), (98, "5 rows written"), (99, "uploading")]
    assert body["rows"] == 5
    # Marks and grades: a row per question, two a learner; the percent counts learners (one a chunk).
    monkeypatch.setattr(marks_report, "CHUNK", 2)
    shown, body = await _run(tenant, settings, seen, "marks_and_grades", assessment="exam")
    assert shown == [
        (20, "2 rows written"),
        (40, "4 rows written"),
        (60, "6 rows written"),
        (80, "8 rows written"),
        (98, "10 rows written"),
        (99, "uploading"),
    ]
    assert body["rows"] == 10
    shown, _ = await _run(tenant, settings, seen, "problem_grade_report")
    assert shown == [(98, "5 rows written"), (99, "uploading")]


async def test_xlsx_progress_counts_rows_of_the_total(
    tenant: Tenant, settings: Settings, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant)
    monkeypatch.setattr(course_data, "CHUNK", 2)
    shown, body = await _run(tenant, settings, seen, "results_xlsx", assessment="exam")
    assert shown == [
        (40, "2 of 5 rows written"),
        (80, "4 of 5 rows written"),
        (98, "5 of 5 rows written"),
        (99, "uploading"),
    ]
    assert body["rows"] == 5


async def test_zip_progress_counts_learners_of_those_it_covers(
    tenant: Tenant, settings: Settings, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant)
    monkeypatch.setattr(report_builders, "PROGRESS_EVERY", 1)
    shown, body = await _run(tenant, settings, seen, "individual_reports_zip", cohort="A")
    # Out of the cohort's four learners, not the course's five.
    assert shown == [
        (25, "1 of 4 learners"),
        (50, "2 of 4 learners"),
        (75, "3 of 4 learners"),
        (98, "4 of 4 learners"),
        (99, "uploading"),
    ]
    assert body["rows"] == 4
    monkeypatch.setattr(report_builders, "PROGRESS_EVERY", 2)
    shown, _ = await _run(tenant, settings, seen, "individual_reports_zip", learners=["l5", "l1", "l3"])
    assert shown == [(66, "2 of 3 learners"), (98, "3 of 3 learners"), (99, "uploading")]
