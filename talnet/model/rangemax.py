"""Exact max over many time ranges at once (sparse table), for tower and SoI pooling.

Arbitrary ranges (SoI pooling) go through a `RangeQuery`; K fixed windows slid over every step
(the towers' stride-1 pooling) go through `window_max`, which needs no per-length plan. A sparse
table holds the max over windows of 2^j steps for every start; any range [lo, hi] is
then the max of two overlapping power-of-two windows: O(log L) tensor ops and two row gathers,
no loop over ranges. Time is the second-to-last axis (channels last). Level j holds only the
T - 2^j + 1 windows that fit, so no level needs padding. The table is built without autograd
and only tracks where each max came from; the result is one gather of x at those positions, so
the backward pass is a single scatter instead of one per table level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RangeQuery:
    """Where in the flattened sparse table the two halves of each range [lo, hi] are.

    Depends only on the ranges and the length, so callers with fixed ranges (the towers' pooling)
    build it once per length and reuse it.
    """

    levels: int
    first: torch.Tensor  # (M,) row of the window starting at lo
    second: torch.Tensor  # (M,) row of the window ending at hi


def range_query(lo: torch.Tensor, hi: torch.Tensor, length: int) -> RangeQuery:
    """Plan max(x[lo[m] : hi[m] + 1]) for every m over a time axis of `length` steps.

    Requires 0 <= lo <= hi < length. The level of each range is floor(log2(span)), found in
    integers so that powers of two never round the wrong way.
    """
    span = hi - lo + 1
    levels = max(int(span.max()), 1).bit_length() if span.numel() else 1
    bounds = torch.tensor([1 << (j + 1) for j in range(levels)], device=span.device)
    level = (span[:, None] >= bounds[None, :]).sum(dim=1)
    sizes = [length - (1 << j) + 1 for j in range(levels)]
    offsets = torch.tensor([0, *sizes[:-1]], device=span.device).cumsum(0)[level]
    return RangeQuery(levels, offsets + lo, offsets + hi - (1 << level) + 1)


def range_max(
    x: torch.Tensor,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
    query: RangeQuery | None = None,
) -> torch.Tensor:
    """max(x[..., lo[m] : hi[m] + 1, :]) for every m: x (..., T, C) -> (..., M, C).

    Give either `lo` and `hi` or a prepared `query`. Differentiable in x (the gradient goes to
    the arg-max).
    """
    if query is None:
        query = range_query(lo, hi, x.shape[-2])
    if not (x.requires_grad and torch.is_grad_enabled()):
        return _range_max_values(x, query)  # inference: no positions to track
    return torch.gather(x, -2, range_argmax(x.detach(), query))


def _range_max_values(x: torch.Tensor, query: RangeQuery) -> torch.Tensor:
    tables = [x]
    for j in range(1, query.levels):
        shift = 1 << (j - 1)
        prev = tables[-1]
        tables.append(torch.maximum(prev[..., :-shift, :], prev[..., shift:, :]))
    flat = torch.cat(tables, dim=-2) if len(tables) > 1 else x  # (..., sum of sizes, C)
    return torch.maximum(flat.index_select(-2, query.first), flat.index_select(-2, query.second))


@torch.no_grad()
def range_argmax(x: torch.Tensor, query: RangeQuery) -> torch.Tensor:
    """Position along time of each range's max, per channel: (..., T, C) -> (..., M, C)."""
    length = x.shape[-2]
    pos = torch.arange(length, device=x.device).view(length, 1).expand(x.shape)
    values, where = [x], [pos]
    for j in range(1, query.levels):
        shift = 1 << (j - 1)
        v, p = values[-1], where[-1]
        take = v[..., :-shift, :] >= v[..., shift:, :]
        values.append(torch.where(take, v[..., :-shift, :], v[..., shift:, :]))
        where.append(torch.where(take, p[..., :-shift, :], p[..., shift:, :]))
    flat_v = torch.cat(values, dim=-2)
    flat_p = torch.cat(where, dim=-2)
    v1, v2 = flat_v.index_select(-2, query.first), flat_v.index_select(-2, query.second)
    p1, p2 = flat_p.index_select(-2, query.first), flat_p.index_select(-2, query.second)
    return torch.where(v1 >= v2, p1, p2)


def window_max(x: torch.Tensor, left: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """K stride-1 max poolings at once: x (..., T, C) -> (..., K, T, C), where output k at step
    t is the max of x over [t - left[k], t - left[k] + size[k] - 1] cut to [0, T).

    Inference takes each window as the max of two shifted slices of one sparse-table level over
    x padded with -inf: no index tensors, so nothing to rebuild for a new length, and the values
    equal `range_max`'s (a max is exact). With autograd it is `range_max` on the same ranges, so
    the gradient still goes to one arg-max per window.
    """
    length = x.shape[-2]
    if x.requires_grad and torch.is_grad_enabled():
        where = _window_argmax(x.detach(), left, size)  # (..., K, T, C)
        out = torch.gather(x, -2, where.flatten(-3, -2))
        return out.unflatten(-2, (len(left), length))
    pad_left = max(left)
    pad_right = max(n - 1 - a for a, n in zip(left, size, strict=True))
    tables = [_padded(x, pad_left, pad_right)]
    out = x.new_empty(*x.shape[:-2], len(left), length, x.shape[-1])
    for k, (a, n) in enumerate(zip(left, size, strict=True)):
        level = n.bit_length() - 1  # floor(log2(n)): two windows of 2^level cover n steps
        while len(tables) <= level:
            shift = 1 << (len(tables) - 1)
            prev = tables[-1]
            tables.append(torch.maximum(prev[..., :-shift, :], prev[..., shift:, :]))
        first = pad_left - a  # the padded row where step 0's window starts
        second = first + n - (1 << level)
        table = tables[level]
        torch.maximum(
            table[..., first : first + length, :],
            table[..., second : second + length, :],
            out=out[..., k, :, :],
        )
    return out


@torch.no_grad()
def _window_argmax(x: torch.Tensor, left: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """Where each of `window_max`'s windows has its max: (..., T, C) -> (..., K, T, C) steps.

    The first step holding the window's max (as `range_argmax` finds it, whatever the split
    into two power-of-two windows), from shifted slices of sparse tables of values and
    positions over x padded with -inf: no index tensors and no concatenated table."""
    length = x.shape[-2]
    pad_left = max(left)
    pad_right = max(n - 1 - a for a, n in zip(left, size, strict=True))
    steps = torch.arange(-pad_left, length + pad_right, device=x.device)
    values = [_padded(x, pad_left, pad_right)]
    places = [steps.clamp(0, length - 1).view(-1, 1)]  # a padded row never holds a max
    out = torch.empty(*x.shape[:-2], len(left), length, x.shape[-1], dtype=torch.long,
                      device=x.device)  # fmt: skip
    for k, (a, n) in enumerate(zip(left, size, strict=True)):
        level = n.bit_length() - 1
        while len(values) <= level:
            shift = 1 << (len(values) - 1)
            v, p = values[-1], places[-1]
            take = v[..., :-shift, :] >= v[..., shift:, :]  # ties: the earlier step
            values.append(torch.where(take, v[..., :-shift, :], v[..., shift:, :]))
            places.append(torch.where(take, p[..., :-shift, :], p[..., shift:, :]))
        first = pad_left - a
        second = first + n - (1 << level)
        v, p = values[level], places[level]
        take = v[..., first : first + length, :] >= v[..., second : second + length, :]
        out[..., k, :, :] = torch.where(
            take, p[..., first : first + length, :], p[..., second : second + length, :]
        )
    return out


def window_ranges(
    left: Sequence[int], size: Sequence[int], length: int, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last step (K, T) of each window of `window_max`, before cutting to [0, T)."""
    steps = torch.arange(length, device=device)
    lo = steps[None, :] - torch.tensor(list(left), device=device)[:, None]
    return lo, lo + torch.tensor(list(size), device=device)[:, None] - 1


def range_mean(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Mean of x (..., T, C) over each range [lo[m], hi[m]] of steps (0 <= lo <= hi < T), by
    differences of one cumulative sum: (..., M, C). Averaging, unlike the max, keeps a weak
    signal spread over many steps (low signal-to-noise features)."""
    zero = x.new_zeros(*x.shape[:-2], 1, x.shape[-1])
    csum = torch.cat([zero, x.cumsum(dim=-2)], dim=-2)  # (..., T + 1, C)
    total = csum.index_select(-2, hi + 1) - csum.index_select(-2, lo)
    return total / (hi - lo + 1).to(x.dtype)[:, None]


def window_mean(x: torch.Tensor, left: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """`window_max`'s windows averaged instead: x (..., T, C) -> (..., K, T, C), each window the
    mean over the steps of it inside [0, T)."""
    length = x.shape[-2]
    lo, hi = window_ranges(left, size, length, x.device)
    out = range_mean(x, lo.clamp(min=0).flatten(), hi.clamp(max=length - 1).flatten())
    return out.unflatten(-2, (len(left), length))


def _padded(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """x with `before` and `after` rows of -inf around its time axis (the max's identity)."""
    if before == after == 0:
        return x
    shape = (*x.shape[:-2], before + x.shape[-2] + after, x.shape[-1])
    out = x.new_full(shape, -float("inf"))
    out[..., before : before + x.shape[-2], :] = x
    return out
