"""Shared bench harness: the real stack, a fresh database and the API in a subprocess."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.devstack import infra, processes
from shared.db.migrate import upgrade


@dataclass
class Server:
    base_url: str
    key: str
    database_url: str
    env: dict[str, str]


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
            with processes.api(env, workers=workers, log=run_dir / "api.log") as base_url:
                yield Server(base_url, key, url, env)
        finally:
            asyncio.run(infra.drop_database(stack.database_admin_url, name))


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
