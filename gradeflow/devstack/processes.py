"""`gradeflow api` and `gradeflow worker` as child processes, for tests, benches and `make run`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gradeflow.devstack import infra


def start(command: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """`gradeflow <command>` with `env`; stderr (the JSON log lines) appended to `log`, or this
    process's own stderr without one."""
    args = [sys.executable, "-m", "gradeflow.cli", *command]
    if log is None:
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
    with open(log, "ab") as sink:  # the child has its own copy of the file from here on
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=sink)


def wait_for_port(proc: subprocess.Popen[bytes], port: int, seconds: float = 60) -> None:
    """Until the process answers on `port` (a ceiling, not a wait: a loaded machine starts it slowly)."""
    deadline = time.monotonic() + seconds
    while not infra.answers("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"`{' '.join(map(str, proc.args))}` did not start")  # type: ignore[arg-type]
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], seconds: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def api(env: dict[str, str], port: int | None = None, workers: int = 1, log: Path | None = None) -> Iterator[str]:
    """The API on `port` (a free one by default) until the block ends; yields its base URL."""
    port = port or infra.free_port()
    proc = start(["api", "--port", str(port), "--workers", str(workers)], env, log)
    try:
        wait_for_port(proc, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@contextmanager
def worker(env: dict[str, str], log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(["worker"], env, log)
    try:
        yield proc
    finally:
        stop(proc)
