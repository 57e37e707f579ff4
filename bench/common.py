"""Shared bench harness: the real stack, a fresh database and the API in a subprocess."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gradeflow.db.migrate import upgrade
from gradeflow.devstack import infra, processes

# The Canvas-like course both canvas benches grade: 4 assignment groups, 20 assessments (ids are the group
# name's first two letters and a number, as the standard benches name theirs), weights summing to 100 %.
# Every drop rule appears: drop_lowest with a never-drop assessment, drop_lowest with drop_highest, none.
# Each entry: (group, weight as a fraction, assessments, drop rules).
CANVAS_GROUPS: list[tuple[str, float, int, dict[str, Any]]] = [
    ("Homework", 0.25, 8, {"drop_lowest": 2, "never_drop": ["Ho3"]}),
    ("Quizzes", 0.25, 6, {"drop_lowest": 1, "drop_highest": 1}),
    ("Midterm", 0.2, 3, {}),
    ("Final", 0.3, 3, {}),
]
# Canvas's default grading scheme, highest first.
CANVAS_SCHEME = [
    ("A", 0.94), ("A-", 0.9), ("B+", 0.87), ("B", 0.84), ("B-", 0.8), ("C+", 0.77),
    ("C", 0.74), ("C-", 0.7), ("D+", 0.67), ("D", 0.64), ("D-", 0.61), ("F", 0.0),
]  # fmt: skip


def canvas_rules() -> dict[str, Any]:
    """The canvas preset's policy for CANVAS_GROUPS (without the catalogue: a course has its own)."""
    return {
        "preset": "canvas",
        "weighting": "categories",
        "categories": [{"name": n, "weight": w, **rules} for n, w, _, rules in CANVAS_GROUPS],
        "cutoffs": [{"grade": g, "min": m} for g, m in CANVAS_SCHEME],
    }


@dataclass
class Server:
    base_url: str
    key: str
    database_url: str
    env: dict[str, str]
    pid: int = 0  # the `gradeflow api` process (its workers are its children)

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the API's processes have used so far."""
        total = 0.0
        for line in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = line.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(line.parent.name), int(fields[1])
            if self.pid in (pid, ppid):
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


@contextmanager
def api_server(name: str, workers: int = 1, rate_limit: str = "") -> Iterator[Server]:
    """The stack, database `name` (recreated and migrated), and `gradeflow api` on a free port (no
    rate limit unless one is given: benches measure speed)."""
    run_dir = Path(".run") / "bench"
    with infra.running(run_dir) as stack:
        asyncio.run(infra.create_database(stack.database_admin_url, name, drop_first=True))
        url = stack.database_url(name)
        upgrade(url)
        key = "gfk_bench_" + secrets.token_urlsafe(16)
        env = {**os.environ, **stack.env(name), "GRADEFLOW_BOOTSTRAP_API_KEY": key, "GRADEFLOW_RATE_LIMIT": rate_limit}
        try:
            with _api(env, workers, run_dir / "api.log") as (base_url, pid):
                yield Server(base_url, key, url, env, pid)
        finally:
            asyncio.run(infra.drop_database(stack.database_admin_url, name))


@contextmanager
def _api(env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[str, int]]:
    """`gradeflow api` on a free port, as processes.api starts it, given more time to start (a loaded
    machine imports slowly)."""
    port = infra.free_port()
    proc = processes.start(["api", "--port", str(port), "--workers", str(workers)], env, log)
    try:
        processes.wait_for_port(proc, port, seconds=180)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        processes.stop(proc)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextmanager
def worker_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`gradeflow worker` running beside the API for the duration."""
    with processes.worker(env, log=Path(".run") / "bench" / "worker.log") as proc:
        time.sleep(2)  # start-up, not part of any figure
        yield proc


async def wait_until_done(client: Any, url: str, status_of: Any) -> dict[str, Any]:
    """Poll `url` as a client would until `status_of(body)` leaves queued/running (10 min at most)."""
    async with asyncio.timeout(600):
        while True:
            body: dict[str, Any] = (await client.get(url)).json()
            if status_of(body) not in ("queued", "running"):
                return body
            await asyncio.sleep(0.2)


def peak_rss_mb(pid: int) -> float:
    """A live process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


# A request by its number: (method, path, credential, content type, body).
Request = tuple[str, str, str, str, bytes]


async def drive(
    server: Server, numbers: range, clients: int, request_for: Callable[[int], Request]
) -> tuple[list[float], float]:
    """Send request_for(n) for every n from `clients` concurrent keep-alive connections: each writes its request
    and reads the answer on a plain asyncio stream (a load generator costing a fraction of the server's CPU per
    request, as asyncpg does in a raw baseline: on a small machine the client shares the cores with the server).
    Latencies and elapsed seconds."""
    url = urlsplit(server.base_url)
    latencies: list[float] = []
    counter = iter(numbers)

    async def one_client() -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            for n in counter:
                method, path, credential, content_type, body = request_for(n)
                request = (
                    f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {credential}\r\n"
                    f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                t0 = time.perf_counter()
                writer.write(request)
                answer = await reader.readuntil(b"\r\n\r\n")
                status = int(answer[9:12])
                length = int(answer.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                content = await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"{method} {path}: {status} {content[:300]!r}")
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[one_client() for _ in range(clients)])
    return latencies, time.perf_counter() - t0


def figures(name: str, latencies: list[float], elapsed: float, clients: int) -> float:
    p50, p95, p99 = (percentile(latencies, p) * 1000 for p in (50, 95, 99))
    rate = len(latencies) / elapsed
    print(
        f"{name} x{len(latencies)} at {clients} clients: p50={p50:.1f} ms p95={p95:.1f} ms p99={p99:.1f} ms "
        f"p99/p50={p99 / p50:.1f} ({rate:,.0f} req/s)"
    )
    return rate


async def mean_group(server: Server, kind: str) -> str:
    """Writes per group-commit statement of `kind` in the API process that answers /metrics (one of its workers),
    since it started, as text."""
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        text = (await client.get("/metrics")).text
    found = {
        sample.name.rsplit("_", 1)[1]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "gradeflow_group_commit_rows"
        for sample in family.samples
        if sample.labels.get("kind") == kind and sample.name.endswith(("_sum", "_count"))
    }
    return f"{found['sum'] / found['count']:.1f}" if found.get("count") else "no group"
