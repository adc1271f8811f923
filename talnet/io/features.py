"""Feature files (docs/design.md §2, §6): FEAT_DIR/VIDEO_ID.npy or FEAT_DIR/STREAM/VIDEO_ID.npy,
described by FEAT_DIR/meta.json (a FeatureMeta, re-exported here with the functions that take it);
layout "packed" (one memory-mapped array per stream) is talnet.io.packed's.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError
from talnet.io import packed
from talnet.io.atomic import atomic_path, safe_child, write_json
from talnet.io.feature_meta import FeatureMeta  # re-exported: callers take it from here

META_FILE = "meta.json"

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
    raw = _read_raw_meta(feat_dir)
    return None if raw is None else _meta_from_raw(raw, Path(feat_dir) / META_FILE)


def _read_raw_meta(feat_dir: str | Path) -> dict | None:
    """FEAT_DIR/meta.json parsed (once), a JSON object with 'extra' an object; None if absent."""
    path = Path(feat_dir) / META_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TalnetError(f"cannot read feature meta: {exc}", path) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("extra", {}), dict):
        raise TalnetError("bad feature meta: expected a JSON object (with 'extra' an object)", path)
    return raw


def _meta_from_raw(raw: dict, path: Path) -> FeatureMeta:
    """The FeatureMeta of a parsed meta.json: its known keys, any others added to `extra`."""
    known = {k: v for k, v in raw.items() if k in FeatureMeta.__dataclass_fields__}
    try:
        meta = FeatureMeta(**known)
    except TypeError as exc:
        raise TalnetError(f"bad feature meta: {exc}", path) from exc
    meta.extra.update({k: v for k, v in raw.items() if k not in known})
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


_LAYOUTS = ("concat", "folders", packed.LAYOUT)


def read_meta(feat_dir: str | Path) -> FeatureMeta:
    """FEAT_DIR's FeatureMeta: meta.json where given, layout and dims inferred from the files.

    Without meta.json the defaults hold (30 fps, stride 4, window 16, rgb+flow); a concat array
    is split evenly between the streams unless `dims` says otherwise.
    """
    feat_dir = Path(feat_dir)
    if not feat_dir.is_dir():
        raise TalnetError("feature folder not found", feat_dir)
    path = feat_dir / META_FILE
    raw = _read_raw_meta(feat_dir)
    meta = FeatureMeta() if raw is None else _meta_from_raw(raw, path)
    given = set(raw or ())
    if "layout" not in given:
        layout, streams = _infer_layout(feat_dir, meta, streams_given="streams" in given)
        meta = replace(meta, layout=layout, streams=streams)
    meta = _checked_meta(meta, path)
    if meta.layout == packed.LAYOUT:  # checked against its arrays when opened
        return packed.open_store(feat_dir).checked_meta(meta, path)
    if meta.dims is None:
        meta = replace(meta, dims=_infer_dims(feat_dir, meta))
    return meta


def list_feature_videos(feat_dir: str | Path, meta: FeatureMeta) -> list[str]:
    """Sorted ids of the videos with a feature file (in any stream folder, for "folders")."""
    if meta.layout == packed.LAYOUT:
        return packed.open_store(feat_dir).videos()
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
    if meta.layout == packed.LAYOUT:
        return packed.open_store(feat_dir).length(video_id)
    path = feature_path(feat_dir, video_id, meta, meta.streams[0])
    return int(_open_array(path, video_id, mmap=True).shape[0])


def load_features(
    feat_dir: str | Path, video_id: str, meta: FeatureMeta, mmap: bool = False
) -> dict[str, np.ndarray]:
    """One video's features as {stream: (T, C) float32}, validated (shape, lengths, finiteness).

    With `mmap` (detection: memory bounded on hours-long videos), float32 files come back as
    read-only memory-mapped views, not copied (a concat file's streams are column slices)."""
    if meta.layout == packed.LAYOUT:
        store = packed.open_store(feat_dir)
        if not mmap:
            return store.load(video_id, meta)
        views = store.views(video_id, meta, check=False)
        for stream, view in views.items():  # the same check, a block of steps at a time
            _check_finite(view, store.folder / f"{stream}.npy", video_id)
        return views
    if meta.layout == "concat":
        path = feature_path(feat_dir, video_id, meta, meta.streams[0])
        whole = _checked_2d(_open_array(path, video_id, mmap), path, video_id)
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
            arr = _checked_2d(_open_array(path, video_id, mmap), path, video_id)
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
    return out if mmap else {s: np.ascontiguousarray(a) for s, a in out.items()}


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
    # Checked after the cast to float32, where huge float64 values become inf. (A C-ordered
    # float32 memory map stays a view: no copy.)
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    _check_finite(arr, path, video_id)
    return arr


_CHECK_BYTES = 1 << 24  # finiteness is checked 16 MB of values at a time


def _check_finite(arr: np.ndarray, path: Path, video_id: str) -> None:
    """Refuse NaN/inf in a (T, C) array, naming how many and the first bad step; checked a
    block of steps at a time, so no mask of the whole video is ever made."""
    rows = max(1, _CHECK_BYTES // max(1, arr.shape[1] * arr.itemsize))
    values = steps = 0
    first = -1
    for lo in range(0, arr.shape[0], rows):
        finite = np.isfinite(arr[lo : lo + rows])
        if not finite.all():
            bad = ~finite
            per_step = bad.any(axis=1)
            values, steps = values + int(bad.sum()), steps + int(per_step.sum())
            first = first if first >= 0 else lo + int(np.argmax(per_step))
    if first >= 0:
        raise TalnetError(
            f"video {video_id!r}: {values} NaN/inf value(s) in {steps} step(s), "
            f"first at step {first}",
            path,
        )


def _even_split(channels: int, meta: FeatureMeta, path: Path, video_id: str) -> list[int]:
    dims = _even_dims(channels, meta)
    if dims is None:
        raise TalnetError(
            f"video {video_id!r}: wrong dimensionality: {channels} channels cannot be split "
            f"evenly into streams {meta.streams}; give 'dims' in {META_FILE}",
            path,
        )
    return dims


def _even_dims(channels: int, meta: FeatureMeta) -> list[int] | None:
    """`channels` shared equally by the streams, None when they do not divide evenly."""
    n = len(meta.streams)
    return None if channels % n else [channels // n] * n


def _infer_layout(feat_dir: Path, meta: FeatureMeta, streams_given: bool) -> tuple[str, list[str]]:
    """(layout, streams) the files show: the meta's streams, unless none were given and the
    stream folders have other names."""
    stream_dirs = [feat_dir / s for s in meta.streams if (feat_dir / s).is_dir()]
    if stream_dirs and any(any(d.glob("*.npy")) for d in stream_dirs):
        return "folders", meta.streams
    if any(feat_dir.glob("*.npy")):
        return "concat", meta.streams
    if not streams_given:
        # Stream folders under other names (e.g. rgb_i3d/): take them all, in name order.
        subdirs = sorted(d.name for d in feat_dir.iterdir() if d.is_dir() and any(d.glob("*.npy")))
        if subdirs:
            return "folders", subdirs
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
        if arr.ndim != 2:
            return None  # load_features reports the problem with the video's name
        return _even_dims(int(arr.shape[1]), meta)  # likewise when uneven
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


def _checked_meta(meta: FeatureMeta, path: Path) -> FeatureMeta:
    """Refuse a meta.json whose values cannot describe a feature grid; else a normalised copy
    (stride and window as int, no per-video view), `meta` itself left as it was."""
    for name in ("fps", "stride", "window"):
        value = getattr(meta, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise TalnetError(f"'{name}' must be a positive number, got {value!r}", path)
        if name != "fps" and value != int(value):
            raise TalnetError(f"'{name}' must be a whole number of frames, got {value!r}", path)
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
    return replace(meta, stride=int(meta.stride), window=int(meta.window), video_seconds=None)


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
