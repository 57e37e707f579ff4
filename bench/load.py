"""Bounded load on loopback: 64 clients for 60 s mixing single-score writes, gradebook pages and
report requests against 2 API processes and a worker, with the per-key rate limit on (shared by the
two API processes through Redis). Clients that get 429 wait for Retry-After, as a well-behaved LMS
does. Any answer other than 2xx or a deliberate 429/503 with Retry-After counts as an error.

    .venv/bin/python -m bench.load [--learners 20000] [--clients 64] [--seconds 60] [--rate-limit 200/second]

Last line: load_errors=<n> p99_ms=<all requests> rps=<answered per second> rejected=<429 + 503>.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections import Counter, defaultdict

import httpx

from bench.common import Server, api_server, percentile, worker_process
from bench.recompute import CATEGORIES
from bench.report import seed

MIX = [("score", 0.75), ("gradebook", 0.245), ("report", 0.005)]
ASSESSMENTS = [f"{name[:2]}{k}" for name, _, count, _ in CATEGORIES for k in range(count)]


async def client(
    c: httpx.AsyncClient, learners: int, until: float, times: dict[str, list[float]], statuses: Counter[str]
) -> None:
    rng = random.Random()
    while time.monotonic() < until:
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        started = time.perf_counter()
        try:
            if kind == "score":
                a, u = rng.choice(ASSESSMENTS), rng.randrange(learners)
                r = await c.put(f"/v1/courses/big/assessments/{a}/scores/u{u}", json={"earned": rng.randrange(11)})
            elif kind == "gradebook":
                params = rng.choice([{}, {"sort": "-grade"}, {"cohort": "rest", "sort": "name"}])
                r = await c.get("/v1/courses/big/gradebook", params={**params, "limit": 100})
            else:
                r = await c.post("/v1/courses/big/reports", json={"kind": "grade_report"})
        except httpx.HTTPError as exc:
            statuses[f"{kind} {type(exc).__name__}"] += 1
            continue
        times[kind].append((time.perf_counter() - started) * 1000)
        statuses[f"{kind} {r.status_code}"] += 1
        if r.status_code in (429, 503):
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))


async def run(server: Server, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30, limits=limits) as c:
        with worker_process({**os.environ, **server.env}):
            await seed(c, server.database_url, args.learners)
            times: dict[str, list[float]] = defaultdict(list)
            statuses: Counter[str] = Counter()
            began = time.monotonic()
            until = began + args.seconds
            await asyncio.gather(*(client(c, args.learners, until, times, statuses) for _ in range(args.clients)))
            elapsed = time.monotonic() - began
    everything = [t for ts in times.values() for t in ts]
    print(f"learners={args.learners} clients={args.clients} seconds={args.seconds} rate_limit={args.rate_limit}")
    for kind, ts in sorted(times.items()):
        print(
            f"  {kind:10s} n={len(ts):6d} p50={percentile(ts, 50):7.1f} ms p95={percentile(ts, 95):7.1f} ms"
            f" p99={percentile(ts, 99):7.1f} ms"
        )
    print("  answers:", dict(sorted(statuses.items())))
    ok = {"200", "201", "202", "429", "503"}
    errors = sum(n for key, n in statuses.items() if key.split(" ", 1)[1] not in ok)
    rejected = sum(n for key, n in statuses.items() if key.endswith((" 429", " 503")))
    print(
        f"load_errors={errors} p99_ms={percentile(everything, 99):.1f} rps={len(everything) / elapsed:.0f}"
        f" rejected={rejected}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate-limit", default="200/second")
    args = parser.parse_args()
    with api_server("gradeflow_bench_load", workers=args.workers, rate_limit=args.rate_limit) as server:
        asyncio.run(run(server, args))


if __name__ == "__main__":
    main()
