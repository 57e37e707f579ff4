"""Start-up bootstrap, the CLI, and migrations matching the models."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import smtplib
import socket
import ssl
import stat
import time
import tomllib
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr, ValidationError

from gradeflow import cli
from gradeflow.api.main import create_app
from gradeflow.core.settings import Settings, get_settings
from gradeflow.db.migrate import check
from gradeflow.devstack import infra, run
from gradeflow.devstack.infra import free_port
from gradeflow.storage.s3 import open_store


async def test_bootstrap_key_is_ensured_at_startup(settings: Settings) -> None:
    secret = "gfk_bootstrap_for_tests_0123456789"
    app = create_app(
        settings.model_copy(update={"bootstrap_api_key": SecretStr(secret), "bootstrap_organization": "boot"})
    )
    for _ in range(2):  # a restart finds the key already there
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                r = await c.get("/v1/organization", headers={"Authorization": f"Bearer {secret}"})
                assert r.status_code == 200 and r.json()["slug"] == "boot"
                r = await c.get("/v1/api-keys", headers={"Authorization": f"Bearer {secret}"})
                assert [k["name"] for k in r.json()].count("bootstrap") == 1


async def test_bootstrap_key_creation_and_reinstatement_are_audited(settings: Settings) -> None:
    secret = "gfk_bootstrap_audit_" + secrets.token_hex(8)
    slug = "boot-" + secrets.token_hex(4)
    app = create_app(
        settings.model_copy(update={"bootstrap_api_key": SecretStr(secret), "bootstrap_organization": slug})
    )
    auth = {"Authorization": f"Bearer {secret}"}

    async def started() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/v1/audit", headers=auth)
            assert r.status_code == 200, r.text
            return [e for e in r.json()["items"] if e["action"].startswith("api_key.")]

    [created] = await started()
    assert created["action"] == "api_key.created" and created["actor"] == "gradeflow:bootstrap"
    assert created["new"]["role"] == "admin" and secret not in str(created)
    assert len(await started()) == 1  # found as it should be: nothing changed, nothing recorded
    transport = httpx.ASGITransport(app=app)
    async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.delete(f"/v1/api-keys/{created['new']['id']}", headers=auth)).status_code == 200
    *_, revoked, restored = await started()
    assert revoked["action"] == "api_key.revoked"
    assert restored["action"] == "api_key.restored" and restored["actor"] == "gradeflow:bootstrap"
    assert restored["old"]["revoked_at"] is not None and restored["new"]["revoked_at"] is None


async def test_a_bootstrap_key_that_could_never_authenticate_is_refused_at_startup(settings: Settings) -> None:
    for bad in ("not_an_api_key_but_long_enough_0123456789", "gfk_short"):
        with pytest.raises(ValidationError, match="GRADEFLOW_BOOTSTRAP_API_KEY must start with 'gfk_'") as caught:
            Settings(bootstrap_api_key=bad)
        assert bad not in str(caught.value)  # a mistyped secret is still a secret
        app = create_app(settings.model_copy(update={"bootstrap_api_key": SecretStr(bad)}))
        with pytest.raises(ValueError, match="GRADEFLOW_BOOTSTRAP_API_KEY"):
            async with LifespanManager(app):
                pass


async def test_cli_creates_organizations_and_keys(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], client: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("GRADEFLOW_DATABASE_URL", settings.database_url.get_secret_value())
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(cli.main, ["create-org", "cli-org", "--name", "CLI Org"]) == 0
        assert await asyncio.to_thread(cli.main, ["create-org", "cli-org"]) == 1
        capsys.readouterr()
        assert await asyncio.to_thread(cli.main, ["create-key", "cli-org", "--role", "admin"]) == 0
        secret = capsys.readouterr().out.strip()
    finally:
        get_settings.cache_clear()
    r = await client.get("/v1/organization", headers={"Authorization": f"Bearer {secret}"})
    assert r.json()["name"] == "CLI Org"


async def test_migrations_match_models(settings: Settings) -> None:
    await asyncio.to_thread(check, settings.async_database_url)


# --- `make run` -----------------------------------------------------------------------------------


def _listening(port: int) -> list[str]:
    """The addresses a TCP socket listens on at `port` on this machine (from /proc/net/tcp, tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                if len(address) == 8:
                    found.append(str(ipaddress.IPv4Address(bytes.fromhex(address)[::-1])))
                else:
                    found.append(address)
    return found


async def test_worker_metrics_listen_on_loopback_only(settings: Settings) -> None:
    """The worker's Prometheus endpoint used to listen on every interface (0.0.0.0:9464)."""
    from gradeflow.worker.main import shutdown, startup

    port = free_port()
    ctx: dict[str, Any] = {"settings": settings.model_copy(update={"worker_metrics_port": port})}
    await startup(ctx)
    try:
        assert _listening(port) == ["127.0.0.1"]
        async with httpx.AsyncClient() as http:
            assert "gradeflow" in (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await shutdown(ctx)


async def test_make_run_uses_the_database_of_the_url_a_free_metrics_port_and_private_files(
    stack: infra.Stack, tmp_path: Path
) -> None:
    """`make run` used to ignore the database name of GRADEFLOW_DATABASE_URL, bind the worker's
    metrics to 9464 (a second `make run` on the machine died), offer the stack's own services as
    webhook targets and leave its mail and key readable by everyone."""
    name = f"gradeflow_make_run_{os.getpid()}"
    url = stack.database_url(name)
    await infra.drop_database(stack.database_admin_url, name)
    run_dir = infra.private_dir(tmp_path / "run")
    with contextlib.ExitStack() as extras:
        env = await asyncio.to_thread(run.environment, stack, {"GRADEFLOW_DATABASE_URL": url}, run_dir, 8123, extras)
        try:
            assert env["GRADEFLOW_DATABASE_URL"] == url
            conn = await asyncpg.connect(url)  # created, as README says
            assert await conn.fetchval("SELECT current_database()") == name
            await conn.close()
            metrics = int(env["GRADEFLOW_WORKER_METRICS_PORT"])
            assert metrics not in (0, 9464) and not _listening(metrics)
            smtp = int(env["GRADEFLOW_SMTP_PORT"])
            denied = set(json.loads(env["GRADEFLOW_WEBHOOKS__DENY_PORTS"]))
            assert {8123, smtp, metrics, 5432, 6379, *stack.ports.values()} <= denied
            with smtplib.SMTP("127.0.0.1", smtp, timeout=5) as sink:
                sink.sendmail("a@example.org", ["ann@example.org"], b"Subject: results\r\n\r\nA+\r\n")
            key = run_dir / "dev-api-key"
            assert key.read_text().startswith("gfk_dev_") and env["GRADEFLOW_BOOTSTRAP_API_KEY"] == key.read_text()
            mail = run_dir / "mail"
            [message] = list(mail.iterdir())
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (run_dir, mail, message, key)}
            assert modes == {"run": 0o700, "mail": 0o700, message.name: 0o600, "dev-api-key": 0o600}
        finally:
            await infra.drop_database(stack.database_admin_url, name)


def _h2_settings(port: int, tls: ssl.SSLContext | None) -> bool:
    """Whether the port answers an HTTP/2 (gRPC) client's preface with its SETTINGS frame."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            tls.wrap_socket(raw, server_hostname="127.0.0.1") if tls else contextlib.nullcontext(raw) as sock,
        ):
            sock.sendall(preface)
            frame = sock.recv(9)
    except (OSError, ssl.SSLError):
        return False
    return len(frame) == 9 and frame[3] == 4


async def test_make_run_storage_serves_objects_only_through_signed_s3(stack: infra.Stack, settings: Settings) -> None:
    """SeaweedFS's filer, master, volume and gRPC ports used to serve every object to anyone on the
    machine, unsigned. Each port the dev stack opens is tried without credentials (nothing), and
    with this run's keys and certificate (it answers: the unsigned refusal is not a dead port)."""
    assert stack.run_dir is not None and stack.s3, "the tests' stack runs its own SeaweedFS"
    marker = b"RESULTS-" + secrets.token_hex(8).encode()
    key = f"devstack-probe/{secrets.token_hex(4)}.csv"
    path = stack.run_dir.parent / f"{secrets.token_hex(4)}.csv"
    path.write_bytes(marker)
    async with open_store(settings.s3) as store:
        async with store.upload(key, "text/csv") as upload:
            await upload.finish(path)
        assert await store.get_bytes(key) == marker  # signed S3: the one way in
    bucket = settings.s3.bucket
    conf = stack.run_dir / "seaweedfs-conf"
    weed = {k: v for k, v in stack.ports.items() if k not in ("postgresql", "redis")}
    # Every TCP port SeaweedFS listens on is one the stack knows (and checks below).
    assert _ports_of(_process_with(f"-s3.port={weed['s3.port']}")) == set(weed.values())
    # No process but this user's may open the keys, certificates or the S3 credentials.
    for p in (stack.run_dir, conf, *conf.iterdir(), stack.run_dir / "s3.json", stack.run_dir / "seaweedfs.log"):
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
    paths = [f"/{bucket}/{key}", f"/buckets/{bucket}/{key}", f"/buckets/{bucket}/", "/dir/lookup?volumeId=1", "/"]
    async with httpx.AsyncClient(timeout=5) as http:
        for port_name, port in weed.items():
            if port_name.endswith(".grpc"):
                continue
            for p in paths:
                r = await http.get(f"http://127.0.0.1:{port}{p}")
                assert marker not in r.content and not (r.status_code == 200 and p.endswith(key)), (port_name, p)
        assert (await http.get(f"http://127.0.0.1:{weed['s3.port']}/{bucket}/{key}")).status_code == 403
        filer = f"http://127.0.0.1:{weed['filer.port']}/buckets/{bucket}/{key}"
        assert (await http.get(filer)).status_code == 401
        security = tomllib.loads((conf / "security.toml").read_text())
        token = jwt.encode({"exp": int(time.time()) + 60}, security["jwt"]["filer_signing"]["read"]["key"], "HS256")
        signed = await http.get(filer, headers={"Authorization": f"Bearer {token}"})
        assert signed.status_code == 200 and signed.content == marker
    ours = ssl.create_default_context(cafile=conf / "ca.crt")
    ours.load_cert_chain(conf / "weed.crt", conf / "weed.key")
    ours.set_alpn_protocols(["h2"])
    stranger = ssl.create_default_context()
    stranger.check_hostname, stranger.verify_mode = False, ssl.CERT_NONE
    stranger.set_alpn_protocols(["h2"])
    for port_name, port in weed.items():
        if port_name.endswith(".grpc"):
            assert not await asyncio.to_thread(_h2_settings, port, None), port_name  # plaintext
            assert not await asyncio.to_thread(_h2_settings, port, stranger), port_name  # TLS, no certificate
            assert await asyncio.to_thread(_h2_settings, port, ours), port_name
    # The master hands out read tokens for any file: HTTPS, and only to this run's certificate.
    master = f"https://127.0.0.1:{weed['master.port']}/dir/lookup?volumeId=1"
    async with httpx.AsyncClient(verify=stranger, timeout=5) as http:
        with pytest.raises((httpx.TransportError, ssl.SSLError)):
            await http.get(master)
    async with httpx.AsyncClient(verify=ours, timeout=5) as http:
        assert (await http.get(master)).status_code in (200, 404)


def _process_with(argument: str) -> Path:
    """The /proc folder of the one process whose command line has `argument`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if argument.encode() in (proc / "cmdline").read_bytes().split(b"\0"):
                found.append(proc)
    [proc] = found
    return proc


def _ports_of(proc: Path) -> set[int]:
    """The TCP ports process `proc` listens on (its socket inodes matched in /proc/net/tcp, tcp6)."""
    inodes = {os.readlink(fd)[8:-1] for fd in (proc / "fd").iterdir() if os.readlink(fd).startswith("socket:[")}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].split(":")[1], 16))
    return ports
