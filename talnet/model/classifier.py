"""Action classifier: SoI pooling over (context-extended) proposals, then FC layers -> C+1."""

from __future__ import annotations

import torch
from torch import nn

from talnet.model.soi import extend_segments, soi_pool


class ActionClassifier(nn.Module):
    """One stream's classifier: 1x1 reduction of the feature map, SoI pooling, two FC layers,
    C+1 logits (0 = background) and class-specific offsets (C+1, 2)."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        reduce_dim: int = 128,
        bins: int = 16,
        fc_dim: int = 1024,
        dropout: float = 0.5,
        context: bool = True,
        mode: str = "interp",
        samples: int = 2,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.bins, self.mode, self.samples, self.context = bins, mode, samples, context
        self.reduce = nn.Linear(in_dim, reduce_dim)  # the 1x1 convolution, channels last
        self.fc = nn.Sequential(
            nn.Linear(reduce_dim * bins, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.cls = nn.Linear(fc_dim, num_classes + 1)
        self.reg = nn.Linear(fc_dim, 2 * (num_classes + 1))
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.zeros_(self.cls.bias)
        nn.init.normal_(self.reg.weight, std=0.001)
        nn.init.zeros_(self.reg.bias)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> reduced map (B, T, D), computed once per video for all proposals."""
        return torch.relu(self.reduce(x))

    def forward(self, fmap: torch.Tensor, proposals: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """fmap (T, D) of one video, proposals (N, 2) in steps -> logits (N, C+1), offsets
        (N, C+1, 2)."""
        return self.head(self.pool(fmap, proposals))

    def pool(self, fmap: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        """SoI pooling over the (context-extended) proposals: (T, D), (N, 2) -> (N, bins, D)."""
        regions = extend_segments(proposals) if self.context else proposals
        return soi_pool(fmap, regions, self.bins, self.mode, self.samples)

    def head(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled proposals (N, bins, D) -> logits (N, C+1), offsets (N, C+1, 2)."""
        hidden = self.fc(pooled.flatten(1))
        return self.cls(hidden), self.reg(hidden).view(-1, self.num_classes + 1, 2)

    def pooling_key(self) -> tuple:
        """Classifiers with equal keys pool the same regions the same way (so can share it)."""
        return (self.bins, self.mode, self.samples, self.context)
