"""Packed feature store (docs/design.md §6): every video of a feature folder in one float32 array
per stream, FEAT_DIR/packed/STREAM.npy of shape (total_steps, C), rows of one video contiguous,
with FEAT_DIR/packed/index.json {video id: [offset, length]} and FEAT_DIR/meta.json saying
"layout": "packed". Opened memory-mapped, so an epoch over 10,024 ActivityNet videos opens one
file per stream instead of one per video, and memory stays bounded by the page cache.

talnet.io.features dispatches to this module when a folder's layout is "packed"; what a video
loads to is bit-for-bit what it loaded to from the folder it was packed from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from talnet.errors import TalnetError
from talnet.io.atomic import atomic_folder, check_new_folder, safe_child, write_json
from talnet.io.feature_meta import FeatureMeta

LAYOUT = "packed"
PACKED_DIR = "packed"  # FEAT_DIR/packed/ holds the arrays and the index
INDEX_FILE = "index.json"
INDEX_FORMAT = "talnet-packed/1"
_META_FILE = "meta.json"  # talnet.io.features.META_FILE (not imported: it imports this module)


@dataclass(frozen=True, eq=False)
class PackedStore:
    """An open packed store: its index and one read-only memory map (total_steps, C) per stream,
    checked to agree with each other (float32, C order, rows = the index's total)."""

    folder: Path  # FEAT_DIR/packed
    index: dict[str, tuple[int, int]]  # video id -> (offset, length) in rows
    arrays: dict[str, np.ndarray] = field(repr=False)
    total_steps: int = 0

    def videos(self) -> list[str]:
        """Sorted ids of the videos in the index."""
        return sorted(self.index)

    def length(self, video_id: str) -> int:
        """Number of feature steps T of one video."""
        return self._entry(video_id)[1]

    def checked_meta(self, meta: FeatureMeta, meta_path: Path) -> FeatureMeta:
        """`meta` (of FEAT_DIR/meta.json) with dims filled from the arrays; refused when its
        streams or dims disagree with the arrays, so a bad store fails when opened."""
        if set(meta.streams) != set(self.arrays):
            missing = [s for s in meta.streams if s not in self.arrays]
            if missing:
                path = self.folder / f"{missing[0]}.npy"
                raise TalnetError(
                    f"packed store: array of stream {missing[0]!r} missing "
                    f"({_META_FILE} lists streams {meta.streams})",
                    path,
                )
            raise TalnetError(
                f"packed store: 'streams' {meta.streams} disagree with the arrays in "
                f"{PACKED_DIR}/ ({sorted(self.arrays)})",
                meta_path,
            )
        widths = [int(self.arrays[s].shape[1]) for s in meta.streams]
        if meta.dims is not None and list(meta.dims) != widths:
            found = ", ".join(f"{s} {w}" for s, w in zip(meta.streams, widths, strict=True))
            raise TalnetError(
                f"packed store: 'dims' {meta.dims} disagree with the arrays in {PACKED_DIR}/ "
                f"({found} channels)",
                meta_path,
            )
        return replace(meta, dims=widths)

    def views(self, video_id: str, meta: FeatureMeta, check: bool = True) -> dict[str, np.ndarray]:
        """One video's features {stream: (T, C)} as read-only slices of the memory maps (no
        copy), of `meta`'s streams; `check` refuses NaN/inf as a folder's load does."""
        offset, length = self._entry(video_id)
        out = {}
        for i, stream in enumerate(meta.streams):
            path = self.folder / f"{stream}.npy"
            if stream not in self.arrays:
                raise TalnetError(f"video {video_id!r}: packed array of stream missing", path)
            whole = self.arrays[stream]
            if meta.dims is not None and whole.shape[1] != meta.dims[i]:
                raise TalnetError(
                    f"video {video_id!r}: wrong dimensionality: stream {stream!r} has "
                    f"{whole.shape[1]} channels, expected {meta.dims[i]}",
                    path,
                )
            part = np.asarray(whole[offset : offset + length])
            if check:
                _check_finite(part, path, video_id)
            out[stream] = part
        return out

    def load(self, video_id: str, meta: FeatureMeta) -> dict[str, np.ndarray]:
        """One video's features {stream: (T, C) float32}, checked, as arrays of its own."""
        return {s: np.array(a, dtype=np.float32) for s, a in self.views(video_id, meta).items()}

    def _entry(self, video_id: str) -> tuple[int, int]:
        if video_id not in self.index:
            raise TalnetError(
                f"video {video_id!r}: not in the packed store's index", self.folder / INDEX_FILE
            )
        return self.index[video_id]


# Stores kept open, by folder: (files stamp, index bytes, store); the oldest closed beyond 4.
_OPEN: dict[tuple[str, str], tuple[tuple, bytes, PackedStore]] = {}
_KEEP_OPEN = 4


def open_store(feat_dir: str | Path) -> PackedStore:
    """FEAT_DIR's packed store, memory-mapped and checked; kept open while its files are
    unchanged (a per-video load compares the index's bytes, never parses it again)."""
    folder = Path(feat_dir) / PACKED_DIR
    if not folder.is_dir():
        raise TalnetError(f"packed store: folder {PACKED_DIR}/ missing", folder)
    # the index by content: an in-place rewrite can keep its size and time
    raw, stamp = _read_index_bytes(folder / INDEX_FILE), _files_stamp(folder)
    key = (os.path.abspath(folder), str(folder))
    kept = _OPEN.get(key)
    if kept is not None and kept[0] == stamp and kept[1] == raw:
        return kept[2]
    store = _open(folder, raw, stamp)
    _OPEN.pop(key, None)
    while len(_OPEN) >= _KEEP_OPEN:
        _OPEN.pop(next(iter(_OPEN)))
    _OPEN[key] = (stamp, raw, store)
    return store


def _files_stamp(folder: Path) -> tuple:
    """The store's files with their identity, size and time: a new stamp means reopen."""
    stamp = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(".") and entry.is_file():
                st = entry.stat()
                stamp.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(sorted(stamp))


def _open(folder: Path, raw_index: bytes, stamp: tuple) -> PackedStore:
    """Parse the index and map every STREAM.npy of the stamp, each checked against the index."""
    index, total = _parse_index(raw_index, folder / INDEX_FILE)
    arrays = {}
    for name, *_ in stamp:
        if name.endswith(".npy"):
            arrays[name[: -len(".npy")]] = _open_array(folder / name, total)
    if not arrays:
        raise TalnetError("packed store: no STREAM.npy array", folder)
    return PackedStore(folder, index, arrays, total)


def _read_index_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise TalnetError("packed store: index missing", path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TalnetError(f"packed store: cannot read index: {exc}", path) from exc


def _parse_index(raw_bytes: bytes, path: Path) -> tuple[dict[str, tuple[int, int]], int]:
    """index.json's entries, checked to tile [0, total_steps) in order of offset."""
    try:
        raw = json.loads(raw_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TalnetError(f"packed store: cannot read index: {exc}", path) from exc
    if not isinstance(raw, dict) or raw.get("format") != INDEX_FORMAT:
        raise TalnetError(f"packed store: not a {INDEX_FORMAT!r} index", path)
    total, videos = raw.get("total_steps"), raw.get("videos")
    if not _whole(total) or not isinstance(videos, dict):
        raise TalnetError("packed store: index needs 'total_steps' and a 'videos' object", path)
    index: dict[str, tuple[int, int]] = {}
    for video_id, entry in videos.items():
        if not (
            video_id
            and isinstance(entry, list)
            and len(entry) == 2
            and all(_whole(x) for x in entry)
            and entry[1] > 0
        ):
            raise TalnetError(
                f"packed store: video {video_id!r}: index entry must be [offset, length] "
                f"(length > 0), got {entry!r}",
                path,
            )
        index[video_id] = (entry[0], entry[1])
    end = 0
    for video_id, (offset, length) in sorted(index.items(), key=lambda item: item[1]):
        if offset != end:
            raise TalnetError(
                f"packed store: video {video_id!r} starts at row {offset}, expected {end} "
                "(entries must tile the arrays without gaps or overlaps)",
                path,
            )
        end += length
    if end != total:
        raise TalnetError(
            f"packed store: index entries cover {end} steps, 'total_steps' says {total}", path
        )
    return index, total


def _open_array(path: Path, total: int) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise TalnetError(f"packed store: cannot read array: {exc}", path) from exc
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.dtype != np.float32:
        raise TalnetError(
            f"packed store: array of shape {arr.shape} and dtype {arr.dtype}, expected "
            "(total_steps, C) float32",
            path,
        )
    if not arr.flags.c_contiguous:
        raise TalnetError("packed store: array must be in C order", path)
    if arr.shape[0] != total:
        raise TalnetError(
            f"packed store: {arr.shape[0]} rows, but {INDEX_FILE} covers {total} steps", path
        )
    return arr


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_finite(part: np.ndarray, path: Path, video_id: str) -> None:
    """Refuse NaN/inf in one video's rows, in the words of a folder's load."""
    bad = ~np.isfinite(part)
    if bad.any():
        steps = np.flatnonzero(bad.any(axis=1))
        raise TalnetError(
            f"video {video_id!r}: {int(bad.sum())} NaN/inf value(s) in {len(steps)} step(s), "
            f"first at step {int(steps[0])}",
            path,
        )


@dataclass
class PackReport:
    """What a packing wrote: the store, its meta, the videos in index order, their steps."""

    out_dir: Path
    meta: FeatureMeta
    videos: list[str]
    total_steps: int


def pack_folder(in_dir: str | Path, out_dir: str | Path, progress: bool = True) -> PackReport:
    """Write OUT, a packed store of every video of the feature folder IN (any layout): each
    video loaded and checked as training would, meta.json kept key for key but the layout (and
    the streams and dims, made explicit). Written in a temporary folder beside OUT, renamed into
    place at the end, so a failure leaves no OUT behind."""
    from talnet.io import features  # it imports this module to dispatch "packed" to it

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    check_new_folder(out_dir)
    meta = features.read_meta(in_dir)
    videos = features.list_feature_videos(in_dir, meta)
    if not videos:
        raise TalnetError("no feature files to pack", in_dir)
    lengths = [features.feature_length(in_dir, v, meta) for v in videos]  # headers only
    if meta.dims is None:  # widths not inferred (e.g. uneven): the first load says why, or them
        first = features.load_features(in_dir, videos[0], meta)
        meta = replace(meta, dims=[int(a.shape[1]) for a in first.values()])
    source = in_dir / _META_FILE
    # every key as IN has it (read_meta has checked it parses)
    raw = json.loads(source.read_text()) if source.is_file() else None

    def arrays(video_id: str) -> dict[str, np.ndarray]:
        return features.load_features(in_dir, video_id, meta)  # checked as training checks it

    return write_store(out_dir, meta, videos, lengths, arrays, raw, progress, source=in_dir)


def write_store(
    out_dir: str | Path,
    meta: FeatureMeta,
    videos: list[str],
    lengths: list[int],
    arrays: Callable[[str], dict[str, np.ndarray]],
    raw_meta: dict | None = None,
    progress: bool = True,
    source: str | Path | None = None,
) -> PackReport:
    """Write OUT, a packed store of `videos` of `lengths` steps, each video's {stream: (T, C)}
    from `arrays(video_id)` (no video is held longer than its copy into the store); meta.json
    is `raw_meta` (or `meta`) with the layout, streams and dims of the store. Written beside OUT
    and renamed into place, so a failure leaves no OUT behind."""
    from talnet.io import features  # it imports this module to dispatch "packed" to it

    out_dir = Path(out_dir)
    check_new_folder(out_dir)
    if meta.dims is None:
        raise TalnetError("packing needs the streams' widths (meta dims)", source)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(int).tolist()
    with atomic_folder(out_dir) as tmp:
        folder = tmp / PACKED_DIR
        folder.mkdir()
        maps = {
            s: np.lib.format.open_memmap(
                safe_child(folder, s, ".npy"), mode="w+", dtype=np.float32, shape=(offsets[-1], d)
            )
            for s, d in zip(meta.streams, meta.dims, strict=True)
        }
        bar = tqdm(videos, desc="pack", unit="video", disable=not progress, leave=False)
        for i, video_id in enumerate(bar):
            for stream, array in arrays(video_id).items():
                if array.shape != (lengths[i], maps[stream].shape[1]):
                    raise TalnetError(
                        f"video {video_id!r}: stream {stream!r} of shape {array.shape}, expected "
                        f"({lengths[i]}, {maps[stream].shape[1]}) (changed while packing?)",
                        source,
                    )
                maps[stream][offsets[i] : offsets[i + 1]] = array
        while maps:  # written out and unmapped before the rename
            maps.popitem()[1].flush()
        index = {v: [offsets[i], lengths[i]] for i, v in enumerate(videos)}
        write_json(
            folder / INDEX_FILE,
            {"format": INDEX_FORMAT, "total_steps": offsets[-1], "videos": index},
            indent=None,
        )
        out_meta = replace(meta, layout=LAYOUT)
        if raw_meta is not None:
            raw = dict(raw_meta, layout=LAYOUT, streams=list(meta.streams), dims=list(meta.dims))
            write_json(tmp / _META_FILE, raw)
        else:  # the defaults and what the arrays showed
            features.write_meta(tmp, out_meta)
    return PackReport(out_dir, out_meta, videos, offsets[-1])
