"""Dual TV-L1 optical flow in batched PyTorch ("tvl1-torch"): the algorithm OpenCV contrib's
DualTVL1OpticalFlow implements (Zach, Pock, Bischof 2007; Sánchez, Meinhardt-Llopis, Facciolo,
IPOL 2013), step for step, on many frame pairs at once and on any torch device.

What follows OpenCV, so the flow matches "tvl1"'s: frames as float 0-255 with no pre-smoothing;
a pyramid by bilinear resizing (half-pixel centres, edge replicated; levels under 16 px dropped);
per level, p = 0 and `warps` warps of I1 and its centred gradient (bicubic, a = -0.75, zeros
outside the frame); per warp `outer` x `inner` primal-dual iterations (thresholding step for v,
u = v + theta div p, then p's projected step with tau / theta), a 5x5 median of u (edges
replicated) at the start of every outer iteration, and OpenCV's stopping rule (sum of squared
changes of u over the level <= epsilon^2 H W) applied to each pair on its own, so a pair gives
the same flow alone or in a batch (to float rounding, ~1e-4 px). Measured against the OpenCV
5.0 installed here: within 1e-4 px of its flow on average (tests/test_video_flow_torch.py,
`talnet bench --only video`). Where OpenCV stops iterating early, a GPU batch keeps computing
but freezes that pair, so there is no host sync per iteration. Not implemented: gamma
(OpenCV's illumination term, 0 by default) and median sizes other than 5 (or none).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from talnet.errors import TalnetError

FLOAT_EPS = float(np.finfo(np.float32).eps)  # OpenCV's guard on |grad I1|^2 in the v step
INTERPOLATIONS = ("bicubic", "bilinear")

# -- 5x5 median: a comparator network, so it is elementwise min/max (fast on CPU and GPU) ------

# An optimal 9-comparator network sorting 5 values.
_SORT5 = ((0, 1), (3, 4), (2, 4), (2, 3), (0, 3), (0, 2), (1, 4), (1, 3), (1, 2))


def _batcher_pairs(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort on n (a power of 2) wires, as comparator pairs (lo, hi)."""
    pairs, p = [], 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@functools.cache
def _median25_network() -> tuple[tuple[int, int, bool, bool], ...]:
    """Comparators (i, j, keep_min, keep_max) giving wire 12 = the median of 25 wires, when the
    wires come as five sorted columns of five (wire 5c + r = rank r of column c).

    Batcher's network on 32 wires (7 +inf pads never move), minus comparators that never swap
    on any 0-1 input with sorted columns (by the 0-1 principle they never swap at all), pruned
    to what wire 12 needs: 146 min/max operations instead of 198 for the best plain network.
    """
    ones = [[0] * (5 - c) + [1] * c for c in range(6)]
    zero_one = np.array([sum(cols, []) for cols in itertools.product(ones, repeat=5)], bool)
    kept = []
    for i, j in ((i, j) for i, j in _batcher_pairs(32) if j < 25):
        if (zero_one[:, i] & ~zero_one[:, j]).any():
            kept.append((i, j))
            lo, hi = zero_one[:, i] & zero_one[:, j], zero_one[:, i] | zero_one[:, j]
            zero_one[:, i], zero_one[:, j] = lo, hi
    needed, ops = {12}, []
    for i, j in reversed(kept):
        if i in needed or j in needed:
            ops.append((i, j, i in needed, j in needed))
            needed |= {i, j}
    return tuple(reversed(ops))


def median5x5(x: torch.Tensor) -> torch.Tensor:
    """5x5 median filter of (..., H, W) with replicated edges, as OpenCV's medianBlur(x, 5)."""
    h, w = x.shape[-2:]
    lead = x.shape[:-2]
    padded = F.pad(x.reshape(-1, 1, h, w), (2, 2, 2, 2), mode="replicate")[:, 0]
    rows = [padded[:, r : r + h] for r in range(5)]  # vertical neighbours, shared along x
    for i, j in _SORT5:
        rows[i], rows[j] = torch.minimum(rows[i], rows[j]), torch.maximum(rows[i], rows[j])
    wires = [rows[r][..., c : c + w] for c in range(5) for r in range(5)]
    for i, j, keep_min, keep_max in _median25_network():
        a, b = wires[i], wires[j]
        if keep_min:
            wires[i] = torch.minimum(a, b)
        if keep_max:
            wires[j] = torch.maximum(a, b)
    return wires[12].reshape(*lead, h, w)


