"""The virtual environment with PyLTI1p3 2.0.0 for the compatibility guard, made on demand next to .venv and
reused while it holds that version (the two libraries share the module name `pylti1p3`, so never one venv)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = "PyLTI1p3==2.0.0"
VENV = ROOT / ".venv-lti-compat"
# Written last: a venv without it (an install cut short) is made again.
STAMP = VENV / ".installed"


@contextmanager
def _exclusive() -> Iterator[None]:
    """One maker at a time across processes (pytest-xdist workers, two test runs)."""
    with open(Path(tempfile.gettempdir()) / "gradeflow-lti-compat.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def python() -> Path:
    """The compat venv's interpreter, making the venv first when it is missing or holds something else.
    Raises CalledProcessError (with pip's output) when the package cannot be installed."""
    interpreter = VENV / "bin" / "python"
    with _exclusive():
        if STAMP.is_file() and STAMP.read_text() == PACKAGE and interpreter.exists():
            return interpreter
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, text=True)
        install = [str(interpreter), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PACKAGE]
        subprocess.run(install, check=True, capture_output=True, text=True, timeout=300)
        STAMP.write_text(PACKAGE)
    return interpreter
