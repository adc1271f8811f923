"""Multi-scale anchors over the 1D feature map (docs/design.md §3), in feature-step coordinates.

Step i is the point i (its window's centre); an anchor of scale s at step i is the segment
[i - s/2, i + s/2]. Anchors are laid out scale-major, (K, T) -> K*T rows, matching the towers.
"""

from __future__ import annotations

import torch


def make_anchors(scales: torch.Tensor, length: int) -> torch.Tensor:
    """(K,) scales, T steps -> (K*T, 2) anchors [start, end], scale-major."""
    centers = torch.arange(length, dtype=scales.dtype, device=scales.device)  # (T,)
    half = scales[:, None] / 2  # (K, 1)
    return torch.stack([centers - half, centers + half], dim=-1).reshape(-1, 2)


def best_anchor_tiou(scales: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """For segments of each length (L,) in steps, the tIoU of the best anchor centred on them
    (L,): how well the scales cover a range of action lengths before any regression."""
    ratio = torch.minimum(lengths[:, None], scales[None, :]) / torch.maximum(
        lengths[:, None], scales[None, :]
    )
    return ratio.max(dim=1).values


def anchors_at(scales: torch.Tensor, length: int, index: torch.Tensor) -> torch.Tensor:
    """Rows `index` (N,) of `make_anchors(scales, length)`, bit for bit, computed for those rows
    alone (a long video's best anchors without its K*T anchors)."""
    centers = (index % length).to(scales.dtype)
    half = scales[index // length] / 2
    return torch.stack([centers - half, centers + half], dim=-1)
