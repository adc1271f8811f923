"""Which anchors and proposals get which label (supplement §1); pure functions, no network."""

from __future__ import annotations

import torch


def pairwise_tiou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Temporal IoU of every segment in a (..., N, 2) with every segment in b (..., M, 2) ->
    (..., N, M); leading dimensions (e.g. classes) broadcast."""
    start_a, end_a = a[..., :, None, 0], a[..., :, None, 1]
    start_b, end_b = b[..., None, :, 0], b[..., None, :, 1]
    inter = (torch.minimum(end_a, end_b) - torch.maximum(start_a, start_b)).clamp_min(0)
    union = (end_a - start_a) + (end_b - start_b) - inter
    return inter / union.clamp_min(1e-9)


def label_anchors(
    anchors: torch.Tensor,
    gt: torch.Tensor,
    positive_iou: float = 0.7,
    negative_iou: float = 0.3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proposal-stage labels: 1 if tIoU > positive_iou with some ground truth, 0 if tIoU <
    negative_iou with all, else -1 (ignored); each ground truth also makes its best anchor(s)
    positive. Returns (labels (A,) long, matched ground-truth index (A,) long)."""
    n = anchors.shape[0]
    labels = torch.full((n,), -1, dtype=torch.long, device=anchors.device)
    if gt.numel() == 0:
        return labels.fill_(0), torch.zeros(n, dtype=torch.long, device=anchors.device)
    iou = pairwise_tiou(anchors, gt)  # (A, G)
    best_iou, matched = iou.max(dim=1)
    labels[best_iou < negative_iou] = 0
    labels[best_iou > positive_iou] = 1
    # Forced match: the anchor(s) tying for each ground truth's best tIoU become positive for
    # that ground truth, even below the threshold, so short or odd-length actions are learned.
    gt_best = iou.max(dim=0).values  # (G,)
    forced_anchor, forced_gt = torch.nonzero(
        (iou == gt_best[None, :]) & (gt_best[None, :] > 0), as_tuple=True
    )
    labels[forced_anchor] = 1
    matched[forced_anchor] = forced_gt
    return labels, matched


def label_proposals(
    proposals: torch.Tensor, gt: torch.Tensor, gt_labels: torch.Tensor, foreground_iou: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classifier labels: the class of the most-overlapping ground truth if its tIoU >
    foreground_iou, else 0 (background). Returns (labels (N,) long, matched index (N,))."""
    n = proposals.shape[0]
    if gt.numel() == 0:
        zeros = torch.zeros(n, dtype=torch.long, device=proposals.device)
        return zeros, zeros.clone()
    best_iou, matched = pairwise_tiou(proposals, gt).max(dim=1)
    labels = torch.where(best_iou > foreground_iou, gt_labels[matched], torch.zeros_like(matched))
    return labels, matched
