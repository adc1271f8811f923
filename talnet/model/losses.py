"""The supplement's two-stage loss: cross-entropy + lambda * smooth L1 on foreground only."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The four loss terms of both stages (summed into "loss"); the training log's keys too.
LOSS_NAMES = ("spn_cls", "spn_reg", "cls_cls", "cls_reg")
TOTAL_LOSS = "loss"


def stage_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    offsets: torch.Tensor,
    targets: torch.Tensor,
    reg_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of one stage on a sampled mini-batch of N anchors or proposals.

    logits (N, K), labels (N,) in 0..K-1, offsets/targets (N, 2) (rows of background ignored).
    Returns (classification, regression): the cross-entropy averaged over the N examples and
    reg_weight * smooth-L1 summed over foreground examples, also divided by N (as detectron2
    normalizes RPN and box-head losses, so both terms have the same scale).
    """
    n = max(labels.numel(), 1)
    cls = F.cross_entropy(logits, labels, reduction="sum") / n
    fg = labels >= 1
    reg = F.smooth_l1_loss(offsets[fg], targets[fg], beta=1.0, reduction="sum") / n
    return cls, reg_weight * reg
