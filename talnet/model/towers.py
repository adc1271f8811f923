"""Segment proposal network: one receptive-field-aligned tower per anchor scale (SPEC §2).

Tower for scale s: stride-1 max pooling (kernel k), then two kernel-3 convolutions with
dilations u and 2u, with u = s // 7 and k = s - 6u, so the receptive field is exactly
k + 2u + 4u = s (for s >= 7; smaller scales get the minimum, 7). With context the pooling
kernel and both dilations double: receptive field 2s, the anchor plus s/2 on each side.

The K towers run batched: their pooling is one sparse-table range max, each convolution one
batched matmul over towers followed by one gather of the shifted taps, so the cost in kernel
launches does not grow with K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from talnet.model.rangemax import range_max


@dataclass(frozen=True)
class TowerGeometry:
    """Pooling kernel and the two dilations of one tower; `receptive_field` in steps."""

    pool: int
    dilation1: int
    dilation2: int

    @property
    def receptive_field(self) -> int:
        return self.pool + 2 * self.dilation1 + 2 * self.dilation2


def tower_geometry(scale: float, context: bool) -> TowerGeometry:
    """Geometry whose receptive field is `scale` steps (2 * scale with context)."""
    s = max(1, round(scale))
    unit = max(1, s // 7)
    pool = max(1, s - 6 * unit)
    factor = 2 if context else 1
    return TowerGeometry(factor * pool, factor * unit, factor * 2 * unit)


class TowerBank(nn.Module):
    """K towers with their own weights and geometry, run as a batch (channels last).

    (B, T, D) -> features (B, K, T, H) -> head outputs (B, K, T, out_per_tower).
    """

    def __init__(
        self, in_dim: int, width: int, geometries: list[TowerGeometry], out_per_tower: int
    ):
        super().__init__()
        k = len(geometries)
        self.geometries = list(geometries)
        self.width = width
        # Conv weights stored tap-major along the output: (K, D_in, 3*H) = [tap0 | tap1 | tap2].
        self.conv1 = nn.Parameter(torch.randn(k, in_dim, 3 * width) * math.sqrt(2 / (3 * in_dim)))
        self.bias1 = nn.Parameter(torch.zeros(k, 1, width))
        self.conv2 = nn.Parameter(torch.randn(k, width, 3 * width) * math.sqrt(2 / (3 * width)))
        self.bias2 = nn.Parameter(torch.zeros(k, 1, width))
        self.head = nn.Parameter(torch.randn(k, width, out_per_tower) * 0.01)
        self.head_bias = nn.Parameter(torch.zeros(k, 1, out_per_tower))
        pools = torch.tensor([g.pool for g in geometries])
        self.register_buffer("pool_left", (pools - 1) // 2, persistent=False)
        self.register_buffer("pool_size", pools, persistent=False)
        self.register_buffer("dil1", torch.tensor([g.dilation1 for g in geometries]), False)
        self.register_buffer("dil2", torch.tensor([g.dilation2 for g in geometries]), False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> tower features (B, K, T, H)."""
        pooled = self._pool(x)  # (B, K, T, D)
        h = torch.relu(self._dilated_conv(pooled, self.conv1, self.dil1) + self.bias1)
        return torch.relu(self._dilated_conv(h, self.conv2, self.dil2) + self.bias2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> head outputs (B, K, T, out_per_tower)."""
        return torch.matmul(self.features(x), self.head) + self.head_bias

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """Stride-1 max pooling with each tower's kernel (centred; even kernels lean left)."""
        b, t, d = x.shape
        left = int(self.pool_left.max())
        right = int((self.pool_size - 1 - self.pool_left).max())
        padded = F.pad(x, (0, 0, left, right), value=float("-inf"))
        steps = torch.arange(t, device=x.device)
        lo = (steps[None, :] + left - self.pool_left[:, None]).flatten()  # (K*T,)
        hi = lo + (self.pool_size[:, None] - 1).expand(-1, t).flatten()
        return range_max(padded, lo, hi).view(b, -1, t, d)  # (B, K, T, D)

    def _dilated_conv(self, x: torch.Tensor, weight: torch.Tensor, dilation: torch.Tensor):
        """Per-tower kernel-3 convolution with per-tower dilation, zero padded, no bias.

        x (B, K, T, D), weight (K, D, 3H) -> (B, K, T, H): one batched matmul gives each tap's
        contribution at its source step; one row gather brings each to its target step.
        """
        b, k, t, _ = x.shape
        h = weight.shape[-1] // 3
        pad = int(dilation.max())
        # zero-padding the input (D wide) is cheaper than padding the taps (3H wide)
        taps = torch.matmul(F.pad(x, (0, 0, pad, pad)), weight)  # (B, K, Tp, 3H)
        tp = t + 2 * pad
        rows = taps.reshape(b, k * tp * 3, h)  # row (tower, step, tap)
        shift = torch.stack([-dilation, torch.zeros_like(dilation), dilation], dim=1)  # (K, 3)
        steps = torch.arange(t, device=x.device)
        source = pad + steps[None, :, None] + shift[:, None, :]  # (K, T, 3)
        tower = torch.arange(k, device=x.device)[:, None, None]
        tap = torch.arange(3, device=x.device)[None, None, :]
        index = ((tower * tp + source) * 3 + tap).flatten()
        return rows.index_select(1, index).view(b, k, t, 3, h).sum(dim=3)


class ProposalNetwork(nn.Module):
    """One stream's SPN: 1x1 reduction, then towers; objectness (2-way) and offsets per anchor.

    Multi-tower: one aligned tower per scale. Otherwise one shared tower of receptive field
    `shared_rf` predicts all K anchors (the Faster R-CNN baseline of the paper's ablation).
    """

    def __init__(
        self,
        in_dim: int,
        scales: list[float],
        reduce_dim: int,
        width: int,
        multi_tower: bool = True,
        context: bool = True,
        shared_rf: int = 16,
    ):
        super().__init__()
        self.num_scales = len(scales)
        self.reduce = nn.Linear(in_dim, reduce_dim)  # the 1x1 convolution, channels last
        if multi_tower:
            geometries = [tower_geometry(s, context) for s in scales]
            self.towers = TowerBank(reduce_dim, width, geometries, out_per_tower=4)
        else:
            geometry = tower_geometry(shared_rf, context)
            self.towers = TowerBank(reduce_dim, width, [geometry], out_per_tower=4 * len(scales))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) -> objectness logits (B, K, T, 2), offsets (B, K, T, 2)."""
        b, t, _ = x.shape
        out = self.towers(torch.relu(self.reduce(x)))  # (B, K or 1, T, 4 or 4K)
        if out.shape[1] != self.num_scales:  # one shared tower: (B, 1, T, 4K) -> (B, K, T, 4)
            out = out.view(b, t, self.num_scales, 4).transpose(1, 2)
        return out[..., :2], out[..., 2:]
