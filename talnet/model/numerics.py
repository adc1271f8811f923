"""CPU floating-point hygiene for the model: no subnormal floats in its weights or products."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def flush_denormals() -> bool:
    """Treat subnormal floats (|x| < 1.2e-38) as zero on this thread and on the intra-op
    threads torch starts after it (x86 FTZ / DAZ); True where the CPU supports it. Late in
    training, Adam and weight decay leave some weights subnormal (a fifth of a tower layer's
    after 13 epochs on 200 videos), and every product with one takes a slow microcode path:
    epochs and detection ran up to 15x slower (benchmarks/denormals.py). A value that small
    changes no score."""
    return torch.set_flush_denormal(True)


def subnormal_mask(tensor: torch.Tensor) -> torch.Tensor:
    """Where a floating-point tensor holds a subnormal value (non-zero, below the smallest
    normal one of its dtype)."""
    return (tensor != 0) & (tensor.abs() < torch.finfo(tensor.dtype).tiny)


@torch.no_grad()
def zero_subnormals(tensors: Iterable[torch.Tensor]) -> int:
    """Set the subnormal entries of floating-point `tensors` to zero in place; how many. The
    flag `flush_denormals` sets is per thread, and threads that torch started before it
    still compute with subnormal weights at the slow speed: with none left, none do."""
    count = 0
    for tensor in tensors:
        if tensor.is_floating_point():
            tiny = subnormal_mask(tensor)
            count += int(tiny.sum())
            tensor.masked_fill_(tiny, 0.0)
    return count
