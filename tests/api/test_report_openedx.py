"""Open edX's grade report and problem grade report, cell by cell against the document's layout: a course
built through the API, both files downloaded and compared whole with the tables written out here."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import httpx

from gradeflow.core.settings import Settings
from tests.conftest import Tenant, run_worker
from tests.helpers import assessment, course, grant, user_token

C1 = "/v1/courses/c1"

POLICY = {
    "categories": [
        {"name": "Quizzes", "short_label": "Quiz", "weight": 0.4},
        {"name": "Homework", "short_label": "HW", "weight": 0.4, "drop_lowest": 1},
        {"name": "Exam", "weight": 0.2},
    ],
    "cutoffs": [{"grade": "Pass", "min": 0.6}, {"grade": "Fail", "min": 0}],
}


def _learner(name: str, **fields: Any) -> dict[str, Any]:
    return {"external_id": name, "username": name, "email": f"{name}@uni.edu", **fields}


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code < 300, r.text
    body: dict[str, Any] = r.json()
    return body


async def _scores(t: Tenant, base: str, rows: Sequence[tuple[str, str, float]]) -> None:
    body = {"scores": [{"assessment": a, "learner": learner, "earned": e} for learner, a, e in rows]}
    _ok(await t.post(f"{base}/scores:batch", json=body))


async def _physics(t: Tenant, settings: Settings) -> None:
    """Quizzes and homework interleaved (columns group by category, in order of first appearance), an exam
    with an automatic and a manual item (the only assessment of its category), and five learners:
    ann   verified and ID verified, cohort, team, two experiment groups; passing, certificate generated
    bob   audit, on the allow list; homework at 7.25 of 10 (0.725 x 0.4 is 0.29000000000000004 as a double);
          his exam marked but not confirmed
    cid   verified, not ID verified; nothing done
    dan   professional, unenrolled, one experiment group; homework only, exam attempt cancelled
    eve   verified; passing only after the certificates were generated"""
    await course(t)
    learners = [
        _learner(
            "ann",
            track="verified",
            id_verified=True,
            cohort="Section A",
            team="Red",
            experiment_groups={"Video length": "short", "Hints": "on"},
        ),
        _learner("bob", cohort="Section B", experiment_groups={"Hints": "off"}),
        _learner("cid", track="verified", cohort="Section A"),
        _learner(
            "dan",
            track="professional",
            id_verified=True,
            status="unenrolled",
            team="Blue",
            experiment_groups={"Video length": "long"},
        ),
        _learner("eve", track="verified", id_verified=True),
    ]
    _ok(await t.post(f"{C1}/enrollments:batch", json={"enrollments": learners}))
    await assessment(t, "c1", "q1", title="Units", category="Quizzes")
    await assessment(t, "c1", "hw1", title="Vectors")
    await assessment(t, "c1", "q2", title="Forces", category="Quizzes")
    await assessment(t, "c1", "hw2", title="Energy")
    await assessment(t, "c1", "hw3", title="Momentum")
    items = [
        {"external_id": "choice", "number": "1", "title": "Choice", "points_possible": 4},
        {"external_id": "essay", "number": "2", "title": "Essay", "points_possible": 6, "marking": "manual"},
    ]
    await assessment(t, "c1", "exam", title="Final exam", category="Exam", items=items)
    _ok(await t.put(f"{C1}/policy", json=POLICY))
    await run_worker(settings)  # the policy's grades are served from now on

    ann = [("ann", "q1", 10), ("ann", "q2", 10), ("ann", "hw1", 10), ("ann", "hw2", 5), ("ann", "hw3", 8)]
    bob = [("bob", "q1", 5), ("bob", "hw1", 7.25), ("bob", "hw2", 7.25)]
    await _scores(t, C1, [*ann, *bob, ("dan", "hw1", 10), ("dan", "hw2", 10), ("dan", "hw3", 10)])
    for learner, choice in (("ann", 4), ("bob", 2)):
        body = {"items": [{"item": "choice", "earned": choice}]}
        _ok(await t.put(f"{C1}/assessments/exam/scores/{learner}", json=body))
    _ok(await t.post(f"{C1}/assessments/exam/allocations", json={"graders": ["g1"], "mode": "even"}))
    await grant(t, "c1", "g1", "grader")
    token = await user_token(t, "g1")
    for learner, points in (("ann", 5), ("bob", 3)):
        r = await t.put(f"{C1}/assessments/exam/marks/{learner}/essay", json={"points": points}, as_=token)
        _ok(r)
    _ok(await t.post(f"{C1}/assessments/exam/confirmations", json={"learners": ["ann"]}))
    for status in ("in_progress", "cancelled"):
        _ok(await t.put(f"{C1}/assessments/exam/attempts/dan", json={"status": status}))

    _ok(await t.put(f"{C1}/certificates/allowlist/bob", json={"notes": "completed the in-person lab"}))
    await run_worker(settings)  # grades current before the generation reads them
    _ok(await t.post(f"{C1}/certificates:generate"))
    await _scores(t, C1, [("eve", "q1", 10), ("eve", "q2", 8), ("eve", "hw1", 9), ("eve", "hw2", 9), ("eve", "hw3", 9)])


async def _report(t: Tenant, settings: Settings, course_ext: str, kind: str) -> list[list[str]]:
    r = await t.post(f"/v1/courses/{course_ext}/reports", json={"kind": kind})
    assert r.status_code == 202, r.text
    await run_worker(settings)
    done = (await t.get(r.headers["location"])).json()
    assert done["status"] == "succeeded", done
    async with httpx.AsyncClient() as http:
        file = await http.get(done["download_url"])
    assert file.status_code == 200, file.text
    return list(csv.reader(io.StringIO(file.content.decode("utf-8"), newline="")))


def _table(text: str) -> list[list[str]]:
    """A file written column by column: a line per column, its header then a cell per learner,
    `|`-separated (spaces around a cell are layout). Returns the file's rows, the header first."""
    columns = [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]
    return [list(row) for row in zip(*columns, strict=True)]


