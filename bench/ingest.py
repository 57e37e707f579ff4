"""Score ingest: the batch API against raw asyncpg COPY into the same table, in the same run; then
the single-score PUT against its physical limit: raw asyncpg doing the same durable work per request
(upsert the score, insert the audit entry, mark the learner's grade stale: one transaction, one
statement each) from 32 connections, and the API's PUT from 32 clients. The API writes the PUTs that reach it
together as one statement and one commit per group (gradeflow/db/grouped.py); the baseline keeps one transaction
per request, as the issue that set the goal defines it. The load generator (lean client, asyncpg) runs on uvloop,
as the API does.

    .venv/bin/python -m bench.ingest [--learners 20000] [--assessments 10] [--puts 10000] [--no-batch]
        [--workers 2] [--clients 32] [--client lean|aiohttp]

Last lines: ingest_ratio=<batch API rows/s / COPY rows/s> (goal >= 0.25) and
put_ratio=<API PUT/s / raw PUT/s> (goal >= 0.4, with the API's p99 <= 3x its p50).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import asyncpg
import httpx
import orjson
import uvloop

from bench.common import Request, Server, api_server, drive, figures, mean_group

BATCH = 10_000


async def setup(c: httpx.AsyncClient, learners: int, assessments: int) -> None:
    (await c.post("/v1/courses", json={"external_id": "bench", "title": "Bench"})).raise_for_status()
    for a in range(assessments):
        body = {"external_id": f"a{a}", "title": f"A{a}", "category": "Homework", "points_possible": 100}
        (await c.post("/v1/courses/bench/assessments", json=body)).raise_for_status()
    for start in range(0, learners, BATCH):
        rows = [{"external_id": f"u{i}"} for i in range(start, min(learners, start + BATCH))]
        (await c.post("/v1/courses/bench/enrollments:batch", json={"enrollments": rows})).raise_for_status()
    # With a policy, every score write also refreshes the learners' stored course grades.
    policy = {
        "categories": [{"name": "Homework", "weight": 1, "drop_lowest": 1}],
        "cutoffs": [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}],
    }
    (await c.put("/v1/courses/bench/policy", json=policy)).raise_for_status()


def score_rows(learners: int, assessments: int) -> list[tuple[int, int, int]]:
    return [(a, u, (u * 7 + a * 13) % 101) for u in range(learners) for a in range(assessments)]


async def batch_api(c: httpx.AsyncClient, rows: list[tuple[int, int, int]], concurrency: int) -> float:
    bodies = [
        orjson.dumps(
            {"scores": [{"assessment": f"a{a}", "learner": f"u{u}", "earned": e} for a, u, e in rows[i : i + BATCH]]}
        )
        for i in range(0, len(rows), BATCH)
    ]
    queue = list(enumerate(bodies))

    async def sender() -> None:
        while queue:
            n, body = queue.pop()
            r = await c.post(
                "/v1/courses/bench/scores:batch",
                content=body,
                headers={"content-type": "application/json", "Idempotency-Key": f"bench-{n}"},
            )
            r.raise_for_status()

    t0 = time.perf_counter()
    await asyncio.gather(*[sender() for _ in range(concurrency)])
    return time.perf_counter() - t0


async def raw_copy(database_url: str, rows: list[tuple[int, int, int]]) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        a_ids = dict(await conn.fetch("SELECT external_id, id FROM assessments"))
        e_ids = dict(await conn.fetch("SELECT external_id, id FROM enrollments"))
        now = datetime.now(UTC)
        records = [
            (a_ids[f"a{a}"], e_ids[f"u{u}"], "graded", Decimal(e), Decimal(100), "auto", "bench", now)
            for a, u, e in rows
        ]
        await conn.execute("TRUNCATE attempts CASCADE")
        t0 = time.perf_counter()
        for i in range(0, len(records), 100_000):
            await conn.copy_records_to_table(
                "attempts",
                records=records[i : i + 100_000],
                columns=[
                    "assessment_id",
                    "enrollment_id",
                    "status",
                    "entered",
                    "possible",
                    "source",
                    "scored_by",
                    "scored_at",
                ],
            )
        elapsed = time.perf_counter() - t0
        # Emptied for the API's turn, with statistics that say so: left with the 200,000 rows autovacuum may
        # have counted meanwhile, the planner's guesses swing a 10,000-row batch between 0.5 and 13 s.
        await conn.execute("TRUNCATE attempts CASCADE")
        await conn.execute("ANALYZE attempts")
        return elapsed
    finally:
        await conn.close()


# The durable work of one PUT (a score upserted, its audit entry, the learner's grade marked stale) in one
# statement, its own transaction: what the API's single write does, less everything that is not durable work.
_RAW_PUT = """
    WITH upsert AS (
      INSERT INTO attempts AS t (assessment_id, enrollment_id, status, entered, possible, source, scored_by, scored_at)
      VALUES ($1, $2, 'graded', $3, 100, 'auto', 'bench', now())
      ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET
        status = 'graded', entered = excluded.entered, possible = excluded.possible, source = excluded.source,
        scored_by = excluded.scored_by, scored_at = excluded.scored_at, updated_at = now()
      RETURNING t.id
    ), audited AS (
      INSERT INTO audit_log (organization_id, course_id, actor, action, learner, assessment, new)
      VALUES ($4, $5, 'bench', 'score.set', $6, $7, jsonb_build_object('earned', $3::numeric))
    )
    INSERT INTO stale_grades (enrollment_id, course_id) VALUES ($2, $5) ON CONFLICT DO NOTHING
