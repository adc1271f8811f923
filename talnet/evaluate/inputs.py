"""Ground truth and detections flattened into arrays, in the row order the reference uses.

ActivityNet's evaluator builds its tables by walking the files in order (videos as listed, then
instances as listed); its tie-breaking depends on that order, so it is kept here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from talnet.errors import TalnetError
from talnet.io.annotations import AMBIGUOUS, DataWarning
from talnet.io.types import Detections, GroundTruth

# How many ignored video ids / labels a warning quotes.
_EXAMPLES = 3


@dataclass
class FlatGroundTruth:
    """Action instances of the evaluated videos, `Ambiguous` left out."""

    video_ids: list[str]  # every evaluated video, instances or not, in file order
    labels: list[str]  # classes in order of first appearance (the reference's class index)
    video: np.ndarray  # (N,) int index into video_ids
    label: np.ndarray  # (N,) int index into labels
    segments: np.ndarray  # (N, 2) float64 seconds


@dataclass
class FlatDetections:
    """Detections of evaluated videos, in file order; `label` is -1 where it is not a class."""

    video: np.ndarray  # (M,) int index into FlatGroundTruth.video_ids
    label: np.ndarray  # (M,) int index into FlatGroundTruth.labels, or -1
    segments: np.ndarray  # (M, 2) float64 seconds
    score: np.ndarray  # (M,) float64


def flatten_ground_truth(gt: GroundTruth, subset: str | None = None) -> FlatGroundTruth:
    """The instances of `gt` (only videos of `subset`, matched case-insensitively, if given)."""
    if subset is not None:
        wanted = subset.lower()
        gt = {vid: info for vid, info in gt.items() if info.subset.lower() == wanted}
        if not gt:
            raise TalnetError(f"no ground-truth video in subset {subset!r}")
    video_ids = list(gt)
    label_index: dict[str, int] = {}
    video, label, segments = [], [], []
    for v, info in enumerate(gt.values()):
        for ann in info.annotations:
            if ann.label == AMBIGUOUS:
                continue
            video.append(v)
            label.append(label_index.setdefault(ann.label, len(label_index)))
            segments.append((ann.start, ann.end))
    if not segments:
        where = f" in subset {subset!r}" if subset is not None else ""
        raise TalnetError(f"the ground truth has no action instance to evaluate{where}")
    if not np.isfinite(segments).all():
        raise TalnetError("ground-truth segment times must be finite numbers")
    return FlatGroundTruth(
        video_ids=video_ids,
        labels=list(label_index),
        video=np.asarray(video, dtype=np.int64),
        label=np.asarray(label, dtype=np.int64),
        segments=np.asarray(segments, dtype=np.float64),
    )


def flatten_detections(
    dets: Detections, gt: FlatGroundTruth, need_label: bool = True
) -> FlatDetections:
    """Detections of the evaluated videos; the others are dropped with one warning.

    With `need_label`, detections whose label is not a ground-truth class are dropped (and
    counted in the warning) too; without it (proposals) labels are not looked at.
    """
    video_index = {vid: i for i, vid in enumerate(gt.video_ids)}
    label_index = {name: i for i, name in enumerate(gt.labels)}
    lost_videos = {vid: len(items) for vid, items in dets.items() if vid not in video_index}
    kept = [(video_index[vid], items) for vid, items in dets.items() if vid in video_index]
    # Plain generator expressions: the fastest way to read every detection's fields.
    items = list(chain.from_iterable(items for _, items in kept))
    n = len(items)
    video = np.repeat(
        np.array([v for v, _ in kept], dtype=np.int64),
        np.array([len(its) for _, its in kept], dtype=np.int64),
    )
    label = np.fromiter((label_index.get(d.label, -1) for d in items), dtype=np.int64, count=n)
    start = np.fromiter((d.start for d in items), dtype=np.float64, count=n)
    end = np.fromiter((d.end for d in items), dtype=np.float64, count=n)
    score = np.fromiter((d.score for d in items), dtype=np.float64, count=n)
    lost_labels: dict[str, int] = {}
    if need_label and (label < 0).any():
        for i in np.flatnonzero(label < 0):
            lost_labels[items[i].label] = lost_labels.get(items[i].label, 0) + 1
        ok = label >= 0
        video, label, start, end, score = video[ok], label[ok], start[ok], end[ok], score[ok]
    if not (np.isfinite(start).all() and np.isfinite(end).all() and np.isfinite(score).all()):
        raise TalnetError("prediction segment times and scores must be finite numbers")
    _warn_ignored({vid: n for vid, n in lost_videos.items() if n}, lost_labels)
    return FlatDetections(
        video=video, label=label, segments=np.stack([start, end], axis=1), score=score
    )


def parse_tious(tious: Sequence[float] | np.ndarray) -> np.ndarray:
    """Thresholds as a float64 array, each in (0, 1]; anything else is a TalnetError."""
    arr = np.asarray(tious, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise TalnetError("no tIoU threshold given")
    bad = arr[~((arr > 0) & (arr <= 1))]
    if bad.size:
        raise TalnetError(f"tIoU thresholds must be in (0, 1], got {bad[0]:g}")
    return arr


def _warn_ignored(lost_videos: dict[str, int], lost_labels: dict[str, int]) -> None:
    parts = []
    if lost_videos:
        parts.append(
            f"{sum(lost_videos.values())} for {len(lost_videos)} video(s) not in the evaluated "
            f"ground truth (e.g. {_examples(lost_videos)})"
        )
    if lost_labels:
        parts.append(
            f"{sum(lost_labels.values())} with {len(lost_labels)} label(s) that are not a "
            f"ground-truth class (e.g. {_examples(lost_labels)})"
        )
    if parts:
        warnings.warn("ignored predictions: " + "; ".join(parts), DataWarning, stacklevel=3)


def _examples(counts: dict[str, int]) -> str:
    names = [repr(name) for name in list(counts)[:_EXAMPLES]]
    return ", ".join(names) + (", ..." if len(counts) > _EXAMPLES else "")
