"""Segment proposal network: one receptive-field-aligned tower per anchor scale (docs/design.md §3).

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

from talnet.model.rangemax import RangeQuery, range_max, range_query


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
        self._plans: dict[tuple[int, str, int], _TowerPlan] = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> tower features (B, K, T, H)."""
        return self._features_batched([self], [x])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> head outputs (B, K, T, out_per_tower)."""
        return self.forward_jointly([self], [x])[0]

    def same_layout(self, other: TowerBank) -> bool:
        """Whether `other` has the same geometry and sizes, so the two can run as one batch."""
        return self.geometries == other.geometries and all(
            getattr(self, n).shape == getattr(other, n).shape for n in ("conv1", "conv2", "head")
        )

    @staticmethod
    def forward_jointly(banks: list[TowerBank], xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Head outputs of banks of the same layout on inputs of the same shape (e.g. the two
        streams), computed as one batch of S*K towers: the kernel launches of one bank, not S."""
        h = TowerBank._features_batched(banks, xs)  # (B, S*K, T, H)
        out = torch.matmul(h, _joined(banks, "head")) + _joined(banks, "head_bias")
        return list(out.chunk(len(banks), dim=1))

    @staticmethod
    def _features_batched(banks: list[TowerBank], xs: list[torch.Tensor]) -> torch.Tensor:
        """Tower features of every bank on its input, as one (B, S*K, T, H) batch."""
        b, t, d = xs[0].shape
        s = len(banks)
        plan = banks[0]._plan(t, xs[0].device, s)
        x = xs[0][:, None] if s == 1 else torch.stack(xs, dim=1)  # (B, S, T, D)
        pooled = range_max(x, query=plan.pool).view(b, -1, t, d)  # (B, S*K, T, D)
        conv1, bias1, conv2, bias2 = (
            _joined(banks, n) for n in ("conv1", "bias1", "conv2", "bias2")
        )  # fmt: skip
        h = torch.relu(TowerBank._dilated_conv(pooled, conv1, plan.conv1) + bias1)
        return torch.relu(TowerBank._dilated_conv(h, conv2, plan.conv2) + bias2)

    def _plan(self, t: int, device: torch.device, copies: int = 1) -> _TowerPlan:
        """The index tensors for length `t` (and `copies` banks run jointly), built once per
        length and device: they depend on nothing else, and building them costs as much as a
        convolution at THUMOS lengths."""
        key = (t, str(device), copies)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= 64:  # training crops come in few lengths; stay bounded
                self._plans.clear()
            pool_left = self.pool_left.to(device)
            pool_size = self.pool_size.to(device)
            steps = torch.arange(t, device=device)
            # stride-1 max pooling, centred (even kernels lean left); a window cut by the video's
            # edge is the max over what is inside, as with -inf padding
            lo = steps[None, :] - pool_left[:, None]  # (K, T)
            hi = lo + pool_size[:, None] - 1
            pool = range_query(lo.clamp(min=0).flatten(), hi.clamp(max=t - 1).flatten(), t)
            conv1 = _tap_rows(self.dil1.to(device).repeat(copies), t)
            conv2 = _tap_rows(self.dil2.to(device).repeat(copies), t)
            plan = self._plans[key] = _TowerPlan(pool, conv1, conv2)
        return plan

    @staticmethod
    def _dilated_conv(x: torch.Tensor, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Per-tower kernel-3 convolution with per-tower dilation, zero padded, no bias.

        x (B, K, T, D), weight (K, D, 3H) -> (B, K, T, H): one batched matmul gives each tap's
        contribution at its source step; one row gather (`rows`, from `_tap_rows`) brings each
        to its target step, reading a zero row where the source is outside the video.
        """
        b, k, t, _ = x.shape
        h = weight.shape[-1] // 3
        taps = torch.matmul(x, weight)  # (B, K, T, 3H): every tap at its source step
        flat = F.pad(taps.reshape(b, k * t * 3, h), (0, 0, 0, 1))  # + the zero row
        return flat.index_select(1, rows).view(b, k, t, 3, h).sum(dim=3)


@dataclass(frozen=True)
class _TowerPlan:
    """Index tensors of one TowerBank for one length: pooling ranges and both convs' taps."""

    pool: RangeQuery
    conv1: torch.Tensor
    conv2: torch.Tensor


def _joined(banks: list[TowerBank], name: str) -> torch.Tensor:
    """Parameter `name` of every bank, concatenated along the tower axis."""
    params = [getattr(bank, name) for bank in banks]
    return params[0] if len(params) == 1 else torch.cat(params)


def _tap_rows(dilation: torch.Tensor, t: int) -> torch.Tensor:
    """For each (tower, step, tap): the row (tower, source step, tap) of the flattened taps, or
    the zero row K*T*3 where the source step is outside [0, T)."""
    k = dilation.numel()
    shift = torch.stack([-dilation, torch.zeros_like(dilation), dilation], dim=1)  # (K, 3)
    source = torch.arange(t, device=dilation.device)[None, :, None] + shift[:, None, :]
    tower = torch.arange(k, device=dilation.device)[:, None, None]
    tap = torch.arange(3, device=dilation.device)[None, None, :]
    rows = ((tower * t + source) * 3 + tap).flatten()
    outside = ((source < 0) | (source >= t)).expand(k, t, 3).flatten()
    return rows.masked_fill(outside, k * t * 3)


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
        return propose_jointly([self], [x])[0]

    def _outputs(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tower outputs (B, K or 1, T, 4 or 4K) -> objectness and offsets, (B, K, T, 2) each."""
        if out.shape[1] != self.num_scales:  # one shared tower: (B, 1, T, 4K) -> (B, K, T, 4)
            b, _, t, _ = out.shape
            out = out.view(b, t, self.num_scales, 4).transpose(1, 2)
        return out[..., :2], out[..., 2:]


def propose_jointly(
    spns: list[ProposalNetwork], xs: list[torch.Tensor]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Several streams' proposal networks; their towers run as one batch when their layouts
    and input lengths match (late fusion's two streams), else one after another."""
    reduced = [torch.relu(spn.reduce(x)) for spn, x in zip(spns, xs, strict=True)]
    banks = [spn.towers for spn in spns]
    if all(b.same_layout(banks[0]) for b in banks) and len({r.shape for r in reduced}) == 1:
        outs = TowerBank.forward_jointly(banks, reduced)
    else:
        outs = [bank(r) for bank, r in zip(banks, reduced, strict=True)]
    return [spn._outputs(out) for spn, out in zip(spns, outs, strict=True)]
