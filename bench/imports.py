"""CSV import of N score rows end to end (upload, worker validates and applies all rows in one
transaction), against raw asyncpg COPY of the same rows into the same table, in the same run.

    .venv/bin/python -m bench.imports [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx

from bench.common import api_server, wait_until_done, worker_process


async def run(base_url: str, key: str, database_url: str, env: dict[str, str], n: int) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as c:
        (await c.post("/v1/courses", json={"external_id": "imp", "title": "Import"})).raise_for_status()
        body = {"external_id": "hw1", "title": "HW", "category": "Homework", "points_possible": 100}
        (await c.post("/v1/courses/imp/assessments", json=body)).raise_for_status()
        for start in range(0, n, 10_000):
            rows = [{"external_id": f"u{i}"} for i in range(start, min(n, start + 10_000))]
            (await c.post("/v1/courses/imp/enrollments:batch", json={"enrollments": rows})).raise_for_status()
        conn = await asyncpg.connect(database_url)
        try:
            a_id = await conn.fetchval("SELECT id FROM assessments WHERE external_id = 'hw1'")
            e_ids = [r[0] for r in await conn.fetch("SELECT id FROM enrollments ORDER BY id")]
            now = datetime.now(UTC)
            records = [(a_id, e, "graded", Decimal(i % 101), Decimal(100), "manual", now) for i, e in enumerate(e_ids)]
            t0 = time.perf_counter()
            await conn.copy_records_to_table(
                "attempts",
                records=records,
                columns=["assessment_id", "enrollment_id", "status", "earned", "possible", "source", "scored_at"],
            )
            copy_s = time.perf_counter() - t0
            await conn.execute("TRUNCATE attempts CASCADE")
        finally:
            await conn.close()
        content = ("learner,assessment,earned\n" + "".join(f"u{i},hw1,{i % 101}\n" for i in range(n))).encode()
        with worker_process(env):
            t0 = time.perf_counter()
            r = await c.post("/v1/courses/imp/imports", files={"file": ("s.csv", content, "text/csv")})
            r.raise_for_status()
            state = await wait_until_done(c, r.headers["location"], lambda body: body["status"])
            elapsed = time.perf_counter() - t0
        print(f"rows={n} status={state['status']} created={state['result'].get('create')}")
        print(f"raw COPY of the same rows: {copy_s:6.2f} s")
        print(f"CSV import, upload to applied: {elapsed:6.2f} s ({n / elapsed:,.0f} rows/s)")
        print(f"import_seconds={elapsed:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with api_server("gradeflow_bench_imports") as server:
        asyncio.run(run(server.base_url, server.key, server.database_url, {**os.environ, **server.env}, args.rows))


if __name__ == "__main__":
    main()
