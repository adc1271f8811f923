"""One stream's networks (docs/design.md §3): the proposal network and the classifier of the
paper, and the optional per-step heads; and late fusion, the mean of the streams' outputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from talnet.config import ModelConfig
from talnet.model.boundary import BoundaryHead
from talnet.model.classifier import ActionClassifier
from talnet.model.step_head import StepClassifier
from talnet.model.towers import ProposalNetwork


class StreamNetwork(nn.Module):
    """The two-stage network of one stream (or of the concatenated streams, early fusion)."""

    def __init__(self, in_dim: int, num_classes: int, cfg: ModelConfig):
        super().__init__()
        self.spn = ProposalNetwork(
            in_dim,
            cfg.anchors,
            cfg.spn_reduce_dim,
            cfg.tower_dim,
            multi_tower=cfg.multi_tower,
            context=cfg.spn_context,
            shared_rf=cfg.shared_rf,
            pool=cfg.tower_pool,
        )
        self.classifier = ActionClassifier(
            in_dim,
            num_classes,
            cfg.soi_reduce_dim,
            cfg.soi_bins,
            cfg.fc_dim,
            cfg.dropout,
            context=cfg.cls_context,
            mode=cfg.soi_mode,
            samples=cfg.soi_samples,
        )
        self.boundary: BoundaryHead | None = None
        if cfg.boundary_head:
            self.boundary = BoundaryHead(in_dim, cfg.boundary_dim, cfg.boundary_dilations)
        self.step: StepClassifier | None = None
        if cfg.step_classifier:
            dim = in_dim if cfg.step_input == "features" else cfg.soi_reduce_dim
            self.step = StepClassifier(dim, num_classes, cfg.step_context)


def fuse(outputs: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Late fusion: the element-wise mean of each output over branches (logits and offsets)."""
    if len(outputs) == 1:
        return outputs[0]
    return tuple(torch.stack(parts).mean(dim=0) for parts in zip(*outputs, strict=True))


def fused_probabilities(
    logits: list[torch.Tensor], activation: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor | None:
    """Per-branch per-step logits (1, T, K) -> one video's fused probabilities (T, K), without
    gradient (they choose proposals and scores), or None without branches."""
    batch = batch_probabilities(logits, activation)
    return None if batch is None else batch[0]


def batch_probabilities(
    logits: list[torch.Tensor], activation: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor | None:
    """Per-branch per-step logits (B, T, K) -> each video's fused probabilities (B, T, K),
    without gradient, or None without branches."""
    if not logits:
        return None
    return activation(fuse([(z.detach(),) for z in logits])[0].float())
