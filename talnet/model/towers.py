"""Segment proposal network: one receptive-field-aligned tower per anchor scale (docs/design.md §3).

Tower for scale s: stride-1 max pooling (kernel k), then two kernel-3 convolutions with
dilations u and 2u, with u = s // 7 and k = s - 6u, so the receptive field is exactly
k + 2u + 4u = s (for s >= 7; smaller scales get the minimum, 7). With context the pooling
kernel and both dilations double: receptive field 2s, the anchor plus s/2 on each side.

The K towers run batched: their pooling is one sparse table read by shifted slices, each
convolution one batched matmul over towers followed by one shifted add per distinct dilation and
side tap. No index tensor depends on the length, so a new video length costs nothing extra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from talnet.model.rangemax import window_max, window_mean


@dataclass(frozen=True)
class TowerGeometry:
    """Pooling kernel and the two dilations of one tower; `receptive_field` in steps."""

    pool: int
    dilation1: int
    dilation2: int

    @property
    def receptive_field(self) -> int:
        return self.pool + 2 * self.dilation1 + 2 * self.dilation2

    @property
    def reach(self) -> int:
        """Steps the receptive field extends past its step on the wider side (the right)."""
        return self.pool // 2 + self.dilation1 + self.dilation2


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
        self,
        in_dim: int,
        width: int,
        geometries: list[TowerGeometry],
        out_per_tower: int,
        pool: str = "max",
    ):
        super().__init__()
        if pool not in ("max", "mean"):
            raise ValueError(f"unknown tower pooling {pool!r}")
        self.pool = pool
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
        # stride-1 max pooling, centred (even kernels lean left); a window cut by the video's
        # edge is the max over what is inside, as with -inf padding
        self.pool_left = [(g.pool - 1) // 2 for g in geometries]
        self.pool_size = [g.pool for g in geometries]
        self.runs1 = dilation_runs([g.dilation1 for g in geometries])
        self.runs2 = dilation_runs([g.dilation2 for g in geometries])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> tower features (B, K, T, H)."""
        return self._features_batched([self], [x])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> head outputs (B, K, T, out_per_tower)."""
        return self.forward_jointly([self], [x])[0]

    def same_layout(self, other: TowerBank) -> bool:
        """Whether `other` has the same geometry and sizes, so the two can run as one batch."""
        return (
            self.geometries == other.geometries
            and self.pool == other.pool
            and all(
                getattr(self, n).shape == getattr(other, n).shape
                for n in ("conv1", "conv2", "head")
            )
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
        """Tower features of every bank on its input, as one (B, S*K, T, H) batch.

        Nothing here depends on the length but slice bounds, so a video of a new length costs
        no more than one of a length seen before."""
        bank = banks[0]
        b, t, d = xs[0].shape
        s = len(banks)
        x = xs[0][:, None] if s == 1 else torch.stack(xs, dim=1)  # (B, S, T, D)
        pooling = window_max if bank.pool == "max" else window_mean
        pooled = pooling(x, bank.pool_left, bank.pool_size).view(b, -1, t, d)  # (B, S*K, ..)
        conv1, bias1, conv2, bias2 = (
            _joined(banks, n) for n in ("conv1", "bias1", "conv2", "bias2")
        )  # fmt: skip
        h = _dilated_conv(pooled, conv1, bank.runs1, s).add_(bias1).relu_()
        return _dilated_conv(h, conv2, bank.runs2, s).add_(bias2).relu_()


def dilation_runs(dilations: list[int]) -> tuple[tuple[int, int, int], ...]:
    """Maximal runs of consecutive towers with the same dilation, as (first, end, dilation):
    each run's taps shift by one slice, so a convolution costs a few ops per distinct dilation."""
    runs: list[tuple[int, int, int]] = []
    for k, d in enumerate(dilations):
        if runs and runs[-1][2] == d:
            runs[-1] = (runs[-1][0], k + 1, d)
        else:
            runs.append((k, k + 1, d))
    return tuple(runs)


