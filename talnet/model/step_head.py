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

from talnet.config import STEP_VOTES
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
    probs: torch.Tensor,
    segments: torch.Tensor,
    margin: float = 0.25,
    outside: float = 1.0,
    columns: torch.Tensor | None = None,
    vote: str = "probs",
) -> torch.Tensor:
    """Per-step class probabilities (T, K) and segments (C, N, 2) in steps, one row per class ->
    (C, N): the row's class score over the segment's steps minus `outside` x its score over
    `margin` * length on each side, at least 0 (a segment that is a plateau, not part of one;
    `outside` > 1 ranks a segment that spills into, or sits inside, a longer run of its class
    lower still). Row c's class is column `columns[c]` of `probs` (default: column c).

    A window's score (`vote`): "probs", the mean probability of the class over its steps;
    "logprobs", the class's softmax share of the mean log-probability of every column (with the
    background among them): a linear head's logits averaged over the window, i.e. the linear
    classifier of the window's mean input, which stays sharp where each step's evidence is weak.
    """
    if vote not in STEP_VOTES:
        raise ValueError(f"vote: one of {STEP_VOTES}, not {vote!r}")
    length, width = probs.shape
    if columns is None:
        columns = torch.arange(width, device=probs.device)
    cols = columns.to(probs.device)[:, None]  # (C, 1)
    values = probs.float().clamp(min=1e-6).log() if vote == "logprobs" else probs.float()
    csum = torch.cat([values.new_zeros(1, width), values.cumsum(0)])  # (T + 1, K)

    def score(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        lo = lo.round().long().clamp(0, length - 1)
        hi = hi.round().long().clamp(0, length - 1).maximum(lo)
        count = (hi - lo + 1).float()
        if vote == "probs":
            return (csum[hi + 1, cols] - csum[lo, cols]) / count
        means = (csum[hi + 1] - csum[lo]) / count[..., None]  # (C, N, K)
        shares = torch.softmax(means, dim=-1)
        return shares.gather(-1, cols[..., None].expand(-1, lo.shape[1], 1)).squeeze(-1)

    start, end = segments[..., 0].float(), segments[..., 1].float()
    pad = (margin * (end - start)).clamp(min=1.0)
    inner = score(start, end)
    before, after = score(start - pad, start - 1), score(end + 1, end + pad)
    # a side outside the video has nothing to contrast with: the other side alone, or none
    has_before = ((start - 1).round() >= 0).float()
    has_after = ((end + 1).round() <= length - 1).float()
    sides = (has_before + has_after).clamp(min=1.0)
    outer = (before * has_before + after * has_after) / sides
    return (inner - outside * outer).clamp(min=0.0)
