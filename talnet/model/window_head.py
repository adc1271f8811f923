"""Window classifier (beyond the paper, docs/design.md §3): a linear classifier of a segment's
mean input features beside the means over half its length before and after it, TAL-Net's
context extension with one bin each, on all streams side by side.

The proposal classifier (SoI bins, a hidden layer) memorizes a few dozen training videos; a
linear map of window means has a few thousand weights and is fitted after training at once, as
a convex problem, on every anchor window of every training video (talnet.train.window_refit).
Being linear, a window's logits are the mean of per-step projections: detection projects each
step once (window by window on a long video) and reads any segment's logits from prefix sums.
"""

from __future__ import annotations

import torch
from torch import nn

PARTS = 3  # inside, before, after
CHUNK = 4096  # segments whose logits are formed at once


def window_bounds(segments: torch.Tensor, length: int) -> torch.Tensor:
    """Segments (..., 2) in steps (step i covers [i - 0.5, i + 0.5]) -> the half-open step
    ranges (..., 3, 2) of the segment, of half its length before it and of as much after it,
    each clipped to the video and at least one step long."""
    lo = (segments[..., 0] + 0.5).round().long()
    hi = (segments[..., 1] + 0.5).round().long().maximum(lo + 1)
    ctx = ((hi - lo) // 2).clamp(min=1)
    starts = torch.stack([lo, lo - ctx, hi], dim=-1).clamp(0, length - 1)
    ends = torch.stack([hi, lo, hi + ctx], dim=-1).clamp(1, length).maximum(starts + 1)
    return torch.stack([starts, ends], dim=-1)


def window_means(x: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Rows (T, D) and half-open ranges (..., 2) -> each range's mean row (..., D), from
    float64 prefix sums (exact enough on hours of steps)."""
    csum = torch.cat([x.new_zeros(1, x.shape[1], dtype=torch.float64), x.double().cumsum(0)])
    lo, hi = bounds[..., 0], bounds[..., 1]
    return ((csum[hi] - csum[lo]) / (hi - lo)[..., None].double()).to(x.dtype)


class WindowClassifier(nn.Module):
    """[inside mean | before mean | after mean] of (T, D) inputs -> (C + 1) logits, linear."""

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.in_dim = in_dim
        # zeros (uniform probabilities) until fitted; made without drawing from torch's global
        # generator and kept out of gradient descent, so that the rest of the model trains
        # exactly as it would without this head
        self.linear = nn.Linear(PARTS * in_dim, num_classes + 1, device="meta")
        self.linear.weight = nn.Parameter(torch.zeros(num_classes + 1, PARTS * in_dim))
        self.linear.bias = nn.Parameter(torch.zeros(num_classes + 1))
        self.requires_grad_(False)

    def inputs(self, x: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """What the linear layer sees for segments (N, 2) of one video's inputs (T, D):
        (N, 3 * D), the three means side by side."""
        means = window_means(x, window_bounds(segments, x.shape[0]))  # (N, 3, D)
        return means.flatten(-2)

    def step_projections(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step share of each part's logits (T, 3, C + 1): x times each part's weights."""
        weight = self.linear.weight.view(-1, PARTS, self.in_dim)  # (C + 1, 3, D)
        return torch.einsum("td,kpd->tpk", x.float(), weight.float())

    def logits(self, projections: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """Logits (..., C + 1) of segments (..., 2) from one video's `step_projections`
        (T, 3, C + 1): the mean projection of each part over its range, summed, plus the
        bias; equal to the linear layer on `inputs`, without forming the means of D columns."""
        length, parts, width = projections.shape
        csum = torch.cat(
            [projections.new_zeros(1, parts * width, dtype=torch.float64),
             projections.reshape(length, -1).double().cumsum(0)]
        ).view(length + 1, parts, width)  # fmt: skip
        flat = segments.reshape(-1, 2)
        out = []
        index = torch.arange(parts, device=projections.device)
        for block in flat.split(CHUNK):
            bounds = window_bounds(block, length)  # (n, 3, 2)
            lo, hi = bounds[..., 0], bounds[..., 1]
            sums = csum[hi, index] - csum[lo, index]  # (n, 3, C + 1)
            means = sums / (hi - lo)[..., None].double()
            out.append(means.sum(dim=1).float() + self.linear.bias.float())
        return torch.cat(out).view(*segments.shape[:-1], width)
