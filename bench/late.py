"""A late policy set on a stored canvas course, end to end: PUT the policy through the API (stored, its application
queued), the worker applies it (every result's deduction and late/missing status, set-based, in chunks of learners)
and refreshes every learner whose result changed, until the application is applied and no grade is stale. Baseline
in the same run: the grading policy PUT of bench.recompute on the same course (every grade recomputed and served).

The course: bench.recompute's canvas course (20 assessments in 4 weighted groups with drops) with due dates 10 days
ago; submissions spread from 3 days early to 3 days late (about half late, by up to 72 hours), 2 % never submitted
and unscored (missing).

    .venv/bin/python -m bench.late [--learners 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import asyncpg
import httpx

from bench.common import api_server, wait_until_done, worker_process
from bench.recompute import PRESETS, seed

LATE_POLICY = {
    "late_submission_deduction_enabled": True,
    "late_submission_deduction": "10",
    "late_submission_interval": "day",
    "late_submission_minimum_percent_enabled": True,
    "late_submission_minimum_percent": "50",
    "missing_submission_deduction_enabled": True,
    "missing_submission_deduction": "100",
}


async def lateness(database_url: str) -> None:
    """Due dates, submission times and missing work, straight into the tables (set-up only)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE assessments SET due_at = now() - interval '10 days'")
        await conn.execute(
            "UPDATE attempts t SET submitted_at = a.due_at + (random() * 6 - 3) * interval '1 day'"
            " FROM assessments a WHERE a.id = t.assessment_id"
        )
        await conn.execute(
            "UPDATE attempts SET status = 'to_be_taken', entered = NULL, possible = NULL, submitted_at = NULL,"
            " source = NULL WHERE random() < 0.02"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def stale(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM stale_grades")
        return n
    finally:
        await conn.close()


async def figures(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT coalesce(late_status, 'none') AS s, count(*) AS n FROM attempts GROUP BY 1")
        return {r["s"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def run(base_url: str, key: str, database_url: str, env: dict[str, str], learners: int) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as c:
        await seed(c, database_url, learners, "canvas")
        await lateness(database_url)
        with worker_process(env):
            t0 = time.perf_counter()
            (await c.put("/v1/courses/big/policy", json=PRESETS["canvas"][0])).raise_for_status()
            policy = await wait_until_done(c, "/v1/courses/big/policy", lambda body: body["recompute"]["status"])
            baseline = time.perf_counter() - t0
            if policy["recompute"]["status"] != "succeeded":
                raise SystemExit(f"recompute failed: {policy['recompute']}")
            t0 = time.perf_counter()
            put = await c.put("/v1/courses/big/late-policy", json=LATE_POLICY)
            put.raise_for_status()
            put_s = time.perf_counter() - t0
            status = put.json()["application"]["status"]
            late = await wait_until_done(c, "/v1/courses/big/late-policy", lambda body: body["application"]["status"])
            applied_s = time.perf_counter() - t0
            async with asyncio.timeout(600):
                while await stale(database_url):  # noqa: ASYNC110 (polling another process's work)
                    await asyncio.sleep(0.2)
            grades = (await c.get("/v1/courses/big/grades", params={"limit": 3})).json()["items"]
            elapsed = time.perf_counter() - t0
        counts = await figures(database_url)
        print(f"learners={learners} results={learners * 20} late/missing/none={counts}")
        print(f"baseline: grading policy PUT -> every grade recomputed and served: {baseline:6.2f} s")
        print(f"late policy PUT (stored, application queued: {status}): {put_s:6.2f} s")
        print(f"late policy PUT -> application {late['application']['status']} (every deduction and status, audit,")
        print(f"  stale marks, by the worker in chunks of learners): {applied_s:6.2f} s")
        print(f"late policy PUT -> no grade stale, grades served: {elapsed:6.2f} s")
        print(f"sample: {[(g['learner'], g['final']['percent'], g['final']['grade']) for g in grades]}")
        print(f"late_policy_seconds={elapsed:.2f} late_ratio={elapsed / baseline:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=200_000)
    args = parser.parse_args()
    with api_server("gradeflow_bench_late") as server:
        env = {**os.environ, **server.env}
        asyncio.run(run(server.base_url, server.key, server.database_url, env, args.learners))


if __name__ == "__main__":
    main()
