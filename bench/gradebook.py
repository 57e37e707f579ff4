"""Gradebook page latency on a large course: pages of 100 learners with a filter and a sort, as an LMS
screen asks for them one after the other, against the plain stored-grades page (`GET .../grades`,
enrollment order, no filter) timed in the same run.

    .venv/bin/python -m bench.gradebook [--learners 200000] [--requests 60]

Last line: gradebook_p95_ms=<worst p95 of the filtered and sorted views> grades_p95_ms=<baseline>.
Goal: a page of 100 with a filter and a sort answers in under 100 ms p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import asyncpg
import httpx

from bench.common import api_server, percentile, worker_process
from bench.report import seed

VIEWS: list[tuple[str, dict[str, Any]]] = [
    ("by name (default)", {}),
    ("cohort, by grade descending", {"cohort": "rest", "sort": "-grade"}),
    ("grade range, by name", {"grade_min": 40, "grade_max": 60}),
    ("an assessment's score range, by it", {"assessment": "Ho1", "score_min": 50, "sort": "assessment:Ho1"}),
    ("search, by grade", {"search": "user12", "sort": "grade"}),
    ("absolute view, track, by name descending", {"view": "absolute", "track": "audit", "sort": "-name"}),
]


async def pages(c: httpx.AsyncClient, url: str, params: dict[str, Any], n: int) -> list[float]:
    """`n` requests walking the pages in order (back to the first page at the end)."""
    times, cursor = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        r = await c.get(url, params={**params, "limit": 100, **({"cursor": cursor} if cursor else {})})
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        cursor = r.json().get("next_cursor")
    return times


async def run(server: Any, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as c:
        with worker_process({**os.environ, **server.env}):
            await seed(c, server.database_url, args.learners)
        conn = await asyncpg.connect(server.database_url)
        try:  # the tracks a gradebook filters on
            await conn.execute("UPDATE enrollments SET track = 'verified' WHERE id % 3 = 0")
            await conn.execute("VACUUM (ANALYZE)")
        finally:
            await conn.close()
        await pages(c, "/v1/courses/big/gradebook", {}, 5)  # warm up
        base = await pages(c, "/v1/courses/big/grades", {}, args.requests)
        print(f"learners={args.learners}")
        print(
            f"baseline GET .../grades (stored grades, enrollment order): p50 {percentile(base, 50):6.1f} ms"
            f"  p95 {percentile(base, 95):6.1f} ms"
        )
        worst = 0.0
        for name, params in VIEWS:
            times = await pages(c, "/v1/courses/big/gradebook", params, args.requests)
            p95 = percentile(times, 95)
            worst = max(worst, p95)
            print(f"gradebook {name:52s} p50 {percentile(times, 50):6.1f} ms  p95 {p95:6.1f} ms")
    print(f"gradebook_p95_ms={worst:.0f} grades_p95_ms={percentile(base, 95):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    with api_server("gradeflow_bench_gradebook") as server:
        asyncio.run(run(server, args))


if __name__ == "__main__":
    main()
