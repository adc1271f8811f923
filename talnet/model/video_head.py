"""Video-level classifier (ActivityNet practice, docs/design.md §3): which classes a video
shows, from its features pooled over time; trained with the model by its own loss term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VIDEO_LOSS = "video_cls"  # its loss term's name in the losses and the training log


class VideoClassifier(nn.Module):
    """(B, T, C) features -> (B, K) class logits: mean and max over time, concatenated, one
    hidden layer (ReLU, dropout), or with `hidden` 0 a linear map (a logistic regression on the
    pooled features). Small, since a video's label is a global property."""

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 512, dropout: float = 0.5):
        super().__init__()
        if hidden:
            self.net = nn.Sequential(
                nn.Linear(2 * in_dim, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.net = nn.Sequential(nn.Linear(2 * in_dim, num_classes))

    @staticmethod
    def pool(x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, 2C): the mean and the max over time side by side."""
        return torch.cat([x.mean(dim=1), x.amax(dim=1)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.pool(x))


def video_target(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """A video's class distribution (K,) from its instances' labels (G,) in 1..K, G >= 1."""
    target = torch.bincount(labels - 1, minlength=classes).float()
    return target / target.sum()


def video_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of one video's logits (K,) against the classes of its instances, labels
    (G,) in 1..K, as a distribution (one class: plain cross-entropy); 0 without instances."""
    if labels.numel() == 0:
        return logits.sum() * 0.0  # keeps the head in the graph (a zero gradient, not none)
    target = video_target(labels, logits.shape[-1])
    return -(target * F.log_softmax(logits.float(), dim=-1)).sum()
