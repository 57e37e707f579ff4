"""Shared bench harness: the real stack, a fresh database and the API in a subprocess."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.devstack import infra
from shared.db.migrate import upgrade


@dataclass
class Server:
    base_url: str
    key: str
    database_url: str
    env: dict[str, str]


@contextmanager
def api_server(name: str, workers: int = 1) -> Iterator[Server]:
    """The stack, database `name` (recreated and migrated), and `gradeflow api` on a free port."""
    run_dir = Path(".run") / "bench"
    with infra.running(run_dir) as stack:
        asyncio.run(infra.create_database(stack.database_admin_url, name, drop_first=True))
        url = stack.database_url(name)
        upgrade(url)
        key = "gfk_bench_" + secrets.token_urlsafe(16)
        port = infra.free_port()
        env = {**os.environ, **stack.env(name), "GRADEFLOW_BOOTSTRAP_API_KEY": key}
        cmd = [sys.executable, "-m", "services.cli", "api", "--port", str(port), "--workers", str(workers)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(run_dir / "api.log", "ab"))  # noqa: SIM115
        try:
            deadline = time.monotonic() + 30
            while not infra.answers("127.0.0.1", port):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the API did not start")
                time.sleep(0.1)
            yield Server(f"http://127.0.0.1:{port}", key, url, env)
        finally:
            proc.terminate()
            proc.wait(15)
            asyncio.run(infra.drop_database(stack.database_admin_url, name))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextmanager
def worker_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`gradeflow worker` running beside the API for the duration."""
    log = open(Path(".run") / "bench" / "worker.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        time.sleep(2)  # start-up, not part of any figure
        yield proc
    finally:
        proc.terminate()
        proc.wait(15)


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