"""


async def raw_put(database_url: str, total: int, clients: int, learners: int) -> tuple[list[float], float]:
    """The same PUTs as put_latency (same learners, assessments and scores), as raw statements from
    `clients` connections."""
    conns = [await asyncpg.connect(database_url) for _ in range(clients)]
    try:
        course_id, org = await conns[0].fetchrow("SELECT id, organization_id FROM courses WHERE external_id = 'bench'")
        a_ids = dict(await conns[0].fetch("SELECT external_id, id FROM assessments WHERE course_id = $1", course_id))
        e_ids = dict(await conns[0].fetch("SELECT external_id, id FROM enrollments WHERE course_id = $1", course_id))
        latencies: list[float] = []
        counter = iter(range(total))

        async def client(conn: asyncpg.Connection) -> None:
            for n in counter:
                assessment, learner = f"a{n % 3}", f"u{(n * 31) % learners}"
                t0 = time.perf_counter()
                await conn.execute(
                    _RAW_PUT, a_ids[assessment], e_ids[learner], Decimal(n % 100), org, course_id, learner, assessment
                )
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*[client(c) for c in conns])
        return latencies, time.perf_counter() - t0
    finally:
        for c in conns:
            await c.close()


async def put_latency(
    server: Server, total: int, clients: int, learners: int, client: str = "lean"
) -> tuple[list[float], float]:
    """Single-score PUTs from `clients` concurrent keep-alive connections: `lean` writes each request and
    reads its answer on a plain asyncio stream (a load generator costing a fraction of the server's CPU per
    request, as asyncpg does in raw_put: on a small machine the client shares the cores with the server),
    `aiohttp` through aiohttp's client."""
    if client == "aiohttp":
        return await _aiohttp_puts(server, total, clients, learners)
    return await drive(server, range(total), clients, score_put(server, learners))


def score_put(server: Server, learners: int) -> Callable[[int], Request]:
    """The n-th single-score PUT: one of three assessments, learners in a scattered order, a score from 0 to 99."""

    def put(n: int) -> Request:
        path = f"/v1/courses/bench/assessments/a{n % 3}/scores/u{(n * 31) % learners}"
        return "PUT", path, server.key, "application/json", orjson.dumps({"earned": n % 100})

    return put


async def _aiohttp_puts(server: Server, total: int, clients: int, learners: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    counter = iter(range(total))
    headers = {"Authorization": f"Bearer {server.key}", "content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(server.base_url, headers=headers, connector=connector) as session:

        async def client() -> None:
            for n in counter:
                url = f"/v1/courses/bench/assessments/a{n % 3}/scores/u{(n * 31) % learners}"
                t0 = time.perf_counter()
                async with session.put(url, data=orjson.dumps({"earned": n % 100})) as r:
                    await r.read()
                    r.raise_for_status()
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*[client() for _ in range(clients)])
        return latencies, time.perf_counter() - t0


async def run(server: Server, args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {server.key}"}
    ingest_ratio = None
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=120, limits=limits) as c:
        await setup(c, args.learners, args.assessments)
        if args.batch:
            rows = score_rows(args.learners, args.assessments)
            copy_s = await raw_copy(server.database_url, rows)
            api_s = await batch_api(c, rows, args.concurrency)
            copy_rate, api_rate = len(rows) / copy_s, len(rows) / api_s
            print(f"rows={len(rows)} batch_size={BATCH} concurrency={args.concurrency} api_workers={args.workers}")
            print(f"raw COPY:  {copy_s:7.2f} s  {copy_rate:10,.0f} rows/s")
            print(f"batch API: {api_s:7.2f} s  {api_rate:10,.0f} rows/s")
            ingest_ratio = api_rate / copy_rate
    # Tables as a running database has them (autovacuum vacuums and analyzes a while after a bulk load): without
    # statistics the planner takes the just-loaded enrollments and attempts for empty tables and scans a course's
    # enrollments for one learner, and autovacuum working through the batch's rows during the measurement would
    # take its CPU from both the raw and the API PUTs.
    conn = await asyncpg.connect(server.database_url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    # The raw connections close before the API's pools grow to the clients' number.
    await raw_put(server.database_url, 500, args.clients, args.learners)  # warm-up
    lat, elapsed = await raw_put(server.database_url, args.puts, args.clients, args.learners)
    raw_rate = figures("raw PUT (asyncpg, one statement)", lat, elapsed, args.clients)
    await put_latency(server, 500, args.clients, args.learners, args.client)  # warm-up
    cpu = server.cpu_seconds()
    lat, elapsed = await put_latency(server, args.puts, args.clients, args.learners, args.client)
    cpu = server.cpu_seconds() - cpu
    api_rate = figures(f"API PUT score ({args.workers} workers, {args.client} client)", lat, elapsed, args.clients)
    print(f"API CPU per PUT: {cpu / len(lat) * 1000:.2f} ms")
    print(f"PUTs per group commit (one API process, warm-up included): {await mean_group(server, 'score_put')}")
    if ingest_ratio is not None:
        print(f"ingest_ratio={ingest_ratio:.3f}")
    print(f"put_ratio={api_rate / raw_rate:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=20_000)
    parser.add_argument("--assessments", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--puts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--client", choices=("lean", "aiohttp"), default="lean", help="the PUT load generator (see put_latency)"
    )
    parser.add_argument("--no-batch", dest="batch", action="store_false", help="only the single PUT figures")
    args = parser.parse_args()
    with api_server("gradeflow_bench_ingest", workers=args.workers) as server:
        uvloop.run(run(server, args))


if __name__ == "__main__":
    main()