# -- pyramid, gradients, warping ----------------------------------------------------------------


def _resize_matrix(n_in: int, n_out: int, step: float, like: torch.Tensor) -> torch.Tensor:
    """(n_out, n_in) bilinear weights along one axis, as OpenCV's INTER_LINEAR: source position
    (d + 0.5) * step - 0.5 for output d, `step` source pixels per output pixel, edge replicated."""
    pos = (np.arange(n_out) + 0.5) * step - 0.5
    left = np.floor(pos).astype(np.int64)
    frac = pos - left
    frac[left < 0] = 0.0
    left = np.clip(left, 0, n_in - 1)
    frac[left >= n_in - 1] = 0.0
    right = np.minimum(left + 1, n_in - 1)
    weights = np.zeros((n_out, n_in))
    np.add.at(weights, (np.arange(n_out), left), 1 - frac)
    np.add.at(weights, (np.arange(n_out), right), frac)
    return torch.as_tensor(weights, dtype=like.dtype, device=like.device)


def _resize(x: torch.Tensor, size: tuple[int, int], step: float | None = None) -> torch.Tensor:
    """Bilinear resize of (..., h, w) to `size`; `step` source pixels per output pixel (OpenCV's
    1 / fx when resizing by a factor), else in / out per axis (resizing to a given size)."""
    (h, w), (nh, nw) = x.shape[-2:], size
    rows = _resize_matrix(h, nh, step or h / nh, x)
    cols = _resize_matrix(w, nw, step or w / nw, x)
    # Both products as one matrix times each image, so a pair's result does not depend on
    # what else is in the batch (x @ cols.T would fold the batch into one larger product).
    return rows @ (cols @ x.transpose(-1, -2)).transpose(-1, -2)


