"""Exact max over many time ranges at once (sparse table), for tower and SoI pooling.

A sparse table holds the max over windows of 2^j steps for every start; any range [lo, hi] is
then the max of two overlapping power-of-two windows: O(log L) tensor ops and two row gathers,
no loop over ranges. Time is the second-to-last axis (channels last), so gathers copy rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def range_max(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """max(x[..., lo[m] : hi[m] + 1, :]) for every m: x (..., T, C), lo/hi (M,) -> (..., M, C).

    Requires 0 <= lo <= hi < T. Differentiable in x (the gradient goes to the arg-max).
    """
    length = x.shape[-2]
    span = hi - lo + 1  # (M,)
    levels = max(int(span.max()), 1).bit_length()
    tables = [x]
    for j in range(1, levels):
        prev = tables[-1]
        shift = 1 << (j - 1)
        tables.append(torch.maximum(prev, F.pad(prev[..., shift:, :], (0, 0, 0, shift))))
    flat = torch.stack(tables, dim=-3).flatten(-3, -2)  # (..., J*T, C)
    # floor(log2(span)) in integers, so powers of two never round the wrong way
    bounds = torch.tensor([1 << (j + 1) for j in range(levels)], device=span.device)
    level = (span[:, None] >= bounds[None, :]).sum(dim=1)
    first = flat.index_select(-2, level * length + lo)
    second = flat.index_select(-2, level * length + hi - (1 << level) + 1)
    return torch.maximum(first, second)
