"""Keep freed memory in the process (glibc's malloc): a training step's activations reuse it page for page.

By default glibc gives every block above its mmap threshold back to the OS when freed and trims the heap top,
so each step's activations (a few MiB each) are mapped again and every page of them faults in anew: measured
as tests/unit/test_allocator.py does (10 CNN steps at batch 64, glibc's starting thresholds pinned), ~357,000
minor page faults, and 1,000-3,000 with this; a CPU step of ~52 ms instead of ~34 ms (2-core EPYC, torch 2.14).
Unpinned, glibc raises its thresholds as blocks are freed, so how much a process faults without this depends on
its heap's history (13,000-58,000 faults here, 2 on one CI machine). Raising both thresholds keeps those pages
mapped; the resident size stays at the step's own peak. Elsewhere (musl, macOS, Windows) there is no mallopt
and nothing changes.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest (HEAP_MAX / 2 on 64-bit); a batch-64 activation is ~8 MiB
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where there is no glibc mallopt."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
