"""Exact max over many time ranges at once (sparse table), for tower and SoI pooling.

A sparse table holds the max over windows of 2^j steps for every start; any range [lo, hi] is
then the max of two overlapping power-of-two windows: O(log L) tensor ops and two row gathers,
no loop over ranges. Time is the second-to-last axis (channels last). The table is built
without autograd and only tracks where each max came from; the result is one gather of x at
those positions, so the backward pass is a single scatter instead of one per table level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def range_max(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """max(x[..., lo[m] : hi[m] + 1, :]) for every m: x (..., T, C), lo/hi (M,) -> (..., M, C).

    Requires 0 <= lo <= hi < T. Differentiable in x (the gradient goes to the arg-max).
    """
    if not (x.requires_grad and torch.is_grad_enabled()):
        return _range_max_values(x, lo, hi)  # inference: no positions to track
    return torch.gather(x, -2, range_argmax(x.detach(), lo, hi))


def _range_max_values(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    length = x.shape[-2]
    levels, level = _levels(hi - lo + 1)
    tables = [x]
    for j in range(1, levels):
        shift = 1 << (j - 1)
        prev = tables[-1]
        tables.append(torch.maximum(prev, F.pad(prev[..., shift:, :], (0, 0, 0, shift))))
    flat = torch.stack(tables, dim=-3).flatten(-3, -2)  # (..., J*T, C)
    first = flat.index_select(-2, level * length + lo)
    return torch.maximum(first, flat.index_select(-2, level * length + hi - (1 << level) + 1))


def _levels(span: torch.Tensor) -> tuple[int, torch.Tensor]:
    """Table depth for the longest range, and floor(log2(span)) per range, in integers (so
    powers of two never round the wrong way)."""
    levels = max(int(span.max()), 1).bit_length()
    bounds = torch.tensor([1 << (j + 1) for j in range(levels)], device=span.device)
    return levels, (span[:, None] >= bounds[None, :]).sum(dim=1)


@torch.no_grad()
def range_argmax(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Position along time of max(x[..., lo[m] : hi[m] + 1, c]): (..., T, C) -> (..., M, C)."""
    length = x.shape[-2]
    levels, level = _levels(hi - lo + 1)
    pos = torch.arange(length, device=x.device).view(length, 1).expand(x.shape).contiguous()
    values, where = [x], [pos]
    for j in range(1, levels):
        shift = 1 << (j - 1)
        v, p = values[-1], where[-1]
        v_next = F.pad(v[..., shift:, :], (0, 0, 0, shift), value=float("-inf"))
        p_next = F.pad(p[..., shift:, :], (0, 0, 0, shift))
        take = v >= v_next
        values.append(torch.where(take, v, v_next))
        where.append(torch.where(take, p, p_next))
    flat_v = torch.stack(values, dim=-3).flatten(-3, -2)  # (..., J*T, C)
    flat_p = torch.stack(where, dim=-3).flatten(-3, -2)
    first = level * length + lo
    second = level * length + hi - (1 << level) + 1
    v1, v2 = flat_v.index_select(-2, first), flat_v.index_select(-2, second)
    p1, p2 = flat_p.index_select(-2, first), flat_p.index_select(-2, second)
    return torch.where(v1 >= v2, p1, p2)
