"""Validate a dataset's files together before a long run: ground truth, predictions, features."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

from talnet.io.annotations import AMBIGUOUS, DataWarning, labels_of, load_ground_truth
from talnet.io.features import list_feature_videos, load_features, read_meta
from talnet.io.results import load_detections


def check_dataset(
    ground_truth: str | Path | None = None,
    predictions: str | Path | None = None,
    features: str | Path | None = None,
    subset: str | None = None,
) -> list[str]:
    """Load and validate each given file fully; return one summary line per file.

    Every feature file is read (shapes, stream lengths, NaN/inf); with ground truth, every
    video of it (of `subset`, if given) must have features. Raises TalnetError on the first
    problem; odd-but-real data and predictions outside the ground truth give DataWarnings.
    """
    lines = []
    gt = None
    if ground_truth is not None:
        gt = load_ground_truth(ground_truth, subset)
        subsets = Counter(info.subset for info in gt.values())
        labels = Counter(a.label for info in gt.values() for a in info.annotations)
        ambiguous = labels.pop(AMBIGUOUS, 0)
        lines.append(
            f"ground truth {ground_truth}: {len(gt)} videos ("
            + ", ".join(f"{name} {n}" for name, n in sorted(subsets.items()))
            + f"), {sum(labels.values())} instances of {len(labels)} classes, "
            f"{ambiguous} {AMBIGUOUS}"
        )
    if predictions is not None:
        dets = load_detections(predictions)
        count = sum(len(items) for items in dets.values())
        lines.append(f"predictions {predictions}: {len(dets)} videos, {count} detections")
        if gt is not None:
            _warn_outside(predictions, dets, gt, subset)
    if features is not None:
        meta = read_meta(features)
        videos = sorted(gt) if gt is not None else list_feature_videos(features, meta)
        steps = [len(next(iter(load_features(features, v, meta).values()))) for v in videos]
        dims = " + ".join(f"{s} {d}" for s, d in zip(meta.streams, meta.dims or [], strict=False))
        span = f", {min(steps)} to {max(steps)} steps" if steps else ""
        lines.append(
            f"features {features}: {len(videos)} videos checked, layout {meta.layout}, "
            f"channels {dims or 'unknown'}{span}, {meta.fps:g} fps, stride {meta.stride}, "
            f"window {meta.window}"
            + (f", resampled to {meta.resample_steps} steps" if meta.resample_steps else "")
        )
    return lines


def _warn_outside(path: str | Path, dets: dict, gt: dict, subset: str | None) -> None:
    """Predictions for videos or labels the ground truth lacks are ignored by evaluation."""
    unknown_videos = sorted(set(dets) - set(gt))
    known = set(labels_of(gt))
    unknown_labels = sorted({d.label for items in dets.values() for d in items} - known)
    where = f"subset {subset!r} of the ground truth" if subset else "the ground truth"
    if unknown_videos:
        warnings.warn(
            f"{path}: {len(unknown_videos)} video(s) not in {where} (e.g. "
            f"{unknown_videos[0]!r}); evaluation ignores them",
            DataWarning,
            stacklevel=3,
        )
    if unknown_labels:
        warnings.warn(
            f"{path}: label(s) not in {where}: {', '.join(unknown_labels[:10])}; "
            "evaluation ignores them",
            DataWarning,
            stacklevel=3,
        )
