"""Keep freed memory for reuse (glibc): PyTorch on a CPU allocates and frees megabyte-sized
temporaries at every layer, and glibc's defaults hand each one to the OS (mmap / trim) and
page-fault it back in on the next call, on every layer of the TAL-Net head (`talnet bench
--only model` times the head).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 64 << 20  # blocks below 64 MB come from the heap, not a fresh mmap
TRIM_THRESHOLD = 256 << 20  # keep up to 256 MB of freed heap instead of returning it


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True if applied.

    A no-op where the C library is not glibc, and where the user set any MALLOC_*_ variable
    (their setting wins). The `talnet` command calls this once at start.
    """
    if not sys.platform.startswith("linux"):
        return False
    if any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