def _assert_same(got: list[list[str]], expected: list[list[str]]) -> None:
    """Every header in order, every row in order, every cell (a failure names the learner and column)."""
    assert got[0] == expected[0]
    assert [row[0] for row in got] == [row[0] for row in expected]
    for row, want in zip(got[1:], expected[1:], strict=True):
        assert dict(zip(got[0], row, strict=True)) == dict(zip(expected[0], want, strict=True)), row[0]


GRADE_REPORT = """
Student ID                      | ann         | bob           | cid             | dan           | eve
Email                           | ann@uni.edu | bob@uni.edu   | cid@uni.edu     | dan@uni.edu   | eve@uni.edu
Username                        | ann         | bob           | cid             | dan           | eve
Grade                           | 0.94        | 0.39          | 0               | 0.4           | 0.72
Quiz 1                          | 1           | 0.5           | Not Attempted   | Not Attempted | 1
Quiz 2                          | 1           | Not Attempted | Not Attempted   | Not Attempted | 0.8
Quiz (Avg)                      | 0.4         | 0.1           | 0               | 0             | 0.36
HW 1                            | 1           | 0.725         | Not Attempted   | 1             | 0.9
HW 2                            | 0.5         | 0.725         | Not Attempted   | 1             | 0.9
HW 3                            | 0.8         | Not Attempted | Not Attempted   | 1             | 0.9
HW (Avg)                        | 0.36        | 0.29          | 0               | 0.4           | 0.36
Exam                            | 0.9         | Not Available | Not Attempted   | Not Available | Not Attempted
Cohort Name                     | Section A   | Section B     | Section A       |               |
Experiment Group (Hints)        | on          | off           |                 |               |
Experiment Group (Video length) | short       |               |                 | long          |
Team Name                       | Red         |               |                 | Blue          |
Enrollment Track                | verified    | audit         | verified        | professional  | verified
Verification Status             | ID Verified | N/A           | Not ID Verified | ID Verified   | ID Verified
Certificate Eligible            | Y           | Y             | N               | N             | Y
Certificate Delivered           | Y           | Y             | N               | N             | N
Certificate Type                | verified    | audit         | N/A             | N/A           | N/A
Enrollment Status               | enrolled    | enrolled      | enrolled        | unenrolled    | enrolled
"""


