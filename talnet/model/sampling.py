"""Mini-batch sampling of labelled anchors/proposals with a capped positive fraction."""

from __future__ import annotations

import torch


def sample_labels(
    labels: torch.Tensor,
    batch_size: int,
    positive_fraction: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick up to batch_size*positive_fraction positives (label >= 1) at random and fill the
    rest of the batch with negatives (label == 0); label -1 is never picked. When positives are
    scarce the batch is topped up with negatives. Returns (positive idx, negative idx)."""
    positive = torch.nonzero(labels >= 1).flatten()
    negative = torch.nonzero(labels == 0).flatten()
    num_pos = min(int(batch_size * positive_fraction), positive.numel())
    num_neg = min(batch_size - num_pos, negative.numel())
    pos_order = torch.randperm(positive.numel(), generator=generator)[:num_pos]
    neg_order = torch.randperm(negative.numel(), generator=generator)[:num_neg]
    return positive[pos_order.to(labels.device)], negative[neg_order.to(labels.device)]
