"""`make run`: the whole service on one machine, until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

from services.devstack import infra, mailsink, processes
from shared.db.migrate import upgrade


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_dev() -> int:
    # SIGTERM (from a supervisor or `timeout`) stops everything the way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    run_dir = Path(os.environ.get("GRADEFLOW_RUN_DIR", ".run")).resolve()
    port = int(os.environ.get("PORT", "8000"))
    with infra.running(run_dir) as stack, ExitStack() as extras:
        env = {**os.environ, **stack.env(os.environ.get("GRADEFLOW_DATABASE_NAME", "gradeflow"))}
        # Webhook receivers on this machine are fine here (never in production unless allowed).
        env.setdefault("GRADEFLOW_WEBHOOKS__ALLOW_PRIVATE", '["127.0.0.0/8", "::1/128"]')
        mail_dir = run_dir / "mail"
        if "GRADEFLOW_SMTP_HOST" not in os.environ:  # no real SMTP server: keep the mail for a person to read
            smtp_port = extras.enter_context(mailsink.running(mailsink.Folder(mail_dir)))
            env |= {"GRADEFLOW_SMTP_HOST": "127.0.0.1", "GRADEFLOW_SMTP_PORT": str(smtp_port)}
        if "GRADEFLOW_DATABASE_URL" not in os.environ:
            asyncio.run(infra.create_database(stack.database_admin_url, "gradeflow"))
        upgrade(env["GRADEFLOW_DATABASE_URL"])
        key_file = run_dir / "dev-api-key"
        if "GRADEFLOW_BOOTSTRAP_API_KEY" not in env:
            if not key_file.exists():
                key_file.write_text("gfk_dev_" + secrets.token_urlsafe(24))
            env["GRADEFLOW_BOOTSTRAP_API_KEY"] = key_file.read_text().strip()
        procs = [processes.start(["api", "--port", str(port)], env), processes.start(["worker"], env)]
        deadline = time.monotonic() + 30
        while not infra.answers("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"\nGradeflow is running.\n  docs:        http://127.0.0.1:{port}/docs", flush=True)
        print(f"  dev API key: {env['GRADEFLOW_BOOTSTRAP_API_KEY']}", flush=True)
        if "GRADEFLOW_SMTP_HOST" not in os.environ:
            print(f"  e-mail:      kept as .eml files in {mail_dir}", flush=True)
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
