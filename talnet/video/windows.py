"""Sliding I3D windows (or InceptionV3's one frame per step) over frames that arrive in chunks,
and per-stream batching through the backbone.

Windows follow the step rule of docs/design.md §2: step i covers frames [i*stride,
i*stride + window); a video shorter than one window gives one window padded with its last frame.
A per-frame backbone sees the middle frame of each window (`centre_frames`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from talnet.io.features import FeatureMeta

if TYPE_CHECKING:  # torch loads when a backbone runs, not when windows are cut
    import torch


def centre_frames(n_frames: int, window: int, stride: int) -> np.ndarray:
    """Index of the frame a per-frame backbone sees at each feature step, (T,) int64.

    Step i's window is [i*stride, i*stride + window) and its time (i*stride + window/2) / fps;
    the frame on screen then is i*stride + window // 2, the window's middle. T follows the step
    rule; a video shorter than that frame gives its last frame (the padded window's middle).
    """
    steps = FeatureMeta(window=window, stride=stride).num_steps(n_frames)
    return np.minimum(np.arange(steps, dtype=np.int64) * stride + window // 2, n_frames - 1)


class Windows:
    """Cut a stream of frames, arriving in chunks, into windows per the step rule."""

    def __init__(self, window: int, stride: int) -> None:
        self.window, self.stride = window, stride
        self._buf: np.ndarray | None = None
        self._offset = 0  # absolute index of _buf[0]
        self._next = 0  # absolute start of the next window
        self.total = 0

    def push(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Add frames (n, ...); yield every window (window, ...) now complete."""
        self._buf = frames if self._buf is None else np.concatenate([self._buf, frames])
        self.total += len(frames)
        while self._next + self.window <= self.total:
            start = self._next - self._offset
            yield self._buf[start : start + self.window]
            self._next += self.stride
        drop = min(self._next - self._offset, len(self._buf))
        self._buf, self._offset = self._buf[drop:], self._offset + drop

    def finish(self) -> Iterator[np.ndarray]:
        """After the last frame: a video shorter than one window gives one padded window."""
        if self._next == 0 and self.total > 0:
            pad = np.repeat(self._buf[-1:], self.window - self.total, axis=0)
            yield np.concatenate([self._buf, pad])


class CentreFrames:
    """The middle frame of each window (`centre_frames`), from frames arriving in chunks."""

    def __init__(self, window: int, stride: int) -> None:
        self._windows = Windows(window, stride)
        self._middle = window // 2

    def push(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Add frames (n, ...); yield the middle frame (...) of every window now complete."""
        return (w[self._middle] for w in self._windows.push(frames))

    def finish(self) -> Iterator[np.ndarray]:
        """After the last frame: a video shorter than one window gives its padded window's."""
        return (w[self._middle] for w in self._windows.finish())


def scaled_rgb(frames: torch.Tensor) -> torch.Tensor:
    """uint8 RGB -> float32 in [-1, 1], the input range of I3D and InceptionV3."""
    return frames.float().div_(127.5).sub_(1.0)


class Unwindowed:
    """Frames pass through as one block, for runners that cut their own windows (streaming)."""

    def push(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Add frames (n, ...); yield them as they are."""
        yield frames

    def finish(self) -> Iterator[np.ndarray]:
        """Nothing is held back."""
        return iter(())


class StreamRunner:
    """Batches one stream's windows (or frames) through its backbone; collects (T, D)."""

    def __init__(self, stream: str, feature_fn: Callable, batch: int) -> None:
        self.stream, self.feature_fn, self.batch = stream, feature_fn, batch
        self.pending: list[np.ndarray] = []
        self.features: list[np.ndarray] = []

    def add(self, windows: Iterable[np.ndarray]) -> None:
        """Queue windows (window, H, W, C) or frames (H, W, C); run every full batch."""
        for w in windows:
            self.pending.append(w)
            if len(self.pending) >= self.batch:
                self.flush()

    def flush(self) -> None:
        """Run the backbone on the queued inputs (a partial batch at the end of a video)."""
        if not self.pending:
            return
        import torch

        clips = np.stack(self.pending)  # (N, T, H, W, C) clips or (N, H, W, C) frames
        self.pending = []
        x = torch.from_numpy(clips)
        if self.stream == "rgb":
            x = scaled_rgb(x)
        # (N, C, T, H, W) or (N, C, H, W); the extractor picks the memory format
        x = x.movedim(-1, 1)
        self.features.append(self.feature_fn(x).numpy())

    def result(self) -> np.ndarray:
        """All features of the video so far, (T, D) float32."""
        self.flush()
        return np.concatenate(self.features).astype(np.float32)


__all__ = ["CentreFrames", "StreamRunner", "Unwindowed", "Windows", "centre_frames", "scaled_rgb"]
