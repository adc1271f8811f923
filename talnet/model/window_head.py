"""Window classifier (beyond the paper, docs/design.md §3): a linear classifier of a segment's
mean input features over a few parts of it and of its surroundings (by default the segment and
half its length before and after it: TAL-Net's context extension with one bin each), on all
streams side by side.

The proposal classifier (SoI bins, a hidden layer) memorizes a few dozen training videos; a
linear map of window means has a few thousand weights and is fitted after training at once, as
a convex problem, on every anchor window of every training video (talnet.train.window_refit).
Being linear, a window's logits are the mean of per-step projections: detection projects each
step once (window by window on a long video) and reads any segment's logits from prefix sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from talnet.config import DEFAULT_WINDOW_PARTS
from talnet.model.rangemax import range_mean

CHUNK = 4096  # segments whose logits are formed at once


def window_bounds(
    segments: torch.Tensor, length: int, parts: torch.Tensor | None = None
) -> torch.Tensor:
    """Segments (..., 2) in steps (step i covers [i - 0.5, i + 0.5]) and parts (P, 2) ->
    the half-open step ranges (..., P, 2) of each part: [lo + round(a L), lo + round(b L)) for
    a part (a, b) of a segment of steps [lo, lo + L); each at least one step long (a part
    before the segment grows backwards, any other forwards) and clipped to the video."""
    if parts is None:
        parts = torch.tensor(DEFAULT_WINDOW_PARTS)
    parts = parts.to(segments.device, torch.float64)
    lo = (segments[..., 0] + 0.5).round().long()
    hi = (segments[..., 1] + 0.5).round().long().maximum(lo + 1)
    span = (hi - lo)[..., None].double()  # (..., 1)
    starts = lo[..., None] + (parts[:, 0] * span).round().long()  # (..., P)
    ends = lo[..., None] + (parts[:, 1] * span).round().long()
    before = parts[:, 1] <= 0
    starts = torch.where(before, starts.minimum(ends - 1), starts)
    ends = torch.where(before, ends, ends.maximum(starts + 1))
    starts = starts.clamp(0, length - 1)
    ends = ends.clamp(1, length).maximum(starts + 1)
    return torch.stack([starts, ends], dim=-1)


def window_means(x: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Rows (T, D) and half-open ranges (..., 2) -> each range's mean row (..., D): `range_mean`
    in float64 (exact enough on hours of steps)."""
    flat = bounds.reshape(-1, 2)
    means = range_mean(x.double(), flat[:, 0], flat[:, 1] - 1)
    return means.to(x.dtype).view(*bounds.shape[:-1], x.shape[1])


class WindowClassifier(nn.Module):
    """The mean of (T, D) inputs over each part of a segment (`window_bounds`), side by side
    -> (C + 1) logits, linear."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        parts: Sequence[Sequence[float]] = DEFAULT_WINDOW_PARTS,
    ):
        super().__init__()
        self.in_dim = in_dim
        self.register_buffer("parts", torch.tensor(parts, dtype=torch.float64), persistent=False)
        width = len(parts) * in_dim
        # zeros (uniform probabilities) until fitted; made without drawing from torch's global
        # generator and kept out of gradient descent, so that the rest of the model trains
        # exactly as it would without this head
        self.linear = nn.Linear(width, num_classes + 1, device="meta")
        self.linear.weight = nn.Parameter(torch.zeros(num_classes + 1, width))
        self.linear.bias = nn.Parameter(torch.zeros(num_classes + 1))
        self.requires_grad_(False)

    @property
    def segment_part(self) -> int:
        """The index of the part that is the segment itself, [0, 1] (the edge regressor reads
        its per-step shares)."""
        for i, (a, b) in enumerate(self.parts.tolist()):
            if a == 0.0 and b == 1.0:
                return i
        raise ValueError("the window classifier has no part [0, 1] (model.window_parts)")

    def inputs(self, x: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """What the linear layer sees for segments (N, 2) of one video's inputs (T, D):
        (N, P * D), the parts' means side by side."""
        means = window_means(x, window_bounds(segments, x.shape[0], self.parts))  # (N, P, D)
        return means.flatten(-2)

    def step_projections(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step share of each part's logits (T, P, C + 1): x times each part's weights."""
        weight = self.linear.weight.view(-1, len(self.parts), self.in_dim)  # (C + 1, P, D)
        return torch.einsum("td,kpd->tpk", x.float(), weight.float())

    def logits(self, projections: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """Logits (..., C + 1) of segments (..., 2) from one video's `step_projections`
        (T, P, C + 1): the mean projection of each part over its range, summed, plus the
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
            bounds = window_bounds(block, length, self.parts)  # (n, P, 2)
            lo, hi = bounds[..., 0], bounds[..., 1]
            sums = csum[hi, index] - csum[lo, index]  # (n, P, C + 1)
            means = sums / (hi - lo)[..., None].double()
            out.append(means.sum(dim=1).float() + self.linear.bias.float())
        return torch.cat(out).view(*segments.shape[:-1], width)
