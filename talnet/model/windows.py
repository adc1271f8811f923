"""Long-video inference window by window (docs/design.md §4), so that memory does not grow
with the video beyond a few numbers per step.

A video longer than `detect.window_steps` is cut into the fewest equal windows of at most that
many steps (`tile_windows`), overlapping by twice the widest reach of the network run on them
(at most half a window); each step's output is taken from the window where it lies farthest
from an edge, so it equals a whole-video pass. Windows run one after another: only one window's
inputs and tower activations exist at a time. The inputs are read a window at a time through
`VideoRows` (views of memory-mapped files are fine; an early-fusion branch's streams are
concatenated per window, never for the whole video).

Proposal candidates: each window keeps the objectness of every anchor and step (one float per
anchor and step) and the offsets of only its own best `pre_nms` anchors (with ties at its cut);
the video's `pre_nms` best are then ranked by the same `topk` over the same scores as a
whole-video pass, so they are exactly those of `generate_proposals` on the stitched outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from talnet.model.towers import tile_windows
from talnet.model.video_head import VideoClassifier

Rows = dict[str, torch.Tensor]  # {branch: (1, n, C)}
PerStep = torch.Tensor | list[torch.Tensor] | None  # time first: (n, ...), or a list of them


class VideoRows:
    """One video's inputs {name: (T, C) or (1, T, C)}, grouped into branches {branch: names},
    read a range of steps at a time on `device` (the whole range of a short video at once)."""

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        branches: dict[str, list[str]],
        device: torch.device | None = None,
    ):
        self.tensors = {k: v[0] if v.dim() == 3 else v for k, v in tensors.items()}
        if any(v.dim() != 2 for v in self.tensors.values()):
            raise ValueError("VideoRows takes one video's (T, C) or (1, T, C) tensors")
        self.branches, self.device = branches, device
        self.length = int(next(iter(self.tensors.values())).shape[0])

    def rows(self, lo: int, hi: int) -> Rows:
        """Steps [lo, hi) of every branch as (1, hi - lo, C), its streams side by side."""
        out = {}
        for name, parts in self.branches.items():
            xs = [self.tensors[p][lo:hi] for p in parts]
            x = torch.cat(xs, dim=-1) if len(xs) > 1 else xs[0]
            out[name] = (x if self.device is None else x.to(self.device))[None]
        return out

    def whole(self) -> Rows:
        """Every step of every branch: the model's `branch_inputs`, on the device."""
        return self.rows(0, self.length)


@dataclass(frozen=True)
class WindowPlan:
    """Overlapping windows of `size` steps at `starts`, over a video of `length` steps."""

    length: int
    size: int
    starts: list[int]

    def owned(self) -> Iterator[tuple[int, int, int]]:
        """(start, lo, hi) per window: it owns steps [lo, hi), from the midpoint of its overlap
        with the previous window to that with the next (so each step lies farthest inside)."""
        starts, size = self.starts, self.size
        for w, s in enumerate(starts):
            lo = 0 if w == 0 else (s + starts[w - 1] + size) // 2
            hi = self.length if w == len(starts) - 1 else (starts[w + 1] + s + size) // 2
            yield s, lo, hi