async def test_grade_report_matches_the_document_cell_by_cell(tenant: Tenant, settings: Settings) -> None:
    """Headers `{short label} {n}`, `(Avg)` = the category's average as the grade computed it (drops
    applied) times its weight, numbers in their shortest form, the certificate and verification columns:
    ann passed and got a certificate; bob's is from the allow list (audit track, failing); eve passes
    now (eligible) but did not when certificates were generated (not delivered); dan's cancelled exam and
    bob's unconfirmed one are Not Available."""
    await _physics(tenant, settings)
    _assert_same(await _report(tenant, settings, "c1", "grade_report"), _table(GRADE_REPORT))


PROBLEM_GRADE_REPORT = """
Student ID                           | ann         | bob           | cid           | dan           | eve
Email                                | ann@uni.edu | bob@uni.edu   | cid@uni.edu   | dan@uni.edu   | eve@uni.edu
Username                             | ann         | bob           | cid           | dan           | eve
Enrollment Status                    | enrolled    | enrolled      | enrolled      | unenrolled    | enrolled
Grade                                | 0.94        | 0.39          | 0             | 0.4           | 0.72
Quiz 1: Units (Earned)               | 10          | 5             | Not Attempted | Not Attempted | 10
Quiz 1: Units (Possible)             | 10          | 10            | 10            | 10            | 10
Quiz 2: Forces (Earned)              | 10          | Not Attempted | Not Attempted | Not Attempted | 8
Quiz 2: Forces (Possible)            | 10          | 10            | 10            | 10            | 10
HW 1: Vectors (Earned)               | 10          | 7.25          | Not Attempted | 10            | 9
HW 1: Vectors (Possible)             | 10          | 10            | 10            | 10            | 10
HW 2: Energy (Earned)                | 5           | 7.25          | Not Attempted | 10            | 9
HW 2: Energy (Possible)              | 10          | 10            | 10            | 10            | 10
HW 3: Momentum (Earned)              | 8           | Not Attempted | Not Attempted | 10            | 9
HW 3: Momentum (Possible)            | 10          | 10            | 10            | 10            | 10
Exam: Final exam - Choice (Earned)   | 4           | Not Available | Not Attempted | Not Available | Not Attempted
Exam: Final exam - Choice (Possible) | 4           | 4             | 4             | Not Available | 4
Exam: Final exam - Essay (Earned)    | 5           | Not Available | Not Attempted | Not Available | Not Attempted
Exam: Final exam - Essay (Possible)  | 6           | 6             | 6             | Not Available | 6
"""


async def test_problem_grade_report_matches_the_document_cell_by_cell(tenant: Tenant, settings: Settings) -> None:
    """The same labels as the grade report; an assessment without items is named once (never `title -
    title`); bob's exam is not confirmed, so neither of its items shows a score; dan's attempt is
    cancelled."""
    await _physics(tenant, settings)
    _assert_same(await _report(tenant, settings, "c1", "problem_grade_report"), _table(PROBLEM_GRADE_REPORT))


OPENEDX_GRADE_REPORT = """
Student ID            | ann         | bob
Email                 | ann@uni.edu | bob@uni.edu
Username              | ann         | bob
Grade                 | 0.65        | 0.33
HW 1                  | 1           | 1
HW 2                  | 0.5         | 1
HW (Avg)              | 0.25        | 0.3333
Exam                  | 0.8         | Not Attempted
Enrollment Track      | audit       | audit
Verification Status   | N/A         | N/A
Certificate Eligible  | N           | N
Certificate Delivered | N           | N
Certificate Type      | N/A         | N/A
Enrollment Status     | enrolled    | enrolled
"""


