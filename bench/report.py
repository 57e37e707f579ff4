"""The report pipeline at size: the whole `grade_report` job, from the POST to succeeded, against a raw
`COPY (SELECT ...) TO STDOUT` of the same score rows timed in the same run; the worker's peak RSS;
the results XLSX rate; 1,000 individual PDFs zipped.

    .venv/bin/python -m bench.report [--learners 200000] [--skip-extras]

Last line: report_ratio=<job time / COPY time> peak_rss_mb=<n>. Goals: ratio <= 2.0 at 1,000,000
learners; peak RSS <= 500 MB and within 20 % between 200,000 and 1,000,000 learners; XLSX >= 20,000
rows/s; 1,000 individual PDFs in under 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import asyncpg
import httpx
import orjson

from bench.common import api_server, peak_rss_mb, wait_until_done, worker_process
from bench.recompute import CATEGORIES, POLICY, copy_baseline, create_course, insert_learners_and_scores

# A stored grade's explanation as the standard preset writes it for this policy (what counted, what was
# dropped, per category); each learner's category percents are random (the grade report reads them).
EXPLANATION = [
    {
        "name": name,
        "applied_weight": weight,
        "score": 0,
        "possible": 0,
        "dropped": [f"{name[:2]}{k}" for k in range(drop)],
        "counted": [f"{name[:2]}{k}" for k in range(drop, count)],
        "placeholders": 0,
    }
    for name, weight, count, drop in CATEGORIES
]


async def seed(c: httpx.AsyncClient, database_url: str, learners: int) -> None:
    """Assessments and the policy through the API (served at once: no learners yet); learners, 20 scores
    each and their stored grades with an explanation straight into the tables (set-up only)."""
    await create_course(c)
    (await c.put("/v1/courses/big/policy", json=POLICY)).raise_for_status()
    await wait_until_done(c, "/v1/courses/big/policy", lambda body: body["recompute"]["status"])
    conn = await asyncpg.connect(database_url)
    try:
        course = await insert_learners_and_scores(conn, learners)
        await conn.execute(
            """
            INSERT INTO course_grades (enrollment_id, policy_version, course_id, current_percent, current_grade,
                current_passed, final_percent, final_grade, final_passed, explanation, computed_at)
            SELECT e.id, 1, $1, p, 'B', true, p, 'B', true, jsonb_build_object('current', x, 'final', x), now()
            FROM (SELECT id, round((random() * 100)::numeric, 2) AS p FROM enrollments WHERE course_id = $1) e,
            LATERAL (  -- e.id in it: a percent per learner, not one for all
              SELECT jsonb_agg(c || jsonb_build_object('percent', round((random() * 100)::numeric, 2) + 0 * e.id)
                               ORDER BY k) AS x
              FROM jsonb_array_elements(CAST($2 AS jsonb)) WITH ORDINALITY AS t(c, k)) l
            """,
            course,
            orjson.dumps(EXPLANATION).decode(),
        )
        # Settled tables for both timings: hint bits and the visibility map written, nothing dirty (the first
        # read after a bulk insert otherwise pays for writing them, whichever read comes first).
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def timed_report(c: httpx.AsyncClient, kind: str, **params: Any) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    r = await c.post("/v1/courses/big/reports", json={"kind": kind, "params": params})
    r.raise_for_status()
    done = await wait_until_done(c, r.headers["location"], lambda body: body["status"])
    if done["status"] != "succeeded":
        raise RuntimeError(f"{kind}: {done}")
    return time.perf_counter() - t0, done


async def run(server: Any, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=120) as c:
        env = {**os.environ, **server.env}
        with worker_process(env) as worker:
            print(f"worker RSS at start: {peak_rss_mb(worker.pid):,.0f} MB")
            await seed(c, server.database_url, args.learners)
            first_copy_s = await copy_baseline(server.database_url)
            job_s, done = await timed_report(c, "grade_report")
            copy_s = min(first_copy_s, await copy_baseline(server.database_url))  # the faster one: the harder ratio
            rss = peak_rss_mb(worker.pid)
            print(f"learners={args.learners} score_rows={args.learners * 20}")
            print(f"raw COPY out of the score rows: {copy_s:7.2f} s (before and after the job: the faster)")
            size = f"{done['rows']:,} rows, {done['bytes'] / 1e6:,.1f} MB"
            print(f"grade_report job, POST to succeeded: {job_s:7.2f} s ({size})")
            print(f"worker peak RSS after the grade report: {rss:,.0f} MB")
            if not args.skip_extras:
                xlsx_s, xlsx = await timed_report(c, "results_xlsx", assessment="Ho0")
                rate = xlsx["rows"] / xlsx_s
                print(f"results_xlsx, one assessment: {xlsx['rows']:,} rows in {xlsx_s:.2f} s = {rate:,.0f} rows/s")
                zip_s, z = await timed_report(c, "individual_reports_zip", cohort="first-thousand")
                print(f"individual_reports_zip: {z['rows']:,} PDFs in {zip_s:.2f} s ({z['bytes'] / 1e6:.1f} MB)")
                rss = peak_rss_mb(worker.pid)
                print(f"worker peak RSS after all reports: {rss:,.0f} MB")
    print(f"report_ratio={job_s / copy_s:.2f} peak_rss_mb={rss:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=200_000)
    parser.add_argument("--skip-extras", action="store_true", help="only the grade report")
    args = parser.parse_args()
    with api_server("gradeflow_bench_report") as server:
        asyncio.run(run(server, args))


if __name__ == "__main__":
    main()
