"""Streaming I3D (`--clip-mode streaming`): run the network over the frame sequence once per
phase and pool Mixed_5c per window, instead of once per overlapping clip.

I3D is convolutional in time with a total temporal stride of 8 at Mixed_5c: a 16-frame clip
gives 2 Mixed_5c steps, and the clip starting at frame s = φ + 8m (φ = s mod 8, the phase) covers
Mixed_5c steps m and m + 1 of the sequence started at frame φ. So a pass over the sequence
from frame φ yields every clip of that phase by averaging two steps (and 7×7 positions). At
stride 4 there are two phases: each frame goes through the network twice instead of four times.

Features differ from the exact per-clip ones (the default, as public feature sets are made):
a clip then sees its neighbours through the receptive field (99 frames) instead of zero padding.
Long videos run in cores of `core` frames with `margin` frames of context on each side (56 >=
half the receptive field, multiples of 8 so every strided layer keeps its alignment), which
equals one pass over the whole video, end-padded to a multiple of 8 with its last frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from talnet.io.features import FeatureMeta
from talnet.video.windows import scaled_rgb

TEMPORAL_STRIDE = 8  # frames per Mixed_5c step
MARGIN = 56  # frames of context each side of a core: >= 49, half of Mixed_5c's receptive field
CORE = 448  # frames whose Mixed_5c steps one pass keeps

# (1, C, L, H, W) clip tensor -> (1, 1024, L / 8) Mixed_5c averaged over space
StepFn = Callable[[torch.Tensor], torch.Tensor]


def check_grid(window: int, stride: int) -> None:
    """Streaming needs windows made of whole Mixed_5c steps."""
    if window % TEMPORAL_STRIDE or stride < 1:
        raise ValueError(
            f"streaming clips need a window that is a multiple of {TEMPORAL_STRIDE} frames, "
            f"got {window}"
        )


def phases(stride: int) -> list[int]:
    """The distinct start offsets mod 8 of windows i * stride."""
    return sorted({(i * stride) % TEMPORAL_STRIDE for i in range(TEMPORAL_STRIDE)})


def step_features(model: torch.nn.Module, device: str | torch.device = "cpu") -> StepFn:
    """Mixed_5c averaged over space, per temporal step, in inference mode (channels-last)."""
    model = model.eval().to(memory_format=torch.channels_last_3d)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            x = x.to(device, torch.float32).contiguous(memory_format=torch.channels_last_3d)
            return model.feature_map(x).mean(dim=(3, 4)).float().cpu()

    return run


class StreamingRunner:
    """One stream's frames, arriving in chunks, -> (T, 1024) window features by streaming.

    Frames are (n, H, W, C) uint8 RGB (scaled to [-1, 1] here) or float flow already scaled.
    Windows follow the step rule (docs/design.md §2), including a video shorter than a window.
    """

    def __init__(
        self,
        stream: str,
        step_fn: StepFn,
        window: int,
        stride: int,
        core: int = CORE,
        margin: int = MARGIN,
    ) -> None:
        check_grid(window, stride)
        if core % TEMPORAL_STRIDE or margin % TEMPORAL_STRIDE or core < 1:
            raise ValueError(f"core and margin must be multiples of {TEMPORAL_STRIDE}")
        self.stream, self.step_fn = stream, step_fn
        self.window, self.stride, self.core, self.margin = window, stride, core, margin
        self._buf: np.ndarray | None = None
        self._offset = 0  # absolute index of _buf[0]
        self.total = 0
        # per phase: absolute frame of the next core, and the Mixed_5c steps computed so far
        self._next = {p: p for p in phases(stride)}
        self._steps: dict[int, list[np.ndarray]] = {p: [] for p in self._next}
        self.passes = 0  # network calls, for benchmarks
        self.frames_in = 0  # frames sent through the network, margins and padding included

    def add(self, blocks: Iterable[np.ndarray]) -> None:
        """Queue blocks of frames (n, H, W, C); run every core whose right margin has arrived."""
        for frames in blocks:
            self._add(frames)

    def _add(self, frames: np.ndarray) -> None:
        self._buf = frames if self._buf is None else np.concatenate([self._buf, frames])
        self.total += len(frames)
        for phase in self._next:
            while self._next[phase] + self.core + self.margin <= self.total:
                self._run(phase, final=False)
        keep = min(self._next.values()) - self.margin
        drop = max(0, min(keep - self._offset, len(self._buf)))
        self._buf, self._offset = self._buf[drop:], self._offset + drop

    def result(self) -> np.ndarray:
        """After the last frame: the (T, 1024) features of every window, in step order."""
        if self.total == 0:
            raise ValueError("no frames")
        if self.total < self.window:  # one window, padded with the last frame (step rule)
            pad = np.repeat(self._buf[-1:], self.window - self.total, axis=0)
            self._buf = np.concatenate([self._buf, pad])
            self.total = self.window
        count = FeatureMeta(window=self.window, stride=self.stride).num_steps(self.total)
        for phase in self._next:
            while self._next[phase] < self.total:
                self._run(phase, final=True)
        steps = {p: np.concatenate(parts) for p, parts in self._steps.items() if parts}
        per_window = self.window // TEMPORAL_STRIDE
        rows = []
        for start in range(0, count * self.stride, self.stride):
            phase = start % TEMPORAL_STRIDE
            first = (start - phase) // TEMPORAL_STRIDE
            rows.append(steps[phase][first : first + per_window].mean(axis=0))
        return np.stack(rows).astype(np.float32)

    def _run(self, phase: int, final: bool) -> None:
        """Compute the Mixed_5c steps of the next core of `phase` (with its margins)."""
        start = self._next[phase]
        lo = max(phase, start - self.margin)
        hi = min(self.total, start + self.core + self.margin)
        segment = self._buf[lo - self._offset : hi - self._offset]
        short = (-len(segment)) % TEMPORAL_STRIDE
        if short:  # only at the end of the video: pad with its last frame
            segment = np.concatenate([segment, np.repeat(segment[-1:], short, axis=0)])
        x = torch.from_numpy(np.ascontiguousarray(segment))
        if self.stream == "rgb":
            x = scaled_rgb(x)
        x = x.movedim(-1, 0)[None]  # (1, C, L, H, W)
        steps = self.step_fn(x)[0].T.numpy()  # (L / 8, 1024)
        first = (start - lo) // TEMPORAL_STRIDE
        end = min(start + self.core, self.total + short) if final else start + self.core
        count = (end - start + TEMPORAL_STRIDE - 1) // TEMPORAL_STRIDE
        self._steps[phase].append(steps[first : first + count])
        self._next[phase] = start + self.core
        self.passes += 1
        self.frames_in += len(segment)


__all__ = ["CORE", "MARGIN", "StreamingRunner", "check_grid", "phases", "step_features"]
