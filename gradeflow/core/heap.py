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
    collections no longer walk it: otherwise a full collection pauses the API every few gradebook pages
    (bench/gradebook.py shows the pauses)."""
    gc.collect()
    gc.freeze()


def limit_malloc_arenas(arenas: int = 2) -> None:
    """At most `arenas` glibc malloc arenas (default: 8 per core). A report parses and builds chunks in
    several threads, and each thread's arena would keep what it freed, adding to the worker's peak RSS
    (bench/report.py). Nothing happens outside glibc."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(M_ARENA_MAX, arenas)
