"""Per-step class head (beyond the paper, docs/design.md §3): every feature step classified
(C + 1 classes, 0 = background) from the classifier's reduced map and its centred means over a
few widths. Shared across time, it learns from every step of every training video, where the
proposal classifier learns from a few sampled proposals; its probabilities can then vote on a
detection's class score (the mean inside the segment against the mean just outside it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talnet.model.rangemax import window_mean

STEP_LOSS = "step_cls"  # its loss term's name in the losses and the training log


class StepClassifier(nn.Module):
    """(B, T, D) reduced map -> (B, T, C + 1) logits, from [x | centred means over widths]."""

    def __init__(self, dim: int, num_classes: int, widths: list[int]):
        super().__init__()
        self.left = [w // 2 for w in widths]
        self.widths = list(widths)
        self.linear = nn.Linear(dim * (1 + len(widths)), num_classes + 1)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.linear(self.inputs(fmap))

    def inputs(self, fmap: torch.Tensor) -> torch.Tensor:
        """What the linear layer sees: (B, T, D) -> (B, T, D * (1 + widths)), [x | means]."""
        parts = [fmap]
        if self.widths:
            means = window_mean(fmap, self.left, self.widths)  # (B, K, T, D)
            parts += list(means.unbind(dim=1))
        return torch.cat(parts, dim=-1)


def step_labels(segments: torch.Tensor, labels: torch.Tensor, length: int) -> torch.Tensor:
    """Per-step class (T,) from ground truth (G, 2) in steps and labels (G,) in 1..C; steps
    outside every segment are 0 (background); where segments overlap, the later one wins."""
    out = torch.zeros(length, dtype=torch.long, device=segments.device)
    steps = torch.arange(length, device=segments.device)
    for (start, end), label in zip(segments.tolist(), labels.tolist(), strict=True):
        out[(steps >= start) & (steps <= end)] = label
    return out


def step_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of per-step logits (T, C + 1) against per-step classes (T,)."""
    return F.cross_entropy(logits.float(), targets)


def contrast_scores(
    probs: torch.Tensor, segments: torch.Tensor, margin: float = 0.25, outside: float = 1.0
) -> torch.Tensor:
    """Per-step class probabilities (T, C) and segments (C, N, 2) in steps, one row per class ->
    (C, N): the mean probability of the row's class over the segment's steps minus `outside` x
    its mean over `margin` * length on each side, at least 0 (a segment that is a plateau, not
    part of one; `outside` > 1 ranks a segment that spills into, or sits inside, a longer run of
    its class lower still)."""
    length, classes = probs.shape
    csum = torch.cat([probs.new_zeros(1, classes), probs.float().cumsum(0)])  # (T + 1, C)
    rows = torch.arange(classes, device=probs.device)[:, None]

    def mean(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        lo = lo.round().long().clamp(0, length - 1)
        hi = hi.round().long().clamp(0, length - 1).maximum(lo)
        return (csum[hi + 1, rows] - csum[lo, rows]) / (hi - lo + 1)

    start, end = segments[..., 0].float(), segments[..., 1].float()
    pad = (margin * (end - start)).clamp(min=1.0)
    inner = mean(start, end)
    before, after = mean(start - pad, start - 1), mean(end + 1, end + pad)
    # a side outside the video has nothing to contrast with: the other side alone, or none
    has_before = ((start - 1).round() >= 0).float()
    has_after = ((end + 1).round() <= length - 1).float()
    sides = (has_before + has_after).clamp(min=1.0)
    outer = (before * has_before + after * has_after) / sides
    return (inner - outside * outer).clamp(min=0.0)