def _dilated_conv(
    x: torch.Tensor, weight: torch.Tensor, runs: tuple[tuple[int, int, int], ...], copies: int
) -> torch.Tensor:
    """Per-tower kernel-3 convolution with per-tower dilation, zero padded, no bias.

    x (B, S*K, T, D), weight (S*K, D, 3H) -> (B, S*K, T, H), the S copies of the K towers
    sharing `runs` (from `dilation_runs`): one batched matmul gives each tap's contribution at
    its source step, then `_TapSum` adds the side taps at their target steps by slices.
    """
    b, sk, t, d = x.shape
    # one (B*T, D) @ (D, 3H) product per tower, faster at B = 16 than broadcasting the weights
    # over the videos (whose backward sums B weight gradients); the taps stay tower-major and
    # are read through a permuted view (for one video the layouts coincide: no copy at all)
    flat = torch.bmm(x.transpose(0, 1).reshape(sk, b * t, d), weight)  # (S*K, B*T, 3H)
    taps = flat.view(copies, sk // copies, b, t, -1).permute(2, 0, 1, 3, 4)
    return _TapSum.apply(taps, runs)


class _TapSum(torch.autograd.Function):
    """taps (B, S, K, T, 3H) -> (B, S*K, T, H): out[t] = (tap0[t - d] + tap1[t]) + tap2[t + d]
    (the order of a sum over taps), a source outside the video adding nothing. Forward and
    backward are each a few shifted slices per run, where autograd's own backward would
    allocate a full-size gradient for every slice. The output is a tensor of its own, not a
    view, so the in-place bias and ReLU after it cost no full-size copies in the backward."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        taps: torch.Tensor,
        runs: tuple[tuple[int, int, int], ...],
    ) -> torch.Tensor:
        b, s, k, t, h3 = taps.shape
        ctx.runs, ctx.copies = runs, s
        h = h3 // 3
        out = taps.new_empty(b, s * k, t, h)
        view = out.view(b, s, k, t, h)
        view.copy_(taps[..., h : 2 * h])
        for first, end, d in runs:
            if d < t:  # else both side taps' sources are outside the video at every step
                view[:, :, first:end, d:].add_(taps[:, :, first:end, :-d, :h])
                view[:, :, first:end, :-d].add_(taps[:, :, first:end, d:, 2 * h :])
        return out

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None]:
        b, sk, t, h = grad.shape
        s = ctx.copies
        grad = grad.reshape(b, s, sk // s, t, h)
        # tower-major, as the forward's taps are stored (see _dilated_conv); every element
        # is written once: the middle tap from grad, each side tap from grad or zero where
        # its source step lies outside the video
        out = grad.new_empty(s, sk // s, b, t, 3 * h).permute(2, 0, 1, 3, 4)
        out[..., h : 2 * h] = grad
        for first, end, d in ctx.runs:
            if d < t:
                out[:, :, first:end, :-d, :h] = grad[:, :, first:end, d:]
                out[:, :, first:end, -d:, :h] = 0
                out[:, :, first:end, d:, 2 * h :] = grad[:, :, first:end, :-d]
                out[:, :, first:end, :d, 2 * h :] = 0
            else:
                out[:, :, first:end, :, :h] = 0
                out[:, :, first:end, :, 2 * h :] = 0
        return out, None


def tile_windows(length: int, window: int, overlap: int) -> tuple[int, list[int]]:
    """The fewest windows of at most `window` steps that cover [0, length) with neighbours
    overlapping by at least `overlap` steps, all of one size and evenly spread: (size, starts).

    Equal sizes let them run as one batch; the fewest and shortest, because every step of a
    window costs a tower pass (a last window flush with the end would redo up to a window).
    """
    if length <= window:
        return length, [0]
    if not 0 <= overlap < window:
        raise ValueError(f"overlap {overlap} must be in [0, window {window})")
    count = -(-(length - overlap) // (window - overlap))  # ceil: count * (window - overlap) >= ..
    size = -(-(length + (count - 1) * overlap) // count)  # ... so that size <= window
    return size, [i * (length - size) // (count - 1) for i in range(count)]


def _joined(banks: list[TowerBank], name: str) -> torch.Tensor:
    """Parameter `name` of every bank, concatenated along the tower axis."""
    params = [getattr(bank, name) for bank in banks]
    return params[0] if len(params) == 1 else torch.cat(params)


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
        pool: str = "max",
    ):
        super().__init__()
        self.num_scales = len(scales)
        self.reduce = nn.Linear(in_dim, reduce_dim)  # the 1x1 convolution, channels last
        if multi_tower:
            geometries = [tower_geometry(s, context) for s in scales]
            self.towers = TowerBank(reduce_dim, width, geometries, 4, pool)
        else:
            geometry = tower_geometry(shared_rf, context)
            self.towers = TowerBank(reduce_dim, width, [geometry], 4 * len(scales), pool)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) -> objectness logits (B, K, T, 2), offsets (B, K, T, 2)."""
        return propose_jointly([self], [x])[0]

    @property
    def reach(self) -> int:
        """Steps of input on either side of a step that its outputs depend on (at most)."""
        return max(g.reach for g in self.towers.geometries)

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
