"""CSV sweep: every operation of the OpenAPI document that answers CSV, and every report kind, is
called on a course whose every text field starts like a spreadsheet formula (`=`, `+`, `-`, `@`, tab,
CR); no cell of any CSV starts a formula and no XLSX cell is one. A new CSV route or report kind is
swept without a change here.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any
from urllib.parse import quote

import httpx
import openpyxl

from gradeflow.core.csv_cells import FORMULA_START
from gradeflow.core.settings import Settings
from tests.conftest import Tenant, run_worker
from tests.helpers import user_token

C = "=crs"
BASE = "/v1/courses/%3Dcrs"
# Per report kind, the parameters it needs (the rest take none).
REPORT_PARAMS: dict[str, dict[str, Any]] = {
    "marks_and_grades": {"assessment": "@exam"},
    "results_xlsx": {},
    "group_report_pdf": {"assessment": "@exam", "group": "=grp"},
    "group_progression_pdf": {"assessment": "@exam", "group": "=grp"},
    "individual_progression_zip": {"assessment": "@exam"},
}


async def _hostile_course(t: Tenant, settings: Settings) -> dict[str, str]:
    r = await t.post("/v1/courses", json={"external_id": C, "title": '=HYPERLINK("http://x")'})
    assert r.status_code == 201, r.text
    learners = [
        {
            "external_id": ext,
            "username": f"+{ext}",
            "full_name": f"\t{ext} Name",
            "email": f"={ext.strip('=+-@')}@example.org",
            "cohort": "@cohort",
            "team": "-team",
            "groups": ["=grp"],
            "track": "=verified",
        }
        for ext in ("=u1", "+u2", "-u3", "@u4")
    ]
    r = await t.post(f"{BASE}/enrollments:batch", json={"enrollments": learners})
    assert r.status_code == 200, r.text
    for body in (
        {"external_id": "=hw", "title": "+Homework", "category": "-Cat", "points_possible": 10},
        {
            "external_id": "@exam",
            "title": "\rExam",
            "category": "=Exam",
            "initial_assessment": "=hw",  # a final test, for the progression reports
            "items": [
                {"external_id": "@q1", "number": "=1", "title": "\tAuto", "points_possible": 4},
                {"external_id": "-q2", "number": "+2", "title": "@Essay", "points_possible": 6, "marking": "manual"},
            ],
        },
    ):
        r = await t.post(f"{BASE}/assessments", json=body)
        assert r.status_code == 201, r.text
    policy = {
        "categories": [{"name": "-Cat", "weight": 0.5}, {"name": "=Exam", "weight": 0.5}],
        "cutoffs": [{"grade": "=A", "min": 0.5}, {"grade": "@F", "min": 0}],
    }
    assert (await t.put(f"{BASE}/policy", json=policy)).status_code == 200, "policy"
    scores = [
        {"assessment": "=hw", "learner": "=u1", "earned": 7},
        {"assessment": "=hw", "learner": "+u2", "earned": 3},
        {"assessment": "@exam", "learner": "=u1", "item": "@q1", "earned": 4},
        {"assessment": "@exam", "learner": "+u2", "item": "@q1", "earned": 1},
    ]
    r = await t.post(f"{BASE}/scores:batch", json={"scores": scores})
    assert r.status_code == 200, r.text
    assert (await t.put(f"{BASE}/workgroups/=wg", json={"members": ["=g1"]})).status_code == 200
    assert (await t.put(f"{BASE}/members/=g1", json={"roles": ["grader"]})).status_code == 200
    r = await t.post(f"{BASE}/assessments/@exam/allocations", json={"graders": ["=g1"]})
    assert r.status_code in (200, 201), r.text
    grader = await user_token(t, "=g1")
    for learner in ("=u1", "+u2"):
        r = await t.put(
            f"{BASE}/assessments/@exam/marks/{learner}/-q2", json={"points": 5, "comment": "@comment"}, as_=grader
        )
        assert r.status_code == 200, r.text
    assert (await t.post(f"{BASE}/assessments/@exam/confirmations", json={})).status_code == 200
    await run_worker(settings)
    return {"course": C, "assessment": "@exam", "learner": "=u1", "item": "-q2", "grader": "=g1"}


def _formula_cells(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would run: starting like a formula and not a plain number."""
    bad = []
    for row in rows:
        for value in row:
            if value.startswith(FORMULA_START):
                try:
                    float(value)
                except ValueError:
                    bad.append(value)
    return bad


def _csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def _xlsx_formulas(content: bytes) -> list[str]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [
        f"{sheet.title}!{c.coordinate}"
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for c in row
        if c.data_type == "f"
    ]


def _problems_of_file(name: str, content: bytes) -> list[str]:
    if name.endswith(".csv"):
        return _formula_cells(_csv_rows(content))
    if name.endswith(".xlsx"):
        return _xlsx_formulas(content)
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            return [p for n in z.namelist() for p in _problems_of_file(n, z.read(n))]
    return []


async def test_no_export_runs_a_formula(tenant: Tenant, settings: Settings) -> None:
    values = await _hostile_course(tenant, settings)
    document = (await tenant.client.get("/openapi.json")).json()
    problems: list[str] = []

    csv_routes = [
        path
        for path, ops in document["paths"].items()
        if "get" in ops and "text/csv" in ops["get"].get("responses", {}).get("200", {}).get("content", {})
    ]
    assert len(csv_routes) >= 4, csv_routes
    for path in csv_routes:
        url = re.sub(r"\{(\w+)\}", lambda m: quote(values[m.group(1)], safe=""), path)
        r = await tenant.get(url)
        assert r.status_code == 200, (path, r.text)
        rows = _csv_rows(r.content)
        assert len(rows) > 1, f"{path} has no rows to check"
        problems += [f"{path}: {cell!r}" for cell in _formula_cells(rows)]

    kinds = document["components"]["schemas"]["ReportRequest"]["discriminator"]["mapping"]
    for kind in kinds:
        r = await tenant.post(f"{BASE}/reports", json={"kind": kind, "params": REPORT_PARAMS.get(kind, {})})
        assert r.status_code == 202, (kind, r.text)
        await run_worker(settings)
        body = (await tenant.get(r.headers["location"])).json()
        assert body["status"] == "succeeded", body
        async with httpx.AsyncClient() as http:
            content = (await http.get(body["download_url"])).content
        problems += [f"{kind}: {cell!r}" for cell in _problems_of_file(body["file_name"], content)]
    assert not problems, "\n".join(problems)
