"""Reports: each kind opened and read back, the job life cycle, and download links against SeaweedFS."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile
from typing import Any

import httpx
import openpyxl
import pypdf
import pytest
from sqlalchemy import text

from gradeflow import jobs
from gradeflow.core.settings import S3Settings, Settings
from gradeflow.devstack.mailsink import Memory
from gradeflow.reports.service import reports as report_service
from gradeflow.reports.writers import xlsx
from tests.conftest import Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, enroll, grant, user_token

REPORTS = "/v1/courses/c1/reports"


async def _course(t: Tenant, settings: Settings) -> None:
    """Two homeworks and an exam (one auto item, one manual item marked by two graders); ann is
    confirmed, bob is not; cid has nothing; a formula-like username and a unicode name."""
    await course(t)
    rows = [
        {
            "external_id": "ann",
            "email": "ann@example.org",
            "username": "ann",
            "full_name": "Ann Ünal",
            "cohort": "A",
            "groups": ["g1"],
            "track": "verified",
        },
        {
            "external_id": "bob",
            "email": "bob@example.org",
            "username": '=HYPERLINK("http://x")',
            "cohort": "B",
            "groups": ["g1"],
        },
        {"external_id": "cid", "username": "cid", "full_name": "Cid Ødegård", "cohort": "A"},
    ]
    assert (await t.post("/v1/courses/c1/enrollments:batch", json={"enrollments": rows})).status_code == 200
    await assessment(t, "c1", "hw1", title="Intro")
    await assessment(t, "c1", "hw2", title="Vectors")
    items = [
        {"external_id": "q1", "number": "1", "title": "Choice", "points_possible": 4},
        {"external_id": "q2", "number": "2", "title": "Essay", "points_possible": 6, "marking": "manual"},
    ]
    marking = {"graders_per_item": 2, "reconciliation": "average"}
    await assessment(t, "c1", "exam", title="Final", category="Exam", items=items, marking=marking)
    policy = {
        "categories": [{"name": "Homework", "weight": 0.5, "drop_lowest": 1}, {"name": "Exam", "weight": 0.5}],
        "cutoffs": [{"grade": "A", "min": 0.8}, {"grade": "B", "min": 0.5}, {"grade": "F", "min": 0}],
    }
    assert (await t.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    await run_worker(settings)  # the policy's grades are served from now on
    scores = [("ann", "hw1", 8), ("ann", "hw2", 5), ("bob", "hw1", 10)]
    body = {"scores": [{"assessment": a, "learner": lr, "earned": e} for lr, a, e in scores]}
    assert (await t.post("/v1/courses/c1/scores:batch", json=body)).status_code == 200
    # The exam: the auto item scored (ann's overridden to 4), the manual one marked by g1 and g2.
    for learner, q1 in (("ann", 3), ("bob", 2)):
        r = await t.put(
            f"/v1/courses/c1/assessments/exam/scores/{learner}", json={"items": [{"item": "q1", "earned": q1}]}
        )
        assert r.status_code == 200
    override = {"items": [{"item": "q1", "earned": 4}], "source": "override"}
    assert (await t.put("/v1/courses/c1/assessments/exam/scores/ann", json=override)).status_code == 200
    r = await t.post("/v1/courses/c1/assessments/exam/allocations", json={"graders": ["g1", "g2"], "mode": "even"})
    assert r.status_code in (200, 201), r.text
    for grader, points in (("g1", 5), ("g2", 6)):
        await grant(t, "c1", grader, "grader")
        token = await user_token(t, grader)
        for learner in ("ann", "bob"):
            r = await t.put(
                f"/v1/courses/c1/assessments/exam/marks/{learner}/q2",
                json={"points": points, "comment": f"by {grader}"},
                as_=token,
            )
            assert r.status_code == 200, r.text
    assert (
        await t.post("/v1/courses/c1/assessments/exam/confirmations", json={"learners": ["ann"]})
    ).status_code == 200


async def _report(t: Tenant, settings: Settings, kind: str, **params: Any) -> tuple[dict[str, Any], bytes]:
    r = await t.post(REPORTS, json={"kind": kind, "params": params})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued" and r.headers["location"] == f"/v1/reports/{r.json()['id']}"
    await run_worker(settings)
    done = await t.get(r.headers["location"])
    body = done.json()
    assert body["status"] == "succeeded", body
    assert done.headers["cache-control"] == "no-store"
    async with httpx.AsyncClient() as http:
        file = await http.get(body["download_url"])
    assert file.status_code == 200, file.text
    assert body["bytes"] == len(file.content)
    return body, file.content


def _csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


async def test_grade_report_in_the_open_edx_layout(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    body, content = await _report(tenant, settings, "grade_report", bom=True)
    assert content.startswith(b"\xef\xbb\xbf")
    assert re.fullmatch(r"c1_grade_report_\d{4}-\d{2}-\d{2}-\d{4}\.csv", body["file_name"])
    header, *rows = _csv(content)
    assert header == [
        "Student ID", "Email", "Username", "Grade", "Homework 1", "Homework 2", "Homework (Avg)", "Exam",
        "Cohort Name", "Enrollment Track", "Verification Status", "Certificate Eligible", "Certificate Delivered",
        "Certificate Type", "Enrollment Status",
    ]  # fmt: skip
    by_id = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert body["rows"] == 3 and set(by_id) == {"ann", "bob", "cid"}
    ann = by_id["ann"]
    # ann: homework 0.8 and 0.5, the lower dropped: average 0.8 times the weight 0.5; exam (4 + 5.5) / 10 = 0.95,
    # confirmed.
    assert (ann["Homework 1"], ann["Homework 2"], ann["Homework (Avg)"]) == ("0.8", "0.5", "0.4")
    assert ann["Exam"] == "0.95" and ann["Grade"] == "0.875" and ann["Enrollment Track"] == "verified"
    # bob's exam awaits confirmation: not shown. cid has nothing.
    assert by_id["bob"]["Exam"] == "Not Available" and by_id["bob"]["Homework 2"] == "Not Attempted"
    assert by_id["bob"]["Username"] == '\'=HYPERLINK("http://x")'  # neutralised, not a formula
    assert by_id["cid"]["Homework (Avg)"] == "0" and by_id["cid"]["Cohort Name"] == "A"


async def test_problem_grade_report(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    _, content = await _report(tenant, settings, "problem_grade_report")
    header, *rows = _csv(content)
    assert header[:5] == ["Student ID", "Email", "Username", "Enrollment Status", "Grade"]
    assert header[5:9] == [
        "Homework 1: Intro (Earned)",
        "Homework 1: Intro (Possible)",
        "Homework 2: Vectors (Earned)",
        "Homework 2: Vectors (Possible)",
    ]
    assert header[9:] == [
        "Exam: Final - Choice (Earned)", "Exam: Final - Choice (Possible)",
        "Exam: Final - Essay (Earned)", "Exam: Final - Essay (Possible)",
    ]  # fmt: skip
    ann = dict(zip(header, next(r for r in rows if r[0] == "ann"), strict=True))
    assert ann["Exam: Final - Choice (Earned)"] == "4" and ann["Exam: Final - Essay (Earned)"] == "5.5"
    assert ann["Homework 2: Vectors (Earned)"] == "5"
    bob = dict(zip(header, next(r for r in rows if r[0] == "bob"), strict=True))
    # bob's exam is not confirmed: none of its results is shown yet
    assert (bob["Exam: Final - Choice (Earned)"], bob["Exam: Final - Choice (Possible)"]) == ("Not Available", "4")
    cid = dict(zip(header, next(r for r in rows if r[0] == "cid"), strict=True))
    assert (cid["Exam: Final - Essay (Earned)"], cid["Exam: Final - Essay (Possible)"]) == ("Not Attempted", "6")


async def test_marks_and_grades_csv(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    _, content = await _report(tenant, settings, "marks_and_grades", assessment="exam")
    header, *rows = _csv(content)
    assert header == [
        "CandidateExternalId", "UserID", "QuestionNo", "QuestionTitle", "QuestionRevisionId", "QuestionId",
        "GraderUserID1", "GraderUsername1", "GraderUserID2", "GraderUsername2",
        "ManualScore", "AutoScore", "FinalGrade",
    ]  # fmt: skip
    lines = {(r[0], r[2]): dict(zip(header, r, strict=True)) for r in rows}
    assert set(lines) == {("ann", "1"), ("ann", "2"), ("bob", "1"), ("bob", "2")}
    auto, manual = lines["ann", "1"], lines["ann", "2"]
    # The override in the manual column (given by the admin key), the calculated score kept beside it.
    assert (auto["ManualScore"], auto["AutoScore"]) == ("4", "3") and auto["GraderUserID1"].startswith("key:")
    assert (manual["ManualScore"], manual["AutoScore"]) == ("5.5", "")
    assert {manual["GraderUserID1"], manual["GraderUserID2"]} == {"g1", "g2"}
    assert manual["QuestionTitle"] == "Essay" and manual["QuestionRevisionId"] == "1"
    assert auto["FinalGrade"] == "A"  # 9.5 / 10 under the course's cutoffs, confirmed
    assert lines["bob", "2"]["FinalGrade"] == ""  # not confirmed yet


async def test_results_xlsx_with_filters(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    _, content = await _report(tenant, settings, "results_xlsx", cohort="B")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    header, data = rows[0], rows[1:]
    assert header[:4] == ("Learner ID", "Groups", "Cohort", "Last name")
    assessment_at, status_at = header.index("Assessment ID"), header.index("Status")
    assert {r[0] for r in data} == {"bob"} and {r[assessment_at] for r in data} == {"hw1", "exam"}
    exam = next(r for r in data if r[assessment_at] == "exam")
    assert exam[status_at] == "graded" and exam[header.index("Comments")] == "g1: by g1 | g2: by g2"
    cell = sheet.cell(row=2, column=header.index("Username") + 1)
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x")'  # text, never a formula
    _, content = await _report(tenant, settings, "results_xlsx", search="ünal", status=["graded"])
    data = list(openpyxl.load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))[1:]  # type: ignore[union-attr]
    assert {r[0] for r in data} == {"ann"} and len(data) == 3


async def test_results_xlsx_continues_on_new_sheets_and_keeps_an_empty_header(
    tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant, settings)
    monkeypatch.setattr(xlsx, "MAX_ROWS", 3)  # a header and two rows a sheet
    _, content = await _report(tenant, settings, "results_xlsx")
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert book.sheetnames == ["Results", "Results 2", "Results 3"]
    assert all(s["A1"].value == "Learner ID" for s in book.worksheets)
    rows = [r for s in book.worksheets for r in list(s.iter_rows(values_only=True))[1:]]
    expected = [("ann", "hw1"), ("ann", "hw2"), ("ann", "exam"), ("bob", "hw1"), ("bob", "exam")]
    assert sorted((r[0], r[7]) for r in rows) == sorted(expected)  # learner, assessment
    _, content = await _report(tenant, settings, "results_xlsx", search="nobody")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    assert [r[:2] for r in sheet.iter_rows(values_only=True)] == [("Learner ID", "Groups")]


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


async def test_group_report_pdf(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    body, content = await _report(tenant, settings, "group_report_pdf", assessment="hw1", group="g1")
    assert content.startswith(b"%PDF") and body["file_name"].endswith(".pdf")
    shown = _pdf_text(content)
    assert "Group report: Intro" in shown and "Group g1" in shown
    assert shown.index("bob") < shown.index("Ann Ünal")  # ranked: bob 100 %, ann 80 %
    assert "Mean" in shown and "90" in shown  # the mean of 100 and 80
    assert_problem(
        await tenant.post(REPORTS, json={"kind": "group_report_pdf", "params": {}}), 422, "/params/assessment"
    )


async def test_individual_reports_zip(tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    r = await tenant.put("/v1/courses/c1/assessments/exam/feedback/ann/q2", json={"text": "Cite sources"})
    assert r.status_code == 200, r.text
    publish = {"assessments": ["exam"], "audience": {"learners": ["ann"]}, "show": "with_items"}
    assert (await tenant.post("/v1/courses/c1/publications", json=publish)).status_code == 201
    body, content = await _report(tenant, settings, "individual_reports_zip", cohort="A")
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert sorted(archive.namelist()) == ["ann.pdf", "cid.pdf"] and body["rows"] == 2
    ann = _pdf_text(archive.read("ann.pdf"))
    # Published with items: the detail of the exam (label and title), its learner-visible feedback.
    assert "Ann Ünal" in ann and "Detail: Exam \N{EN DASH} Final" in ann and "Cite sources" in ann
    assert "by g1" not in ann  # the markers' comments are theirs, never the learner's
    cid = _pdf_text(archive.read("cid.pdf"))
    assert "Cid Ødegård" in cid and "Detail" not in cid


async def test_report_roles_and_input(tenant: Tenant, other_tenant: Tenant, settings: Settings) -> None:
    await _course(tenant, settings)
    await grant(tenant, "c1", "vic", "viewer")
    vic, g1 = await user_token(tenant, "vic"), await user_token(tenant, "g1")
    body = {"kind": "grade_report"}
    assert_problem(await tenant.post(REPORTS, json=body, as_=vic), 403)
    assert_problem(await other_tenant.post(REPORTS, json=body), 404)
    assert_problem(await tenant.post(REPORTS, json={"kind": "pie_chart"}), 422, "/kind")
    assert_problem(
        await tenant.post(REPORTS, json={"kind": "grade_report", "params": {"bom": "x"}}), 422, "/params/bom"
    )
    r = await tenant.post(REPORTS, json=body)
    assert (await tenant.get(f"/v1/reports/{r.json()['id']}", as_=vic)).status_code == 200
    assert_problem(await tenant.get(f"/v1/reports/{r.json()['id']}", as_=g1), 403)
    assert_problem(await other_tenant.get(f"/v1/reports/{r.json()['id']}"), 404)
    assert_problem(await tenant.get(f"/v1/reports/{r.json()['id']}/download"), 409)  # not built yet


async def test_life_cycle_duplicates_cancel_and_lost_jobs(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    await _course(tenant, settings)
    first = (await tenant.post(REPORTS, json={"kind": "grade_report"})).json()
    redis = await jobs.connect(settings.redis_url)
    try:
        # Delivered twice: the second delivery finds the record taken and does nothing.
        from gradeflow.reports.tasks import run_report

        ctx = {"settings": settings, "redis": redis}
        from gradeflow.worker.main import shutdown, startup

        await startup(ctx)
        try:
            assert await run_report(ctx, first["id"]) == "succeeded"
            assert await run_report(ctx, first["id"]) == "not queued (taken, cancelled or finished)"
        finally:
            await shutdown(ctx)
        # Lost from Redis: the sweep finds the queued record and the report is built.
        lost = (await tenant.post(REPORTS, json={"kind": "grade_report"})).json()
        await redis.flushdb()
        async with sessionmaker() as session:
            await session.execute(
                text("UPDATE reports SET created_at = created_at - interval '5 minutes' WHERE id = :id"),
                {"id": lost["id"]},
            )
            await session.commit()
        await run_worker(settings)
        assert (await tenant.get(f"/v1/reports/{lost['id']}")).json()["status"] == "succeeded"
    finally:
        await redis.aclose()
    # Cancelled while queued: never built; cancelling again is 409.
    queued = (await tenant.post(REPORTS, json={"kind": "grade_report"})).json()
    r = await tenant.post(f"/v1/reports/{queued['id']}:cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert_problem(await tenant.post(f"/v1/reports/{queued['id']}:cancel"), 409)
    await run_worker(settings)
    assert (await tenant.get(f"/v1/reports/{queued['id']}")).json()["status"] == "cancelled"
    listed = (await tenant.get(REPORTS)).json()["items"]
    assert [x["id"] for x in listed] == [queued["id"], lost["id"], first["id"]] and listed[0]["download_url"] is None
    actions = [e["action"] for e in (await tenant.get("/v1/courses/c1/audit", params={"limit": 1000})).json()["items"]]
    assert "report.link_issued" in actions and "report.cancelled" in actions


async def test_storage_down_retries_then_fails_visibly(
    tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch, mailbox: Memory
) -> None:
    await _course(tenant, settings)
    monkeypatch.setattr(report_service, "RETRY_AFTER", [0.05, 0.05, 0.05])
    r = await tenant.post(REPORTS, json={"kind": "grade_report", "notify_email": "planner@example.org"})
    down = settings.model_copy(
        update={"s3": S3Settings(endpoint_url="http://127.0.0.1:9", bucket="x", access_key="a", secret_key="b")}
    )
    await run_worker(down)
    failed = (await tenant.get(f"/v1/reports/{r.json()['id']}")).json()
    assert failed["status"] == "failed" and "failed 3 times" in failed["error"] and failed["download_url"] is None
    [message] = mailbox.to("planner@example.org")
    assert "could not be built" in message.get_content() and "X-Amz" not in message.get_content()


async def test_a_report_requested_right_after_a_score_write_has_the_new_grade(
    tenant: Tenant, settings: Settings
) -> None:
    """A score write marks the learner's grade stale and the worker's follow-up refreshes it half a
    second later; a grade report whose job ran within that half second showed the old grade."""
    from gradeflow.reports.tasks import run_report
    from gradeflow.worker.main import shutdown, startup

    await course(tenant)
    await enroll(tenant, "c1", "ann")
    await assessment(tenant, "c1", "hw1")
    policy = {"categories": [{"name": "Homework", "weight": 1}], "cutoffs": [{"grade": "P", "min": 0.5}]}
    assert (await tenant.put("/v1/courses/c1/policy", json=policy)).status_code == 200
    assert (await tenant.put("/v1/courses/c1/assessments/hw1/scores/ann", json={"earned": 5})).status_code == 200
    await run_worker(settings)  # the grade of 5/10 is stored
    assert (await tenant.get("/v1/courses/c1/learners/ann/grade")).json()["final"]["percent"] == 50
    assert (await tenant.put("/v1/courses/c1/assessments/hw1/scores/ann", json={"earned": 9})).status_code == 200
    r = await tenant.post(REPORTS, json={"kind": "grade_report"})
    assert r.status_code == 202, r.text
    # The report's job alone, at once: the follow-up the score write asked for is still waiting.
    ctx: dict[str, Any] = {"settings": settings}
    await startup(ctx)
    try:
        assert await run_report(ctx, r.json()["id"]) == "succeeded"
    finally:
        await shutdown(ctx)
    body = (await tenant.get(r.headers["location"])).json()
    async with httpx.AsyncClient() as http:
        header, *rows = _csv((await http.get(body["download_url"])).content)
    ann = dict(zip(header, rows[0], strict=True))
    assert (ann["Student ID"], ann["Homework"], ann["Grade"]) == ("ann", "0.9", "0.9")
    await run_worker(settings)  # the follow-up, for the queue's sake


async def test_download_links_are_signed_and_expire(
    tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _course(tenant, settings)
    monkeypatch.setattr(settings.reports, "link_seconds", 2)
    body, _ = await _report(tenant, settings, "grade_report")
    redirect = await tenant.get(f"/v1/reports/{body['id']}/download")
    assert redirect.status_code == 303 and redirect.headers["cache-control"] == "no-store"
    url = redirect.headers["location"]
    assert "X-Amz-Expires=2&" in url and "X-Amz-Signature=" in url
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200
        tampered = re.sub(r"(X-Amz-Signature=)(.)", lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1"), url)
        assert (await http.get(tampered)).status_code == 403
        assert (await http.get(url.split("?")[0])).status_code == 403  # no signature at all
        await asyncio.sleep(3)
        assert (await http.get(url)).status_code == 403  # expired


async def test_a_worker_full_of_xlsx_reports_finishes_them_all(tenant: Tenant, settings: Settings) -> None:
    """Ten XLSX reports at once (arq runs ten jobs together): each one's writer waits for rows for the
    whole job. On the event loop's shared thread pool (six threads here) they held every thread and the
    rows queued behind them never came: the worker hung (a fuzz run's skills and results files did)."""
    await course(tenant)
    await assessment(tenant, "c1", "hw1", points_possible=10)
    await enroll(tenant, "c1", "ann", "bob")
    assert (await tenant.put("/v1/courses/c1/assessments/hw1/scores/ann", json={"earned": 7})).status_code == 200
    ids = []
    for k in range(10):
        kind = "results_xlsx" if k % 2 else "skills_xlsx"
        r = await tenant.post("/v1/courses/c1/reports", json={"kind": kind, "params": {}})
        assert r.status_code == 202, r.text
        ids.append(r.headers["location"])
    await asyncio.wait_for(run_worker(settings), timeout=120)
    for location in ids:
        assert (await tenant.get(location)).json()["status"] == "succeeded"


async def test_files_past_their_retention_are_deleted_in_one_request(
    tenant: Tenant, settings: Settings, sessionmaker: Any
) -> None:
    """The hourly cron deletes the files of reports past their retention (one batched request to the
    store) and marks their records expired; a report still within its retention keeps its file."""
    await _course(tenant, settings)
    old, _ = await _report(tenant, settings, "grade_report")
    kept, _ = await _report(tenant, settings, "problem_grade_report")
    link = old["download_url"]  # minted before expiry: still signed, but the object goes
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE reports SET expires_at = now() - interval '1 minute' WHERE id = :id"), {"id": old["id"]}
        )
        await session.commit()
    await run_worker(settings)  # a starting worker runs the crons once
    expired = (await tenant.get(f"/v1/reports/{old['id']}")).json()
    assert expired["status"] == "expired" and expired["download_url"] is None
    assert expired["message"] == "file deleted after the retention period"
    assert (await tenant.get(f"/v1/reports/{kept['id']}")).json()["status"] == "succeeded"
    async with httpx.AsyncClient() as http:
        assert (await http.get(link)).status_code == 404
    assert_problem(await tenant.get(f"/v1/reports/{old['id']}/download"), 409)
