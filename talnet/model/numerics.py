"""CPU floating-point mode for the model: subnormal floats flushed to zero."""

from __future__ import annotations

import torch


def flush_denormals() -> bool:
    """Treat subnormal floats (|x| < 1.2e-38) as zero in this process (x86 FTZ / DAZ); True
    where the CPU supports it. Late in training, Adam and weight decay leave some weights
    subnormal (a fifth of a tower layer's after 13 epochs on 200 videos), and every product
    with one takes a slow microcode path: epochs and detection ran up to 10x slower
    (benchmarks/denormals.py). A value that small changes no score."""
    return torch.set_flush_denormal(True)
