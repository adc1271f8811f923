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

With model.edge_stages > 1 it is a cascade, as Cascade R-CNN refines boxes: each stage reads the
bins around the edges the previous stages left and moves them again, and is fitted on the
training windows as those stages moved them. A first stage fitted on wide jitter reaches
far-off edges coarsely; the next, fitted on what remains, places them finely.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
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
    """Inputs (`edge_inputs`) -> the start's and end's offsets (N, 2) in segment lengths, per
    stage, linear; zeros (no move) until fitted. Stage k's map is rows 2k, 2k + 1 of one linear
    layer, so a one-stage regressor keeps the (2, F) layer it always had."""

    def __init__(self, bins: Sequence[float], stages: int = 1):
        super().__init__()
        self.register_buffer("bins", torch.tensor(bins, dtype=torch.float64), persistent=False)
        self.stages = stages
        width = 2 * (len(bins) - 1) * EDGE_CHANNELS
        # made without drawing from torch's global generator and kept out of gradient descent,
        # so that the rest of the model trains exactly as it would without this head
        self.linear = nn.Linear(width, 2 * stages, device="meta")
        self.linear.weight = nn.Parameter(torch.zeros(2 * stages, width))
        self.linear.bias = nn.Parameter(torch.zeros(2 * stages))
        self.requires_grad_(False)

    def inputs(
        self, signals: Sequence[torch.Tensor], segments: torch.Tensor, columns: torch.Tensor
    ) -> torch.Tensor:
        """`edge_inputs` with this regressor's bins."""
        return edge_inputs(signals, segments, columns, self.bins)

    def set_stage(self, stage: int, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Stage `stage`'s fitted map: weight (2, F), bias (2,)."""
        rows = slice(2 * stage, 2 * stage + 2)
        with torch.no_grad():
            self.linear.weight[rows] = weight.to(self.linear.weight)
            self.linear.bias[rows] = bias.to(self.linear.bias)

    def refine(
        self,
        signals: Sequence[torch.Tensor],
        segments: torch.Tensor,
        columns: torch.Tensor,
        stages: int | None = None,
    ) -> torch.Tensor:
        """Segments (N, 2) of class columns (N,) with both edges moved by each of the first
        `stages` stages (default: all) in turn (`move`)."""
        moved = segments.float()
        for stage in range(self.stages if stages is None else stages):
            moved = self.move(signals, moved, columns, stage)
        return moved

    def move(
        self,
        signals: Sequence[torch.Tensor],
        segments: torch.Tensor,
        columns: torch.Tensor,
        stage: int,
    ) -> torch.Tensor:
        """Segments (N, 2) with both edges moved by stage `stage`'s regressed offsets times the
        segment's length, clipped to the video, at least half a step long."""
        if not len(segments):
            return segments
        rows = slice(2 * stage, 2 * stage + 2)
        weight, bias = self.linear.weight[rows], self.linear.bias[rows]
        offsets = F.linear(self.inputs(signals, segments, columns), weight, bias)
        span = (segments[:, 1] - segments[:, 0]).clamp(min=1.0)
        moved = segments.float() + offsets * span[:, None]
        last = signals[0].shape[0] - 0.5
        start = moved[:, 0].clamp(-0.5, last)
        end = moved[:, 1].clamp(-0.5, last).maximum(start + 0.5)
        return torch.stack([start, end], dim=1)
