"""Edge regressor (beyond the paper, docs/design.md §3): a linear map from what the per-step
signals look like around a detection's start and end to how far each edge should move.

Around each edge of a segment of length L, the steps from -0.4 L to +0.4 L (model.edge_bins)
are cut into bins; each bin's mean of three per-step signals of the segment's class is an input:
the step head's probability of the class, its probability of any action (1 - background), and
the window classifier's per-step share of the class's logit over the background's on the
segment's own part (unsmoothed, where the step head averages over its context). Where an edge
sits inside a run of the class, the bins outside it still hold the class and the regressor moves
the edge out; a ramp's length shows as a slope across the bins. The outputs are the start's and
the end's offsets in units of L. Linear, so it is fitted after training at once, as a ridge
regression, on windows drawn around every training instance (talnet.train.edge_refit).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EDGE_CHANNELS = 3  # class probability, actionness, the window classifier's class share


def edge_signals(steps: torch.Tensor, shares: torch.Tensor) -> list[torch.Tensor]:
    """The regressor's per-step signals, each (T, C + 1) indexed by class column: the step
    head's probabilities `steps`, 1 - its background probability (the same in every column),
    and the window classifier's class-over-background logit `shares` (T, C + 1)."""
    action = (1.0 - steps[:, :1]).expand_as(steps)
    return [steps.float(), action.float(), (shares - shares[:, :1]).float()]


def edge_inputs(
    signals: Sequence[torch.Tensor],
    segments: torch.Tensor,
    columns: torch.Tensor,
    bins: torch.Tensor,
) -> torch.Tensor:
    """Segments (N, 2) in steps, each with its class column (N,) -> inputs (N, 2 x B x S): per
    edge (start, then end), per bin [bins[i], bins[i + 1]) x length around it, each signal's
    mean over the bin's steps (at least one step, clipped to the video)."""
    length = signals[0].shape[0]
    sums = [torch.cat([s.new_zeros(1, s.shape[1]), s.double().cumsum(0)]) for s in signals]
    span = (segments[:, 1] - segments[:, 0]).clamp(min=1.0).double()
    cols = columns.long()
    out = []
    for edge in (segments[:, 0].double(), segments[:, 1].double()):
        for a, b in zip(bins[:-1].tolist(), bins[1:].tolist(), strict=True):
            lo = (edge + a * span + 0.5).floor().long().clamp(0, length - 1)
            hi = (edge + b * span + 0.5).floor().long().clamp(1, length).maximum(lo + 1)
            count = (hi - lo).double()
            out.extend((csum[hi, cols] - csum[lo, cols]) / count for csum in sums)
    return torch.stack(out, dim=1).float()


class EdgeRegressor(nn.Module):
    """Inputs (`edge_inputs`) -> the start's and end's offsets (N, 2) in segment lengths,
    linear; zeros (no move) until fitted."""

    def __init__(self, bins: Sequence[float]):
        super().__init__()
        self.register_buffer("bins", torch.tensor(bins, dtype=torch.float64), persistent=False)
        width = 2 * (len(bins) - 1) * EDGE_CHANNELS
        # made without drawing from torch's global generator and kept out of gradient descent,
        # so that the rest of the model trains exactly as it would without this head
        self.linear = nn.Linear(width, 2, device="meta")
        self.linear.weight = nn.Parameter(torch.zeros(2, width))
        self.linear.bias = nn.Parameter(torch.zeros(2))
        self.requires_grad_(False)

    def inputs(
        self, signals: Sequence[torch.Tensor], segments: torch.Tensor, columns: torch.Tensor
    ) -> torch.Tensor:
        """`edge_inputs` with this regressor's bins."""
        return edge_inputs(signals, segments, columns, self.bins)

    def refine(
        self, signals: Sequence[torch.Tensor], segments: torch.Tensor, columns: torch.Tensor
    ) -> torch.Tensor:
        """Segments (N, 2) of class columns (N,) with both edges moved by the regressed offsets
        (times each segment's length), clipped to the video, at least half a step long."""
        if not len(segments):
            return segments
        offsets = self.linear(self.inputs(signals, segments, columns))
        span = (segments[:, 1] - segments[:, 0]).clamp(min=1.0)
        moved = segments.float() + offsets * span[:, None]
        last = signals[0].shape[0] - 0.5
        start = moved[:, 0].clamp(-0.5, last)
        end = moved[:, 1].clamp(-0.5, last).maximum(start + 0.5)
        return torch.stack([start, end], dim=1)
