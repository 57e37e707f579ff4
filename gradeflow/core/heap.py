"""Process start-up: keep the garbage collector off what lives as long as the process, and (worker) keep
glibc from holding freed memory in an arena per thread."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc

M_ARENA_MAX = -8  # glibc's mallopt parameter


def freeze_startup_objects() -> None:
    """Move what start-up made (modules, models, settings, pools) to the permanent generation, so full
    collections no longer walk it. Without this, a full collection paused the API for 100-250 ms every
    few gradebook pages (bench/gradebook.py)."""
    gc.collect()
    gc.freeze()


def limit_malloc_arenas(arenas: int = 2) -> None:
    """At most `arenas` glibc malloc arenas (default: 8 per core). A report parses and builds chunks in
    several threads; each thread's arena kept what it had freed, about 50 MB of the worker's peak RSS
    at 1,000,000 learners (bench/report.py). Nothing happens outside glibc."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(M_ARENA_MAX, arenas)