def plan_windows(length: int, window: int, reach: int) -> WindowPlan:
    """Windows of at most `window` steps (more when 4 x `reach` is more, so that the overlap of
    2 x reach fits) overlapping enough for outputs that see `reach` steps on either side."""
    window = max(window, 4 * reach, 1)
    size, starts = tile_windows(length, window, min(window // 2, 2 * reach))
    return WindowPlan(length, size, starts)


def stitched(fn: Callable[[Rows], PerStep], video: VideoRows, plan: WindowPlan) -> PerStep:
    """`fn`'s per-step output (time first; a tensor, a list of them or None) for the whole
    video, computed window by window and stitched from the steps each window owns; a video of
    one window is one call on all of it, exactly as before windowing."""
    if len(plan.starts) == 1:
        return fn(video.whole())
    out: list[torch.Tensor] | None = None
    single = False
    for start, lo, hi in plan.owned():
        part = fn(video.rows(start, start + plan.size))
        if part is None:
            return None
        single = isinstance(part, torch.Tensor)
        parts = [part] if single else list(part)
        if out is None:
            out = [p.new_empty((video.length, *p.shape[1:])) for p in parts]
        for whole, p in zip(out, parts, strict=True):
            whole[lo:hi] = p[lo - start : hi - start]
    assert out is not None
    return out[0] if single else out


Outputs = Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]


def window_outputs(
    propose: Callable[[Rows], tuple[torch.Tensor, torch.Tensor]],
    video: VideoRows,
    plan: WindowPlan,
) -> Outputs:
    """(lo, hi, objectness (K, hi - lo, 2), offsets (K, hi - lo, 2)) of the steps each window
    owns, window after window; `propose` maps rows (1, n, C) to fused (1, K, n, 2) twice."""
    for start, lo, hi in plan.owned():
        rows = video.whole() if len(plan.starts) == 1 else video.rows(start, start + plan.size)
        objectness, offsets = propose(rows)
        owned = slice(lo - start, hi - start)
        yield lo, hi, objectness[0, :, owned], offsets[0, :, owned]


def stitch_outputs(outputs: Outputs, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows' owned outputs laid side by side: objectness and offsets (K, T, 2)."""
    whole: list[torch.Tensor] = []
    for lo, hi, objectness, offsets in outputs:
        if not whole:
            whole = [x.new_empty(x.shape[0], length, 2) for x in (objectness, offsets)]
        whole[0][:, lo:hi] = objectness
        whole[1][:, lo:hi] = offsets
    return whole[0], whole[1]


@dataclass(frozen=True)
class Candidates:
    """A video's best anchors before proposal NMS, best first: flat positions k * T + t (N,),
    objectness (N,) and offsets (N, 2), as `generate_proposals` ranks them."""

    index: torch.Tensor
    scores: torch.Tensor
    offsets: torch.Tensor
    length: int


def objectness_scores(objectness: torch.Tensor) -> torch.Tensor:
    """Objectness logits (..., 2) -> the foreground probability (...), as proposals rank it."""
    scores = torch.softmax(objectness.reshape(-1, 2).float(), dim=-1)[:, 1]
    return scores.view(objectness.shape[:-1])


def top_candidates(outputs: Outputs, length: int, pre_nms: int) -> Candidates:
    """The `pre_nms` best anchors of the whole video from its windows' outputs: every window's
    scores and only its own `pre_nms` best offsets (and any tied with the last of them) kept.
    The video's best are the same `topk` of the same scores as a whole-video pass: each is
    among its window's best, ties included, so the result is exactly that pass's."""
    scores: torch.Tensor | None = None
    index = offsets_kept = torch.empty(0)
    used = 0
    for lo, hi, objectness, offsets in outputs:
        part = objectness_scores(objectness)  # (K, n)
        if scores is None:
            scores = part.new_empty(part.shape[0], length)
            # room for every window's best, made once: small tensors kept window after window
            # would pin the heap between the windows' temporaries (and grow it by as much)
            room = min(scores.numel(), pre_nms * (2 * -(-length // (hi - lo)) + 1))
            index = torch.empty(room, dtype=torch.long, device=part.device)
            offsets_kept = offsets.new_empty(room, 2)
        scores[:, lo:hi] = part
        flat = part.flatten()
        bound = flat.topk(min(pre_nms, flat.numel())).values[-1]
        keep = torch.nonzero(flat >= bound).flatten()
        if used + len(keep) > len(index):  # more windows or ties than foreseen
            grown = max(2 * len(index), used + len(keep))
            index = torch.cat([index[:used], index.new_empty(grown - used)])
            offsets_kept = torch.cat([offsets_kept[:used], offsets_kept.new_empty(grown - used, 2)])
        rows, cols = keep // (hi - lo), keep % (hi - lo)
        index[used : used + len(keep)] = rows * length + lo + cols
        offsets_kept[used : used + len(keep)] = offsets[rows, cols]
        used += len(keep)
    assert scores is not None
    kept, order = index[:used].sort()
    flat = scores.flatten()
    top = flat.topk(min(pre_nms, flat.numel())).indices
    where = torch.searchsorted(kept, top).clamp(max=used - 1)
    if not torch.equal(kept[where], top):  # cannot happen: each is among its window's best
        raise RuntimeError("windowed proposal candidates lost one of the video's best")
    return Candidates(top, flat[top], offsets_kept[order[where]], length)


def pooled_mean_max(video: VideoRows, plan: WindowPlan) -> torch.Tensor:
    """[mean | max] over time of all branches' inputs side by side (1, 2C), as the video-level
    classifier pools them, read window by window (owned steps only: each step counted once)."""
    if len(plan.starts) == 1:
        return VideoClassifier.pool(torch.cat(list(video.whole().values()), dim=-1))
    total: torch.Tensor | None = None
    most: torch.Tensor | None = None
    for _, lo, hi in plan.owned():
        x = torch.cat(list(video.rows(lo, hi).values()), dim=-1)[0].double()
        total = x.sum(dim=0) if total is None else total + x.sum(dim=0)
        peak = x.amax(dim=0)
        most = peak if most is None else torch.maximum(most, peak)
    assert total is not None and most is not None
    dtype = next(iter(video.tensors.values())).dtype
    return torch.cat([total / video.length, most]).to(dtype)[None]
