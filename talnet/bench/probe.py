"""Shared timing helpers: a matrix-multiply GFLOP/s probe and a best-of-N timer."""

from __future__ import annotations

import time
from collections.abc import Callable


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """fp32 matrix-multiply throughput (GFLOP/s) of torch on this machine, right now.

    Printed beside every timing because this machine's speed drifts by about ±30%.
    """
    import torch

    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Best wall time in seconds of `fn()` over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    return min(_timed(fn) for _ in range(repeats))


def repeat_for(
    fn: Callable[[], object], seconds: float, warmup: int = 1, at_least: int = 5
) -> list[float]:
    """Wall times of `fn()` over as many runs as fit in `seconds` (at least `at_least`): fast
    cases get many samples, so the best and the median mean something on a noisy machine."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < at_least or time.perf_counter() < deadline:
        times.append(_timed(fn))
    return times


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def probe_line() -> str:
    """One line describing the machine's current speed and thread count."""
    import torch

    return (
        f"matmul probe: {matmul_gflops():.0f} GFLOP/s fp32, "
        f"torch threads: {torch.get_num_threads()}"
    )
