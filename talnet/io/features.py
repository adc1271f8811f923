"""Feature files (docs/design.md §2, §6): FEAT_DIR/VIDEO_ID.npy or FEAT_DIR/STREAM/VIDEO_ID.npy."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError
from talnet.io.atomic import atomic_path, safe_child, write_json

META_FILE = "meta.json"


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
    # "concat": one (T, sum(dims)) array per video; "folders": one (T, C) array per stream folder.
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
        # per-clip and streaming I3D features differ (cosine ~0.6-0.8); absent means per clip
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


# Keys written to meta.json only when set, so fixed-grid folders keep their bytes.
_RESAMPLED_KEYS = ("resample_steps", "durations", "video_seconds")


def write_meta(feat_dir: str | Path, meta: FeatureMeta) -> None:
    """Write FEAT_DIR/meta.json atomically (the resampling keys only for resampled features)."""
    raw = asdict(meta)
    raw.pop("video_seconds")  # a per-video view's, never a folder's
    if meta.resample_steps is None:
        for key in _RESAMPLED_KEYS:
            raw.pop(key, None)
    write_json(Path(feat_dir) / META_FILE, raw)


def read_meta_file(feat_dir: str | Path) -> FeatureMeta | None:
    """Read FEAT_DIR/meta.json, or None when there is none."""
    path = Path(feat_dir) / META_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TalnetError(f"cannot read feature meta: {exc}", path) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("extra", {}), dict):
        raise TalnetError("bad feature meta: expected a JSON object (with 'extra' an object)", path)
    known = {k: raw.pop(k) for k in list(raw) if k in FeatureMeta.__dataclass_fields__}
    try:
        meta = FeatureMeta(**known)
    except TypeError as exc:
        raise TalnetError(f"bad feature meta: {exc}", path) from exc
    meta.extra.update(raw)
    return meta


def save_array(
    feat_dir: str | Path, video_id: str, array: np.ndarray, stream: str | None = None
) -> Path:
    """Save one video's features atomically as float32 .npy (in a stream folder if given)."""
    folder = Path(feat_dir) / stream if stream else Path(feat_dir)
    path = safe_child(folder, video_id, ".npy")
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.ascontiguousarray(array, dtype=np.float32))
    return path


_LAYOUTS = ("concat", "folders")


def read_meta(feat_dir: str | Path) -> FeatureMeta:
    """FEAT_DIR's FeatureMeta: meta.json where given, layout and dims inferred from the files.

    Without meta.json the defaults hold (30 fps, stride 4, window 16, rgb+flow); a concat array
    is split evenly between the streams unless `dims` says otherwise.
    """
    feat_dir = Path(feat_dir)
    if not feat_dir.is_dir():
        raise TalnetError("feature folder not found", feat_dir)
    meta = read_meta_file(feat_dir) or FeatureMeta()
    given = _meta_keys(feat_dir)
    if "layout" not in given:
        meta.layout = _infer_layout(feat_dir, meta, streams_given="streams" in given)
    _check_meta(meta, feat_dir / META_FILE)
    if meta.dims is None:
        meta.dims = _infer_dims(feat_dir, meta)
    return meta


def list_feature_videos(feat_dir: str | Path, meta: FeatureMeta) -> list[str]:
    """Sorted ids of the videos with a feature file (in any stream folder, for "folders")."""
    feat_dir = Path(feat_dir)
    folders = [feat_dir] if meta.layout == "concat" else [feat_dir / s for s in meta.streams]
    return sorted(
        {
            p.stem
            for folder in folders
            if folder.is_dir()
            for p in folder.glob("*.npy")
            if not p.name.startswith(".")  # an interrupted atomic write's temporary file
        }
    )


def feature_path(feat_dir: str | Path, video_id: str, meta: FeatureMeta, stream: str) -> Path:
    """Where one video's features live (the stream is ignored for the "concat" layout)."""
    folder = Path(feat_dir) if meta.layout == "concat" else safe_child(feat_dir, stream)
    return safe_child(folder, video_id, ".npy")


