"""Bookkeeping of a feature folder being written (docs/design.md §6): which videos this shard
takes, which are already done (so a killed run resumes), the folder's settings, the outputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError
from talnet.io.atomic import safe_child
from talnet.io.features import FeatureMeta, feature_path, read_meta_file, save_array

# Settings that must agree for features to share a folder (extra: as `talnet extract` records).
_SAME_KEYS = ("fps", "stride", "window", "streams", "layout", "dims")
_SAME_EXTRA = ("backbone", "flow_method", "weights", "random_weights", "frame_size")
_SAME_EXTRA += ("resize_short_side", "clip_mode", "precision")


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' (0 <= K < N) -> (K, N)."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise TalnetError(f"--shard must look like K/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= k < n:
        raise TalnetError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def shard_from_env(environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) under torchrun, else None."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    return parse_shard(f"{env.get('RANK', '0')}/{env['WORLD_SIZE']}")


def shard_videos(videos: Sequence[Path], shard: tuple[int, int] | None) -> list[Path]:
    """This shard's videos: sorted by id, then every N-th from K, so shards never overlap."""
    ordered = sorted(videos, key=lambda p: p.stem)
    if shard is None:
        return ordered
    k, n = shard
    return ordered[k::n]


def check_folder_meta(out_dir: Path, meta: FeatureMeta) -> None:
    """Refuse to mix features of different conventions in one folder."""
    old = read_meta_file(out_dir)
    if old is None:
        return
    diff = [k for k in _SAME_KEYS if getattr(old, k) != getattr(meta, k)]
    diff += [k for k in _SAME_EXTRA if old.extra.get(k) != meta.extra.get(k)]
    if diff:
        raise TalnetError(
            f"holds features made with other settings ({', '.join(diff)} differ); "
            "use another --out folder",
            out_dir / "meta.json",
        )


def output_files(out_dir: Path, video_id: str, meta: FeatureMeta) -> list[Path]:
    """The files one video's features go to: one for "concat", one per stream for "folders"."""
    streams = meta.streams[:1] if meta.layout == "concat" else meta.streams
    return [feature_path(out_dir, video_id, meta, stream) for stream in streams]


def is_done(out_dir: Path, video_id: str, meta: FeatureMeta) -> bool:
    """True when this video's outputs exist and have the right width (so a rerun skips it)."""
    dims = meta.dims or []
    widths = [sum(dims)] if meta.layout == "concat" else dims
    for path, width in zip(output_files(out_dir, video_id, meta), widths, strict=True):
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return False
        if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] != width:
            return False
    return True


def remove_stale_temporaries(out_dir: Path, video_id: str, meta: FeatureMeta) -> None:
    """Delete temporary files a killed run left for this video (atomic_path's .ID.npy.* names)."""
    for final in output_files(out_dir, video_id, meta):
        for stale in final.parent.glob(f".{final.name}.*"):
            stale.unlink(missing_ok=True)


@dataclass
class ResumePlan:
    """What a run into a folder has to do: the videos to extract, those done earlier, and those
    refused (an id that cannot be a file name), with the reason naming the file."""

    todo: list[Path] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def plan_resume(out_dir: Path, videos: Sequence[Path], meta: FeatureMeta) -> ResumePlan:
    """Split `videos` (the stem is the id) into done and to-do; clears a to-do video's stale
    temporaries, so a rerun of a killed job leaves no debris."""
    plan = ResumePlan()
    for path in videos:
        try:
            safe_child(out_dir, path.stem, ".npy")
        except TalnetError as exc:
            plan.refused.append((str(path), f"{path}: {exc}"))
            continue
        if is_done(out_dir, path.stem, meta):
            plan.done.append(path.stem)
        else:
            plan.todo.append(path)
            remove_stale_temporaries(out_dir, path.stem, meta)
    return plan


def save_features(
    out_dir: Path, video_id: str, features: Mapping[str, np.ndarray], meta: FeatureMeta
) -> None:
    """Write one video's features in the layout of `meta`, each file atomically."""
    if meta.layout == "concat":
        save_array(out_dir, video_id, np.concatenate([features[s] for s in meta.streams], axis=1))
    else:
        for stream in meta.streams:
            save_array(out_dir, video_id, features[stream], stream=stream)


__all__ = [
    "ResumePlan",
    "check_folder_meta",
    "is_done",
    "output_files",
    "parse_shard",
    "plan_resume",
    "remove_stale_temporaries",
    "save_features",
    "shard_from_env",
    "shard_videos",
]
