"""Sliding I3D windows over frames that arrive in chunks, and per-stream batching through I3D.

Windows follow the step rule of docs/design.md §2: step i covers frames [i*stride,
i*stride + window); a video shorter than one window gives one window padded with its last frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np


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


class StreamRunner:
    """Batches one stream's windows through its I3D feature function; collects (T, 1024)."""

    def __init__(self, stream: str, feature_fn: Callable, batch: int) -> None:
        self.stream, self.feature_fn, self.batch = stream, feature_fn, batch
        self.pending: list[np.ndarray] = []
        self.features: list[np.ndarray] = []

    def add(self, windows: Iterable[np.ndarray]) -> None:
        """Queue windows (window, H, W, C); run I3D on every full batch."""
        for w in windows:
            self.pending.append(w)
            if len(self.pending) >= self.batch:
                self.flush()

    def flush(self) -> None:
        """Run I3D on the queued windows (a partial batch at the end of a video)."""
        if not self.pending:
            return
        import torch

        clips = np.stack(self.pending)  # (N, T, H, W, C)
        self.pending = []
        x = torch.from_numpy(clips)
        if self.stream == "rgb":
            x = x.float().div_(127.5).sub_(1.0)  # uint8 -> [-1, 1]
        x = x.permute(0, 4, 1, 2, 3)  # (N, C, T, H, W); the extractor picks the memory format
        self.features.append(self.feature_fn(x).numpy())

    def result(self) -> np.ndarray:
        """All features of the video so far, (T, 1024) float32."""
        self.flush()
        return np.concatenate(self.features).astype(np.float32)


__all__ = ["StreamRunner", "Windows"]
