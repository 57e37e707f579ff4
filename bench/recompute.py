"""Recompute a stored course after a policy change, end to end: PUT the policy through the API,
the worker recomputes every learner in chunks, the new grades are served. Baseline in the same
run: the raw `COPY (SELECT ...) TO STDOUT` of the same scores (reading them, nothing else).

standard (default): 4 categories with drop_lowest. canvas: the groups and rules of bench.grading's canvas course
(bench.common.CANVAS_GROUPS: every drop rule, weighted groups, about 1 % of the scores excused).

    .venv/bin/python -m bench.recompute [--preset standard|canvas] [--learners 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx

from bench.common import CANVAS_GROUPS, api_server, canvas_rules, wait_until_done, worker_process

CATEGORIES = [("Homework", 0.25, 8, 2), ("Quiz", 0.25, 6, 1), ("Midterm", 0.2, 3, 0), ("Final", 0.3, 3, 0)]
POLICY = {
    "preset": "standard",
    "categories": [{"name": n, "weight": w, "drop_lowest": d} for n, w, _, d in CATEGORIES],
    "cutoffs": [{"grade": g, "min": m} for g, m in (("A", 0.9), ("B", 0.8), ("C", 0.7), ("D", 0.6), ("F", 0))],
}


# An assessment of the course: (category, number in it, points possible).
Assessment = tuple[str, int, int]
STANDARD_ASSESSMENTS = [(name, k, 10 + 5 * k) for name, _, count, _ in CATEGORIES for k in range(count)]
_points = random.Random(7)
# The canvas course's points possible: integers 5..50, mixed within each group (drops then matter).
CANVAS_ASSESSMENTS = [(name, k, _points.randint(5, 50)) for name, _, count, _ in CANVAS_GROUPS for k in range(count)]
PRESETS: dict[str, tuple[dict[str, Any], list[Assessment], float]] = {
    # preset: (the policy PUT, the course's assessments, share of excused scores)
    "standard": (POLICY, STANDARD_ASSESSMENTS, 0.0),
    "canvas": (canvas_rules(), CANVAS_ASSESSMENTS, 0.01),
}


async def create_course(c: httpx.AsyncClient, assessments: Sequence[Assessment] = STANDARD_ASSESSMENTS) -> None:
    """Course "big" with 20 assessments in 4 categories, through the API."""
    (await c.post("/v1/courses", json={"external_id": "big", "title": "Big course"})).raise_for_status()
    for name, k, points in assessments:
        body = {"external_id": f"{name[:2]}{k}", "title": f"{name} {k}", "category": name, "points_possible": points}
        (await c.post("/v1/courses/big/assessments", json=body)).raise_for_status()


async def insert_learners_and_scores(conn: asyncpg.Connection, learners: int, excused: float = 0.0) -> int:
    """Learners u1..uN of course "big" (the first 1,000 in cohort first-thousand) and a score for each of
    its assessments (10 % pending grading, an `excused` share excused), straight into the tables (set-up
    only). Returns the course id."""
    course: int = await conn.fetchval("SELECT id FROM courses WHERE external_id = 'big'")
    await conn.execute(
        "INSERT INTO enrollments (course_id, external_id, username, email, full_name, cohort) "
        "SELECT $1, 'u' || g, 'user' || g, 'user' || g || '@example.org', 'Learner ' || g, "
        "CASE WHEN g <= 1000 THEN 'first-thousand' ELSE 'rest' END FROM generate_series(1, $2) g",
        course,
        learners,
    )
    await conn.execute(
        """
        INSERT INTO attempts (assessment_id, enrollment_id, status, entered, possible, source, scored_at, excused)
        SELECT a.id, e.id, CASE WHEN random() < 0.1 THEN 'pending_grading' ELSE 'graded' END,
               round((random() * a.points_possible)::numeric, 2), a.points_possible, 'auto', now(), random() < $2
        FROM enrollments e CROSS JOIN assessments a WHERE e.course_id = $1 AND a.course_id = $1
        """,
        course,
        excused,
    )
    return course


async def seed(c: httpx.AsyncClient, database_url: str, learners: int, preset: str) -> None:
    """Assessments through the API; learners and 20 scores each straight into the tables (set-up only)."""
    _, assessments, excused = PRESETS[preset]
    await create_course(c, assessments)
    conn = await asyncpg.connect(database_url)
    try:
        await insert_learners_and_scores(conn, learners, excused)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def copy_baseline(database_url: str) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        t0 = time.perf_counter()
        await conn.copy_from_query(
            "SELECT t.enrollment_id, a.external_id, t.status, t.earned, t.possible FROM attempts t "
            "JOIN assessments a ON a.id = t.assessment_id",
            output=io.BytesIO(),
            format="csv",
        )
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def run(base_url: str, key: str, database_url: str, env: dict[str, str], learners: int, preset: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
        await seed(c, database_url, learners, preset)
        copy_s = await copy_baseline(database_url)
        with worker_process(env):
            t0 = time.perf_counter()
            (await c.put("/v1/courses/big/policy", json=PRESETS[preset][0])).raise_for_status()
            policy = await wait_until_done(c, "/v1/courses/big/policy", lambda body: body["recompute"]["status"])
            status = policy["recompute"]["status"]
            elapsed = time.perf_counter() - t0
        grades = (await c.get("/v1/courses/big/grades", params={"limit": 3})).json()["items"]
        print(f"preset={preset} learners={learners} scores={learners * 20} status={status}")
        print(f"raw COPY out of the scores: {copy_s:6.2f} s")
        print(
            f"policy PUT -> all grades recomputed and served: {elapsed:6.2f} s ({learners / elapsed:,.0f} learners/s)"
        )
        print(f"sample: {[(g['learner'], g['final']['percent'], g['final']['grade']) for g in grades]}")
        print(f"recompute_seconds={elapsed:.2f}")
        if status != "succeeded":  # a failed recompute is quick, not fast: no figure
            raise SystemExit(f"recompute {status}: {policy['recompute']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="standard")
    parser.add_argument("--learners", type=int, default=200_000)
    args = parser.parse_args()
    with api_server("gradeflow_bench_recompute") as server:
        env = {**os.environ, **server.env}
        asyncio.run(run(server.base_url, server.key, server.database_url, env, args.learners, args.preset))


if __name__ == "__main__":
    main()
