"""Boundary head (beyond the paper, docs/design.md §3): per-step probabilities that an action
starts, ends or is under way at a feature step, as boundary-sensitive methods (BSN, BMN) learn
them. Detection uses them to snap a detection's edges onto the most likely start and end near
them, and to propose the runs of high actionness that no anchor fits (very long actions).

Step i is the point i, as for anchors (talnet.model.anchors). A ground truth [s, e] marks as
"start" the steps within max(1, region * (e - s)) of s, as "end" those near e, and as
"actionness" the steps inside it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talnet.config import ProposalConfig
from talnet.model.rangemax import window_mean

BOUNDARY_LOSS = "boundary"  # its loss term's name in the losses and the training log
START, END, ACTIONNESS = 0, 1, 2  # channels of the head's output


class BoundaryHead(nn.Module):
    """(B, T, C) -> (B, T, 3) logits of start, end and actionness: a 1x1 reduction, then
    residual kernel-3 convolutions with growing dilations (receptive field 1 + 4 * sum)."""

    def __init__(self, in_dim: int, width: int, dilations: list[int]):
        super().__init__()
        self.reduce = nn.Linear(in_dim, width)
        self.convs = nn.ModuleList(
            nn.Conv1d(width, width, 3, padding=d, dilation=d) for d in dilations
        )
        self.out = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.reduce(x)).transpose(1, 2)  # (B, W, T)
        for conv in self.convs:
            h = h + torch.relu(conv(h))
        return self.out(h.transpose(1, 2))


def boundary_targets(segments: torch.Tensor, length: int, region: float) -> torch.Tensor:
    """Ground truth (G, 2) in steps -> per-step targets (T, 3) in {0, 1}: start, end, inside."""
    steps = torch.arange(length, dtype=torch.float32, device=segments.device)[:, None]  # (T, 1)
    if segments.numel() == 0:
        return torch.zeros(length, 3, device=segments.device)
    start, end = segments[:, 0].float()[None], segments[:, 1].float()[None]  # (1, G)
    half = torch.clamp(region * (end - start), min=1.0)
    near_start = ((steps - start).abs() <= half).any(dim=1)
    near_end = ((steps - end).abs() <= half).any(dim=1)
    inside = ((steps >= start) & (steps <= end)).any(dim=1)
    return torch.stack([near_start, near_end, inside], dim=1).float()


def boundary_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Class-balanced binary cross-entropy (BSN's), averaged over the three channels: positives
    and negatives of a channel weigh half each, so rare boundary steps are not drowned out."""
    total = logits.new_zeros(())
    for channel in range(3):
        y, z = targets[:, channel], logits[:, channel].float()
        positives = y.sum()
        if positives == 0 or positives == y.numel():
            total = total + F.binary_cross_entropy_with_logits(z, y)
            continue
        weight = torch.where(y > 0, 0.5 / positives, 0.5 / (y.numel() - positives))
        total = total + (weight * F.binary_cross_entropy_with_logits(z, y, reduction="none")).sum()
    return total / 3


def snap_edges(
    segments: torch.Tensor,
    probs: torch.Tensor,
    reach: float,
    min_prob: float,
    centroid: bool = False,
) -> torch.Tensor:
    """Segments (..., 2) in steps, per-step probabilities (T, 3) -> segments whose start (end)
    moved to the step of highest start (end) probability within `reach` * length of it, where
    that probability is at least `min_prob`; an edge with no such step, or a move that would
    leave the segment empty, stays where it was. With `centroid`, the edge moves to the
    probability-weighted centre of the peak's run of steps above half its height instead: the
    head learns a plateau around each true edge (`boundary_targets`), whose centre is the edge
    and whose highest step is anywhere on it."""
    shape = segments.shape
    flat = segments.reshape(-1, 2).float()
    if flat.numel() == 0:
        return segments
    length = probs.shape[0]
    span = (flat[:, 1] - flat[:, 0]).clamp(min=1.0)
    radius = torch.clamp(reach * span, min=1.0).ceil()  # (M,)
    width = int(2 * radius.max().item()) + 1
    offsets = torch.arange(width, device=flat.device, dtype=flat.dtype)  # (W,)
    moved = []
    for column, channel in ((0, START), (1, END)):
        edge = flat[:, column]
        lo = (edge - radius).round()
        idx = lo[:, None] + offsets[None, :]  # (M, W)
        valid = (idx >= 0) & (idx <= length - 1) & (offsets[None, :] <= 2 * radius[:, None])
        p = probs[idx.clamp(0, length - 1).long(), channel].float()
        p = torch.where(valid, p, torch.full_like(p, -1.0))
        best, where = p.max(dim=1)
        target = idx.gather(1, where[:, None])[:, 0]
        if centroid:
            target = _run_centre(p, idx, best, where)
        moved.append(torch.where(best >= min_prob, target, edge))
    out = torch.stack(moved, dim=1)
    keep = out[:, 1] - out[:, 0] >= 1.0
    out = torch.where(keep[:, None], out, flat)
    return out.reshape(shape).to(segments.dtype)