def _centred_gradient(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W) -> (N, 2, H, W) d/dx, d/dy: half the centred difference, one-sided halves at
    the edges (OpenCV's centeredGradient)."""
    padded = F.pad(x[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    dx = 0.5 * (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2])
    dy = 0.5 * (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1])
    return torch.stack([dx, dy], 1)


def _tap_weights(t: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """Interpolation weights of each tap for fractional offsets t in [0, 1): cubic convolution
    with a = -0.75 (OpenCV's INTER_CUBIC, 4 taps from floor - 1), or linear (2 taps)."""
    if mode == "bilinear":
        return [1 - t, t]
    a, s = -0.75, 1 - t
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * s - (a + 3)) * s * s + 1
    return [w0, w1, w2, 1 - w0 - w1 - w2]


def _warp(images: torch.Tensor, flow: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample (N, C, H, W) images at x + flow as OpenCV's remap does: bicubic (4x4 taps) or
    bilinear (2x2) at the exact positions, zeros outside the frame (BORDER_CONSTANT). Unlike
    grid_sample (whose coordinate normalisation is off by float rounding) a zero flow gives the
    image back exactly, as OpenCV does, so repeated frames get exactly zero flow."""
    n, c, h, w = images.shape
    taps = 4 if mode == "bicubic" else 2
    first = -1 if mode == "bicubic" else 0  # offset of the first tap from floor(position)
    pad = taps  # zeros enough that every clamped tap lands inside the padded image
    padded = F.pad(images, (pad, pad, pad, pad)).reshape(n, c, -1)
    width = w + 2 * pad
    index = torch.zeros((n, h, w), dtype=torch.int64, device=images.device)
    axis_weights = []
    for axis, size, stride in ((0, w, 1), (1, h, width)):
        grid = torch.arange(size, dtype=flow.dtype, device=flow.device)
        pos = flow[:, axis] + (grid if axis == 0 else grid[:, None])
        whole = torch.floor(pos)
        frac = (pos - whole).reshape(n, 1, h * w)
        axis_weights.append(_tap_weights(frac, mode))
        # Positions whose taps all miss the frame are clamped onto taps that all hit the pad.
        start = (whole.to(torch.int64) + first).clamp_(-pad, size + pad - taps) + pad
        index += start * stride
    index = index.reshape(n, 1, h * w)
    wx, wy = axis_weights
    out = images.new_zeros((n, c, h * w))
    for dy in range(taps):
        row = images.new_zeros((n, c, h * w))
        for dx in range(taps):
            tap = padded.gather(2, (index + (dy * width + dx)).expand(n, c, -1))
            row.addcmul_(tap, wx[dx])
        out.addcmul_(row, wy[dy])
    return out.reshape(n, c, h, w)


def _divergence(p: torch.Tensor) -> torch.Tensor:
    """(N, 2, 2, H, W) dual fields [component, direction] -> (N, 2, H, W) backward-difference
    divergence with zero outside (OpenCV's divergence)."""
    px, py = p[:, :, 0], p[:, :, 1]
    div = px + py
    div[..., :, 1:] -= px[..., :, :-1]
    div[..., 1:, :] -= py[..., :-1, :]
    return div


def _forward_gradient(u: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) -> (N, 2, 2, H, W) forward differences, zero on the last column / row."""
    grad = u.new_zeros((*u.shape[:2], 2, *u.shape[2:]))
    torch.sub(u[..., :, 1:], u[..., :, :-1], out=grad[:, :, 0, :, :-1])
    torch.sub(u[..., 1:, :], u[..., :-1, :], out=grad[:, :, 1, :-1, :])
    return grad


# -- the solver ---------------------------------------------------------------------------------


def _settings(params: Mapping[str, float]) -> dict[str, float]:
    """OpenCV-named settings (flow.TVL1_FAST's keys), checked."""
    if params.get("gamma", 0.0):
        raise TalnetError("tvl1-torch does not implement gamma (OpenCV's illumination term)")
    settings = dict(params)
    for key in ("scalesNumber", "warpingsNumber", "innerIterations", "outerIterations"):
        settings[key] = int(settings[key])
        if settings[key] < 1:
            raise TalnetError(f"TV-L1 {key} must be at least 1, got {settings[key]}")
    if int(settings.get("medianFiltering", 0)) not in (0, 1, 5):  # OpenCV: 1 or less is off
        raise TalnetError("tvl1-torch median filtering is 5x5 (OpenCV's default) or off (1)")
    if not 0 < settings["scaleStep"] < 1:
        raise TalnetError(f"TV-L1 scaleStep must be in (0, 1), got {settings['scaleStep']}")
    return settings


def _one_scale(
    i0: torch.Tensor, i1: torch.Tensor, u: torch.Tensor, s: dict[str, float], mode: str
) -> torch.Tensor:
    """Refine flow u (N, 2, H, W) between frames (N, H, W) at one pyramid level."""
    n, h, w = i0.shape
    threshold = s["epsilon"] ** 2 * h * w
    l_t, theta = s["lambda"] * s["theta"], s["theta"]
    tau_t = s["tau"] / theta
    median = int(s.get("medianFiltering", 0))
    on_cpu = u.device.type == "cpu"  # checking the stopping rule costs nothing there
    sources = torch.cat([i1[:, None], _centred_gradient(i1)], 1)  # I1, dI1/dx, dI1/dy
    p = u.new_zeros((n, 2, 2, h, w))
    for _ in range(s["warpingsNumber"]):
        warped = _warp(sources, u, mode)
        grad = warped[:, 1:]  # gradient of I1 at x + u0: (N, 2, H, W)
        # rho(u) = I1(x + u0) + grad . (u - u0) - I0 = rho_c + grad . u
        rho_c = warped[:, :1] - (grad * u).sum(1, keepdim=True) - i0[:, None]
        neg_inv_norm = -1.0 / (grad * grad).sum(1, keepdim=True).clamp_min(FLOAT_EPS)
        error = torch.full((n,), float("inf"), device=u.device)
        for _ in range(s["outerIterations"]):
            active = error > threshold
            if on_cpu and not active.any():
                break
            if median > 1:
                u = _masked(active, median5x5(u), u, on_cpu)
            for _ in range(s["innerIterations"]):
                active = error > threshold
                if on_cpu and not active.any():
                    break
                # v: the pointwise thresholding step of the data term
                rho = rho_c + (grad * u).sum(1, keepdim=True)
                v = torch.addcmul(u, (rho * neg_inv_norm).clamp_(-l_t, l_t), grad)
                new_u = v.add_(_divergence(p), alpha=theta)
                change = new_u - u
                new_error = change.mul_(change).sum((1, 2, 3))
                # p: projected gradient step on the dual of the total variation
                du = _forward_gradient(new_u)
                norm = torch.addcmul(du[:, :, 0] ** 2, du[:, :, 1], du[:, :, 1]).sqrt_()[:, :, None]
                new_p = p.add_(du, alpha=tau_t) if on_cpu and bool(active.all()) else p + tau_t * du
                new_p = new_p.div_(norm.mul_(tau_t).add_(1.0))
                u = _masked(active, new_u, u, on_cpu)
                p = _masked(active, new_p, p, on_cpu)
                error = torch.where(active, new_error, error)
    return u


def _masked(
    active: torch.Tensor, new: torch.Tensor, old: torch.Tensor, on_cpu: bool
) -> torch.Tensor:
    """new for the pairs still iterating, old for those that met the stopping rule."""
    if on_cpu and bool(active.all()):
        return new
    return torch.where(active.view(-1, *[1] * (new.dim() - 1)), new, old)


def tvl1_flow(
    first: torch.Tensor,
    second: torch.Tensor,
    params: Mapping[str, float] | None = None,
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """Dual TV-L1 flow from `first` to `second`, (N, H, W) gray levels 0-255 (uint8 or float,
    any device) -> (N, H, W, 2) float32 pixels (x, y), as cv2's DualTVL1OpticalFlow gives.

    params: OpenCV-named settings (default flow.TVL1_FAST, the "tvl1" setting); interpolation:
    how I1 is warped, "bicubic" as OpenCV or "bilinear" (cheaper, a little less accurate).
    """
    if params is None:
        from talnet.video.flow import TVL1_FAST

        params = TVL1_FAST
    if interpolation not in INTERPOLATIONS:
        raise TalnetError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    s = _settings(params)
    if first.shape != second.shape or first.dim() != 3 or min(first.shape[1:]) < 2:
        raise TalnetError(
            f"need two (N, H, W) batches of frames, got {first.shape}, {second.shape}"
        )
    levels = [(first.float(), second.float())]
    step = float(s["scaleStep"])
    for _ in range(1, s["scalesNumber"]):
        h, w = levels[-1][0].shape[-2:]
        size = (round(h * step), round(w * step))  # round half to even, as cvRound
        if min(size) < 16:
            break
        levels.append(tuple(_resize(x, size, 1.0 / step) for x in levels[-1]))
    u = levels[-1][0].new_zeros((len(first), 2, *levels[-1][0].shape[-2:]))
    for k in range(len(levels) - 1, -1, -1):
        u = _one_scale(*levels[k], u, s, interpolation)
        if k:
            u = _resize(u, levels[k - 1][0].shape[-2:]) / step
    return u.permute(0, 2, 3, 1).contiguous()


class TorchTVL1:
    """The "tvl1-torch" method in create_flow's form: called on two (H, W) uint8 frames it
    gives (H, W, 2) float32 pixels; `pairs` does a whole chunk of frames in batches."""

    def __init__(
        self,
        device: str | torch.device = "cpu",
        batch: int = 32,
        params: Mapping[str, float] | None = None,
        interpolation: str = "bicubic",
    ) -> None:
        self.device = torch.device(device)
        self.batch = batch
        self.params = params
        self.interpolation = interpolation

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return self.flows(first[None], second[None])[0]

    def pairs(self, gray: np.ndarray) -> np.ndarray:
        """(n, H, W) frames -> (n - 1, H, W, 2) float32 flow of each consecutive pair."""
        return self.flows(gray[:-1], gray[1:])

    def flows(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 frame pairs -> (N, H, W, 2) float32 pixels, `batch` pairs at a time."""
        out = np.empty((*first.shape, 2), np.float32)
        with torch.inference_mode():
            for lo in range(0, len(first), self.batch):
                a, b = (
                    torch.from_numpy(np.ascontiguousarray(x[lo : lo + self.batch])).to(self.device)
                    for x in (first, second)
                )
                flow = tvl1_flow(a, b, self.params, self.interpolation)
                out[lo : lo + self.batch] = flow.cpu().numpy()
        return out


__all__ = ["TorchTVL1", "median5x5", "tvl1_flow"]