def feature_length(feat_dir: str | Path, video_id: str, meta: FeatureMeta) -> int:
    """Number of feature steps T of one video, read from the .npy header without loading it."""
    path = feature_path(feat_dir, video_id, meta, meta.streams[0])
    return int(_open_array(path, video_id, mmap=True).shape[0])


def load_features(feat_dir: str | Path, video_id: str, meta: FeatureMeta) -> dict[str, np.ndarray]:
    """One video's features as {stream: (T, C) float32}, validated (shape, lengths, finiteness)."""
    if meta.layout == "concat":
        path = feature_path(feat_dir, video_id, meta, meta.streams[0])
        whole = _checked_2d(_open_array(path, video_id), path, video_id)
        dims = meta.dims or _even_split(whole.shape[1], meta, path, video_id)
        if sum(dims) != whole.shape[1]:
            parts = " + ".join(f"{s} {d}" for s, d in zip(meta.streams, dims, strict=True))
            raise TalnetError(
                f"video {video_id!r}: wrong dimensionality: {whole.shape[1]} channels, "
                f"expected {sum(dims)} ({parts})",
                path,
            )
        bounds = np.cumsum([0, *dims])
        out = {s: whole[:, bounds[i] : bounds[i + 1]] for i, s in enumerate(meta.streams)}
    else:
        out, lengths = {}, {}
        for i, stream in enumerate(meta.streams):
            path = feature_path(feat_dir, video_id, meta, stream)
            arr = _checked_2d(_open_array(path, video_id), path, video_id)
            if meta.dims is not None and arr.shape[1] != meta.dims[i]:
                raise TalnetError(
                    f"video {video_id!r}: wrong dimensionality: stream {stream!r} has "
                    f"{arr.shape[1]} channels, expected {meta.dims[i]}",
                    path,
                )
            out[stream], lengths[stream] = arr, arr.shape[0]
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{s} {n}" for s, n in lengths.items())
            raise TalnetError(
                f"video {video_id!r}: feature streams have different lengths ({detail} steps)",
                Path(feat_dir),
            )
    return {s: np.ascontiguousarray(a) for s, a in out.items()}


def _open_array(path: Path, video_id: str, mmap: bool = False) -> np.ndarray:
    if not path.is_file():
        raise TalnetError(f"video {video_id!r}: feature file missing", path)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise TalnetError(f"video {video_id!r}: cannot read feature file: {exc}", path) from exc