async def test_openedx_preset_average_counts_the_min_count_placeholders(tenant: Tenant, settings: Settings) -> None:
    """Homework needs 4 (two exist), one dropped: ann's 1 and 0.5 with two placeholder zeros average
    (1 + 0.5 + 0) / 3 = 0.5, times the weight 0.5 = 0.25, as her grade counts it (without the
    placeholders it would be 0.5); bob's 1, 1, 0: 0.6667 x 0.5."""
    await course(tenant, "c2")
    learners = [_learner("ann"), _learner("bob")]
    _ok(await tenant.post("/v1/courses/c2/enrollments:batch", json={"enrollments": learners}))
    await assessment(tenant, "c2", "hw1")
    await assessment(tenant, "c2", "hw2")
    await assessment(tenant, "c2", "exam", category="Exam")
    policy = {
        "preset": "openedx",
        "categories": [
            {"name": "Homework", "short_label": "HW", "weight": 0.5, "min_count": 4, "drop_lowest": 1},
            {"name": "Exam", "weight": 0.5},
        ],
        "cutoffs": [{"grade": "Pass", "min": 0.5}],
    }
    _ok(await tenant.put("/v1/courses/c2/policy", json=policy))
    await run_worker(settings)
    rows = [("ann", "hw1", 10), ("ann", "hw2", 5), ("ann", "exam", 8), ("bob", "hw1", 10), ("bob", "hw2", 10)]
    await _scores(tenant, "/v1/courses/c2", rows)
    _assert_same(await _report(tenant, settings, "c2", "grade_report"), _table(OPENEDX_GRADE_REPORT))


async def test_columns_of_the_same_name_are_all_kept(tenant: Tenant, settings: Settings) -> None:
    """A category called "Grade", two categories with the same short label and two items of one title
    would repeat a header: each later one is numbered, none is lost or overwrites the course grade."""
    await course(tenant, "c3")
    _ok(await tenant.post("/v1/courses/c3/enrollments:batch", json={"enrollments": [_learner("ann")]}))
    await assessment(tenant, "c3", "g", title="Graded task", category="Grade")
    await assessment(tenant, "c3", "lab", title="Optics", category="Lab")
    items = [{"external_id": f"e{k}", "title": "Essay", "points_possible": 2} for k in (1, 2)]
    await assessment(tenant, "c3", "quiz", title="Quiz", category="Labs", items=items)
    policy = {
        "categories": [
            {"name": "Grade", "weight": 0.5},
            {"name": "Lab", "short_label": "L", "weight": 0.25},
            {"name": "Labs", "short_label": "L", "weight": 0.25},
        ]
    }
    _ok(await tenant.put("/v1/courses/c3/policy", json=policy))
    await run_worker(settings)
    await _scores(tenant, "/v1/courses/c3", [("ann", "g", 5), ("ann", "lab", 10)])
    _ok(
        await tenant.put(
            "/v1/courses/c3/assessments/quiz/scores/ann",
            json={"items": [{"item": "e1", "earned": 2}, {"item": "e2", "earned": 1}]},
        )
    )
    grades = await _report(tenant, settings, "c3", "grade_report")
    assert grades[0][:7] == ["Student ID", "Email", "Username", "Grade", "Grade (2)", "L", "L (2)"]
    assert grades[1][3:7] == ["0.6875", "0.5", "1", "0.75"]  # 0.5 x 0.5 + 1 x 0.25 + 0.75 x 0.25
    problems = await _report(tenant, settings, "c3", "problem_grade_report")
    assert problems[0][5:] == [
        "Grade (2): Graded task (Earned)", "Grade (2): Graded task (Possible)",
        "L: Optics (Earned)", "L: Optics (Possible)",
        "L (2): Quiz - Essay (Earned)", "L (2): Quiz - Essay (Possible)",
        "L (2): Quiz - Essay (2) (Earned)", "L (2): Quiz - Essay (2) (Possible)",
    ]  # fmt: skip
    assert problems[1][5:] == ["5", "10", "10", "10", "2", "2", "1", "2"]
