"""How feature steps map to time (docs/design.md §2): `FeatureMeta`, the one owner of the step
rule, the step <-> seconds conversions and what makes two feature sets incompatible. Reading
and writing it to FEAT_DIR/meta.json is talnet.io.features'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError


@dataclass
class FeatureMeta:
    """How feature steps map to time, and which streams the arrays hold.

    Fixed grid (extracted features): step i covers frames [i*stride, i*stride + window) at
    `fps`; its time is the window's centre. Resampled (`resample_steps` = N, written by
    `talnet resample-features`): every video has N steps, step i centred at (i + 0.5) * D / N
    for the video's duration D (`durations`); `for_video(id)` gives the one video's view, whose
    conversions need no id. fps, stride and window then describe the grid resampled from.
    """

    fps: float = 30.0
    stride: int = 4
    window: int = 16
    streams: list[str] = field(default_factory=lambda: ["rgb", "flow"])
    # "concat": one (T, sum(dims)) array per video; "folders": one (T, C) array per stream folder;
    # "packed": one (total_steps, C) memory-mapped array per stream and an index (talnet.io.packed).
    layout: str = "concat"
    dims: list[int] | None = None
    extra: dict = field(default_factory=dict)
    resample_steps: int | None = None  # N: every video resampled to N steps
    durations: dict[str, float] = field(default_factory=dict)  # video id -> seconds (resampled)
    video_seconds: float | None = None  # the one video's D in a `for_video` view

    def for_video(self, video_id: str, source: str | Path | None = None) -> FeatureMeta:
        """The grid of one video: itself on a fixed grid; for resampled features a view bound
        to the video's recorded duration (an error naming `source` when none is recorded)."""
        if self.resample_steps is None:
            return self
        if video_id not in self.durations:
            raise TalnetError(
                f"video {video_id!r}: no duration recorded for features resampled to "
                f"{self.resample_steps} steps",
                source,
            )
        return replace(self, durations={}, video_seconds=float(self.durations[video_id]))

    def without_videos(self) -> FeatureMeta:
        """The grid alone (no per-video durations): what a checkpoint records."""
        return replace(self, durations={}, video_seconds=None)

    def _resampled_unit(self) -> float:
        """Seconds per step of a resampled video's view, D / N."""
        if self.video_seconds is None:
            raise TalnetError(
                "features resampled to a fixed number of steps map to seconds per video: "
                "use FeatureMeta.for_video(video_id)"
            )
        return self.video_seconds / float(self.resample_steps or 1)

    def step_to_seconds(self, step: np.ndarray | float) -> np.ndarray | float:
        """Feature step (may be fractional) -> seconds; the one place this conversion lives."""
        if self.resample_steps is not None:
            return (np.asarray(step) + 0.5) * self._resampled_unit()
        return (np.asarray(step) * self.stride + self.window / 2.0) / self.fps

    def seconds_to_step(self, seconds: np.ndarray | float) -> np.ndarray | float:
        """Seconds -> fractional feature step, the inverse of `step_to_seconds`."""
        if self.resample_steps is not None:
            return np.asarray(seconds) / self._resampled_unit() - 0.5
        return (np.asarray(seconds) * self.fps - self.window / 2.0) / self.stride

    @property
    def seconds_per_step(self) -> float:
        if self.resample_steps is not None:
            return self._resampled_unit()
        return self.stride / self.fps

    def num_steps(self, n_frames: int) -> int:
        """Feature steps of a video of n_frames: floor((n - window) / stride) + 1, at least 1
        (a video shorter than one window is padded by repeating its last frame), 0 if empty;
        N for any non-empty video of resampled features."""
        if n_frames < 1:
            return 0
        if self.resample_steps is not None:
            return int(self.resample_steps)
        return max(1, (int(n_frames) - self.window) // self.stride + 1)

    def step_times(self, num_steps: int) -> np.ndarray:
        """Centre times in seconds of steps 0..T-1, (T,) float64."""
        return np.asarray(self.step_to_seconds(np.arange(num_steps)), dtype=np.float64)

    def duration(self, num_steps: int) -> float:
        """Seconds of video covered by T feature windows: ((T - 1) * stride + window) / fps;
        T * D / N for a resampled video (D itself when T = N)."""
        if self.resample_steps is not None:
            return num_steps * self._resampled_unit()
        return ((num_steps - 1) * self.stride + self.window) / self.fps

    def mismatches(self, other: FeatureMeta) -> list[str]:
        """What keeps features described by `other` from feeding a model trained on features
        described by `self`: one phrase per differing setting, [] when they fit. Streams of
        `other` beyond those of `self` are fine (a model may use a subset). The backbone counts
        when both record one (`extra["backbone"]`, as `talnet extract` writes)."""
        found = []
        trained_by = (self.extra or {}).get("backbone")
        here_by = (other.extra or {}).get("backbone")
        if trained_by and here_by and trained_by != here_by:
            found.append(f"backbone {trained_by} in training, {here_by} here")
        # per-clip and streaming I3D features differ (`talnet bench --only i3d` prints the
        # cosine between them); absent means per clip
        trained_mode = (self.extra or {}).get("clip_mode") or "clip"
        here_mode = (other.extra or {}).get("clip_mode") or "clip"
        if trained_mode != here_mode:
            found.append(f"clip mode {trained_mode} in training, {here_mode} here")
        if self.resample_steps != other.resample_steps:
            found.append(
                f"{_resampling(self.resample_steps)} in training, "
                f"{_resampling(other.resample_steps)} here"
            )
        if not math.isclose(self.fps, other.fps, rel_tol=1e-6):
            found.append(f"fps {self.fps:g} in training, {other.fps:g} here")
        for key in ("stride", "window"):
            trained, here = getattr(self, key), getattr(other, key)
            if trained != here:
                found.append(f"{key} {trained} in training, {here} here")
        missing = [s for s in self.streams if s not in other.streams]
        if missing:
            found.append(f"stream(s) {missing} missing (streams here: {other.streams})")
        if self.dims is not None and other.dims is not None:
            widths = dict(zip(other.streams, other.dims, strict=True))
            for stream, dim in zip(self.streams, self.dims, strict=True):
                if stream in widths and widths[stream] != dim:
                    found.append(f"stream {stream!r} {dim}-d in training, {widths[stream]}-d here")
        return found

    def restricted_to(self, streams: list[str], dims: list[int] | None = None) -> FeatureMeta:
        """A copy describing only `streams` (in that order), with `dims` when given."""
        return replace(self, streams=list(streams), dims=list(dims) if dims else None)


def _resampling(steps: int | None) -> str:
    return "not resampled" if steps is None else f"resampled to {steps} steps"