def _checked_2d(arr: np.ndarray, path: Path, video_id: str) -> np.ndarray:
    where = f"video {video_id!r}"
    if arr.ndim != 2:
        raise TalnetError(
            f"{where}: wrong dimensionality: array of shape {arr.shape}, expected (T, C)", path
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise TalnetError(f"{where}: empty feature array of shape {arr.shape}", path)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TalnetError(f"{where}: features must be real numbers, got dtype {arr.dtype}", path)
    # Checked after the cast to float32, where huge float64 values become inf.
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        steps = np.flatnonzero(bad.any(axis=1))
        raise TalnetError(
            f"{where}: {int(bad.sum())} NaN/inf value(s) in {len(steps)} step(s), "
            f"first at step {int(steps[0])}",
            path,
        )
    return arr


def _even_split(channels: int, meta: FeatureMeta, path: Path, video_id: str) -> list[int]:
    n = len(meta.streams)
    if channels % n:
        raise TalnetError(
            f"video {video_id!r}: wrong dimensionality: {channels} channels cannot be split "
            f"evenly into streams {meta.streams}; give 'dims' in {META_FILE}",
            path,
        )
    return [channels // n] * n


def _meta_keys(feat_dir: Path) -> set[str]:
    path = feat_dir / META_FILE
    if not path.exists():
        return set()
    raw = json.loads(path.read_text())  # already validated by read_meta_file
    return set(raw) if isinstance(raw, dict) else set()


def _infer_layout(feat_dir: Path, meta: FeatureMeta, streams_given: bool) -> str:
    stream_dirs = [feat_dir / s for s in meta.streams if (feat_dir / s).is_dir()]
    if stream_dirs and any(any(d.glob("*.npy")) for d in stream_dirs):
        return "folders"
    if any(feat_dir.glob("*.npy")):
        return "concat"
    if not streams_given:
        # Stream folders under other names (e.g. rgb_i3d/): take them all, in name order.
        subdirs = sorted(d.name for d in feat_dir.iterdir() if d.is_dir() and any(d.glob("*.npy")))
        if subdirs:
            meta.streams = subdirs
            return "folders"
    raise TalnetError(
        f"no .npy feature files (neither VIDEO_ID.npy nor {meta.streams[0]}/…)", feat_dir
    )


def _infer_dims(feat_dir: Path, meta: FeatureMeta) -> list[int] | None:
    videos = list_feature_videos(feat_dir, meta)
    if not videos:
        return None
    if meta.layout == "concat":
        path = feature_path(feat_dir, videos[0], meta, meta.streams[0])
        arr = _open_array(path, videos[0], mmap=True)
        if arr.ndim != 2 or arr.shape[1] % len(meta.streams):
            return None  # load_features reports the problem with the video's name
        return [arr.shape[1] // len(meta.streams)] * len(meta.streams)
    dims = []
    for stream in meta.streams:
        found = [p for p in sorted((feat_dir / stream).glob("*.npy")) if not p.name.startswith(".")]
        if not found:
            return None
        arr = _open_array(found[0], found[0].stem, mmap=True)
        if arr.ndim != 2:
            return None
        dims.append(int(arr.shape[1]))
    return dims


def _check_meta(meta: FeatureMeta, path: Path) -> None:
    """Refuse a meta.json whose values cannot describe a feature grid."""
    for name in ("fps", "stride", "window"):
        value = getattr(meta, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise TalnetError(f"'{name}' must be a positive number, got {value!r}", path)
        if name != "fps" and value != int(value):
            raise TalnetError(f"'{name}' must be a whole number of frames, got {value!r}", path)
    meta.stride, meta.window = int(meta.stride), int(meta.window)
    if (
        not isinstance(meta.streams, list)
        or not meta.streams
        or not all(isinstance(s, str) and s for s in meta.streams)
        or len(set(meta.streams)) != len(meta.streams)
    ):
        raise TalnetError(f"'streams' must be a list of distinct names, got {meta.streams!r}", path)
    for stream in meta.streams:
        safe_child(path.parent, stream)  # stream names become folder names
    _check_resampling(meta, path)
    if meta.layout not in _LAYOUTS:
        raise TalnetError(f"'layout' must be one of {_LAYOUTS}, got {meta.layout!r}", path)
    if meta.dims is not None and (
        not isinstance(meta.dims, list)
        or len(meta.dims) != len(meta.streams)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in meta.dims)
    ):
        raise TalnetError(
            f"'dims' must list one positive channel count per stream {meta.streams}, "
            f"got {meta.dims!r}",
            path,
        )


def _check_resampling(meta: FeatureMeta, path: Path) -> None:
    """Refuse resampling keys that cannot map steps to seconds."""
    steps = meta.resample_steps
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise TalnetError(f"'resample_steps' must be a positive whole number, got {steps!r}", path)
    if not isinstance(meta.durations, dict):
        raise TalnetError("'durations' must map video ids to seconds", path)
    for video_id, seconds in meta.durations.items():
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise TalnetError(
                f"'durations': video {video_id!r} must have a positive duration, got {seconds!r}",
                path,
            )
    if meta.durations and steps is None:
        raise TalnetError("'durations' given without 'resample_steps'", path)
    meta.video_seconds = None
