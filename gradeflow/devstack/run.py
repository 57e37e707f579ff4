"""`make run`: the whole service on one machine, until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from gradeflow.db.migrate import upgrade
from gradeflow.devstack import infra, mailsink, processes


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def environment(
    stack: infra.Stack, environ: Mapping[str, str], run_dir: Path, port: int, extras: ExitStack
) -> dict[str, str]:
    """The environment of the API and the worker: the stack's addresses, the database of
    GRADEFLOW_DATABASE_URL (created when missing) or `gradeflow` on the stack's server, a mail sink
    unless GRADEFLOW_SMTP_HOST is set (entered into `extras`), a free port for the worker's metrics,
    loopback webhook targets except the stack's own ports, and the dev API key."""
    url = environ.get("GRADEFLOW_DATABASE_URL") or stack.database_url(
        environ.get("GRADEFLOW_DATABASE_NAME", "gradeflow")
    )
    asyncio.run(infra.ensure_database(url))
    env = {**environ, **stack.env("gradeflow"), "GRADEFLOW_DATABASE_URL": url}
    if "GRADEFLOW_SMTP_HOST" not in environ:  # no real SMTP server: keep the mail for a person to read
        smtp_port = extras.enter_context(mailsink.running(mailsink.Folder(run_dir / "mail")))
        env |= {"GRADEFLOW_SMTP_HOST": "127.0.0.1", "GRADEFLOW_SMTP_PORT": str(smtp_port)}
    # Another checkout's `make run` may hold the default 9464: a free port, so both start.
    env.setdefault("GRADEFLOW_WORKER_METRICS_PORT", str(infra.free_port()))
    # Webhook receivers on this machine are fine here (never in production unless allowed), but not
    # the stack's own services: a subscription must not make the worker post to PostgreSQL, Redis,
    # SeaweedFS, the mail sink, the metrics or the API itself.
    env.setdefault("GRADEFLOW_WEBHOOKS__ALLOW_PRIVATE", '["127.0.0.0/8", "::1/128"]')
    own = {
        *stack.ports.values(),
        port,
        int(env.get("GRADEFLOW_SMTP_PORT", "25")),
        int(env["GRADEFLOW_WORKER_METRICS_PORT"]),
    }
    denied = set(json.loads(environ.get("GRADEFLOW_WEBHOOKS__DENY_PORTS", "[]"))) | own
    env["GRADEFLOW_WEBHOOKS__DENY_PORTS"] = json.dumps(sorted(denied - {0}))
    if "GRADEFLOW_BOOTSTRAP_API_KEY" not in env:
        key_file = run_dir / "dev-api-key"
        if not key_file.exists():
            infra.private_file(key_file, "gfk_dev_" + secrets.token_urlsafe(24))
        key_file.chmod(0o600)
        env["GRADEFLOW_BOOTSTRAP_API_KEY"] = key_file.read_text().strip()
    return env


def run_dev() -> int:
    # SIGTERM (from a supervisor or `timeout`) stops everything the way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    # What the stack writes (data, logs, mail, keys) is this user's alone, whatever the shell's umask.
    os.umask(0o077)
    run_dir = Path(os.environ.get("GRADEFLOW_RUN_DIR", ".run")).resolve()
    port = int(os.environ.get("PORT", "8000"))
    with infra.running(run_dir) as stack, ExitStack() as extras:
        env = environment(stack, os.environ, run_dir, port, extras)
        upgrade(env["GRADEFLOW_DATABASE_URL"])
        procs = [processes.start(["api", "--port", str(port)], env), processes.start(["worker"], env)]
        deadline = time.monotonic() + 30
        while not infra.answers("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"\nGradeflow is running.\n  docs:        http://127.0.0.1:{port}/docs", flush=True)
        print(f"  dev API key: {env['GRADEFLOW_BOOTSTRAP_API_KEY']}", flush=True)
        if env["GRADEFLOW_WORKER_METRICS_PORT"] != "0":
            print(
                f"  metrics:     http://127.0.0.1:{env['GRADEFLOW_WORKER_METRICS_PORT']}/metrics (worker)", flush=True
            )
        if "GRADEFLOW_SMTP_HOST" not in os.environ:
            print(f"  e-mail:      kept as .eml files in {run_dir / 'mail'}", flush=True)
        print("  Ctrl-C stops it.\n", flush=True)
        try:
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
    return 0