def _run_centre(
    p: torch.Tensor, idx: torch.Tensor, best: torch.Tensor, where: torch.Tensor
) -> torch.Tensor:
    """Windows of probabilities p (M, W) at steps idx (M, W) with their peaks (best, where) ->
    (M,) the p-weighted mean step of each peak's contiguous run of p >= best / 2."""
    high = p >= 0.5 * best[:, None]
    run = torch.cumsum((~high).long(), dim=1)  # equal along each run of high steps
    mine = high & (run == run.gather(1, where[:, None]))
    weight = torch.where(mine, p, torch.zeros_like(p))
    return (weight * idx).sum(dim=1) / weight.sum(dim=1).clamp(min=1e-12)


def actionness_runs(
    actionness: torch.Tensor, thresholds: list[float], min_steps: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximal runs of steps whose actionness (T,) exceeds each threshold, as segments (N, 2)
    in steps (a run of steps i..j is [i - 0.5, j + 0.5]) scored by their mean actionness (N,).
    An actionness (T, K) gives each column's runs (e.g. one per class), all together."""
    columns = actionness[:, None] if actionness.dim() == 1 else actionness
    length = columns.shape[0]
    zero = columns.new_zeros(1, columns.shape[1])
    csum = torch.cat([zero, columns.float().cumsum(0)])  # (T + 1, K)
    segments, scores = [], []
    for threshold in thresholds:
        above = torch.cat([zero, (columns > threshold).float(), zero])  # (T + 2, K)
        change = torch.diff(above, dim=0)  # (T + 1, K)
        starts = torch.nonzero(change.T > 0)  # (R, 2): column, first step of a run
        ends = torch.nonzero(change.T < 0)[:, 1]  # one past its last step, in the same order
        column, first = starts[:, 0], starts[:, 1]
        keep = ends - first >= min(min_steps, length)
        column, first, ends = column[keep], first[keep], ends[keep]
        scores.append((csum[ends, column] - csum[first, column]) / (ends - first))
        segments.append(torch.stack([first - 0.5, ends - 0.5], dim=1).float())
    if not segments:
        return columns.new_zeros(0, 2), columns.new_zeros(0)
    return torch.cat(segments), torch.cat(scores)


def proposal_actionness(
    config: ProposalConfig, boundary: torch.Tensor | None, steps: torch.Tensor | None
) -> torch.Tensor | None:
    """What actionness proposals group, from the heads' fused probabilities (boundary (T, 3),
    steps (T, C + 1), either None): nothing without `actionness_thresholds`; the boundary head's
    actionness (T,), else 1 - the step head's background; with `actionness_per_class`, the step
    head's probability of each class (T, C)."""
    if not config.actionness_thresholds:
        return None
    if config.actionness_per_class:
        found = steps[:, 1:]
    elif boundary is not None:
        found = boundary[:, ACTIONNESS]
    else:
        found = None if steps is None else 1.0 - steps[:, 0]
    if found is None or not config.actionness_smooth:
        return found
    return smoothed_columns(found, config.actionness_smooth)


def smoothed_columns(actionness: torch.Tensor, widths: list[int]) -> torch.Tensor:
    """An actionness (T,) or (T, K) -> (T, K x len(widths)): its centred moving average over
    each width (1: itself), side by side, for `actionness_runs` to group all together."""
    columns = actionness[:, None] if actionness.dim() == 1 else actionness
    means = window_mean(columns.float(), [w // 2 for w in widths], widths)  # (W, T, K)
    return torch.cat(list(means.unbind(0)), dim=1)
