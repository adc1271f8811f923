"""SoI pooling: 1D RoI pooling of a feature map into a fixed number of bins per segment.

Vectorized over segments and bins (one gather, no Python loop over proposals). Positions are
feature steps: step i is the point i. Segments reaching outside the video see its edge values.
"""

from __future__ import annotations

import torch

from talnet.model.rangemax import range_max, range_mean


def extend_segments(segments: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Extend each [start, end] by ratio * length on both sides (context: l/2 each side)."""
    length = segments[:, 1] - segments[:, 0]
    return torch.stack([segments[:, 0] - ratio * length, segments[:, 1] + ratio * length], -1)


def soi_pool(
    features: torch.Tensor,
    segments: torch.Tensor,
    bins: int,
    mode: str = "interp",
    samples: int = 2,
) -> torch.Tensor:
    """Pool features (T, D) over segments (N, 2) -> (N, bins, D).

    "interp": each bin is the mean of `samples` linearly interpolated points evenly placed in
    it (differentiable in features and in the segment ends). "max": each bin is the exact max
    over the steps whose unit cells [i - 1/2, i + 1/2) it touches (at least one step); "mean":
    their exact mean, so a long bin averages all its steps instead of sampling a few.
    """
    t, d = features.shape
    n = segments.shape[0]
    start = segments[:, :1]  # (N, 1)
    length = (segments[:, 1:] - segments[:, :1]).clamp_min(1e-6)
    if mode == "interp":
        frac = torch.arange(bins * samples, device=features.device, dtype=features.dtype) + 0.5
        pos = (start + frac[None, :] / (bins * samples) * length).clamp(0, t - 1)  # (N, B*S)
        low = pos.detach().floor().long().clamp(max=t - 1)
        high = (low + 1).clamp(max=t - 1)
        weight = (pos - low.to(pos.dtype)).flatten()
        lo_vals = features.index_select(0, low.flatten())
        hi_vals = features.index_select(0, high.flatten())
        vals = lo_vals * (1 - weight[:, None]) + hi_vals * weight[:, None]  # (N*B*S, D)
        return vals.view(n, bins, samples, d).mean(dim=2)
    if mode in ("max", "mean"):
        edges = torch.arange(bins + 1, device=features.device, dtype=segments.dtype)
        bounds = start + edges[None, :] / bins * length  # (N, B+1)
        lo = torch.floor(bounds[:, :-1] + 0.5).long().clamp(0, t - 1)
        # the last cell a bin [x0, x1) overlaps is ceil(x1 - 1/2); at least the first one
        hi = torch.ceil(bounds[:, 1:] - 0.5).long().clamp(0, t - 1).maximum(lo)
        reduce = range_max if mode == "max" else range_mean
        return reduce(features, lo.flatten(), hi.flatten()).view(n, bins, d)
    raise ValueError(f"unknown SoI pooling mode {mode!r}")
