"""Resample a feature folder to a fixed number of steps per video (docs/design.md §2).

ActivityNet practice: every video's (T, C) features become (N, C) by linear interpolation on
the time axis, so one set of anchors (lengths relative to N) spans every video, short or long.
Step i of N is centred at (i + 0.5) * D / N for the video's duration D; the new folder's
meta.json records N and every D, and `FeatureMeta.for_video` maps steps back to seconds exactly.

Source times come from the input's grid (its meta.json: an extracted fixed grid, or an earlier
resampling), or, for a folder without meta.json (TSN / TSP features people already have), from
its T steps spread evenly over the ground-truth duration. D is the ground truth's duration where
it has one, else what the source grid covers. The output is written into a temporary folder
renamed into place at the end, so a failure leaves no partial output.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from talnet.errors import TalnetError
from talnet.io.annotations import DataWarning, load_ground_truth
from talnet.io.atomic import atomic_folder, check_new_folder
from talnet.io.feature_folder import save_features
from talnet.io.features import (
    FeatureMeta,
    feature_length,
    list_feature_videos,
    load_features,
    read_meta,
    read_meta_file,
    write_meta,
)
from talnet.io.types import GroundTruth
from talnet.io.video_ids import match_video_id, some_ids

SOURCE_GRIDS = ("auto", "meta", "uniform")


@dataclass
class ResampleReport:
    """What a resampling wrote: the folder, its meta, and the videos left out (no duration)."""

    out_dir: Path
    meta: FeatureMeta
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def resample_array(x: np.ndarray, source_times: np.ndarray, target_times: np.ndarray) -> np.ndarray:
    """(T, C) features at `source_times` (increasing) -> (N, C) at `target_times` by linear
    interpolation, each end held constant beyond the first and last source step (np.interp)."""
    x = np.asarray(x, dtype=np.float64)
    src = np.asarray(source_times, dtype=np.float64)
    dst = np.asarray(target_times, dtype=np.float64)
    if len(src) == 1:
        return np.repeat(x, len(dst), axis=0).astype(np.float32)
    right = np.clip(np.searchsorted(src, dst, side="right"), 1, len(src) - 1)
    left = right - 1
    weight = np.clip((dst - src[left]) / (src[right] - src[left]), 0.0, 1.0)[:, None]
    return ((1.0 - weight) * x[left] + weight * x[right]).astype(np.float32)


def resample_folder(
    in_dir: str | Path,
    out_dir: str | Path,
    steps: int,
    ground_truth: str | Path | GroundTruth | None = None,
    source_grid: str = "auto",
    progress: bool = True,
) -> ResampleReport:
    """Write OUT with every video of IN resampled to `steps` steps (see the module docstring).

    Output ids follow the ground truth's spelling where a feature file matches a video through
    the "v_" prefix. Videos without a known duration are left out with one warning.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise TalnetError(f"--steps must be a positive whole number, got {steps!r}")
    if source_grid not in SOURCE_GRIDS:
        raise TalnetError(f"source grid must be one of {SOURCE_GRIDS}, got {source_grid!r}")
    check_new_folder(out_dir)
    in_meta = read_meta(in_dir)
    gt = load_ground_truth(ground_truth) if isinstance(ground_truth, (str, Path)) else ground_truth
    if source_grid == "auto":
        source_grid = "meta" if read_meta_file(in_dir) is not None else "uniform"
    if source_grid == "uniform" and gt is None:
        raise TalnetError(
            "no meta.json, so the features' times are unknown: give --ground-truth (their steps "
            "are then spread evenly over each video's duration) or write a meta.json",
            in_dir,
        )
    plan, skipped = _plan(in_dir, in_meta, gt, source_grid)
    out_meta = replace(
        in_meta.without_videos(),
        resample_steps=steps,
        durations={out_id: seconds for _, out_id, seconds in plan},
        extra={
            **in_meta.extra,
            "resampled": {
                "from": str(in_dir),
                "source_grid": source_grid,
                "durations_from": "ground truth" if gt is not None else "features",
                "method": "linear interpolation in time, ends held",
            },
        },
    )
    with atomic_folder(out_dir) as tmp:
        bar = tqdm(plan, desc="resample", unit="video", disable=not progress, leave=False)
        for feat_id, out_id, seconds in bar:
            feats = load_features(in_dir, feat_id, in_meta)
            length = next(iter(feats.values())).shape[0]
            if source_grid == "uniform":
                source = (np.arange(length) + 0.5) * seconds / length
            else:
                source = in_meta.for_video(feat_id, in_dir).step_times(length)
            target = out_meta.for_video(out_id).step_times(steps)
            resampled = {s: resample_array(x, source, target) for s, x in feats.items()}
            save_features(tmp, out_id, resampled, out_meta)
        write_meta(tmp, out_meta)
    if skipped:
        warnings.warn(
            f"{in_dir}: {some_ids(skipped)} left out, no duration known; "
            "give --ground-truth with their durations",
            DataWarning,
            stacklevel=2,
        )
    return ResampleReport(out_dir, out_meta, [out_id for _, out_id, _ in plan], skipped)


def _plan(
    in_dir: Path, in_meta: FeatureMeta, gt: GroundTruth | None, source_grid: str
) -> tuple[list[tuple[str, str, float]], list[str]]:
    """(feature id, output id, duration) per video that has a duration, and those without."""
    plan: list[tuple[str, str, float]] = []
    skipped: list[str] = []
    taken: dict[str, str] = {}
    for feat_id in list_feature_videos(in_dir, in_meta):
        gt_id = match_video_id(feat_id, gt) if gt is not None else None
        out_id = gt_id or feat_id
        if out_id in taken:
            raise TalnetError(
                f"video {out_id!r}: two feature files ({taken[out_id]!r}, {feat_id!r}) are the "
                "same video",
                in_dir,
            )
        taken[out_id] = feat_id
        seconds = gt[gt_id].duration if gt_id is not None else None
        if seconds is None and source_grid == "meta":
            if in_meta.resample_steps is None or feat_id in in_meta.durations:
                length = feature_length(in_dir, feat_id, in_meta)
                seconds = in_meta.for_video(feat_id, in_dir).duration(length)
        if seconds is None:
            skipped.append(feat_id)
        else:
            plan.append((feat_id, out_id, float(seconds)))
    if not plan:
        raise TalnetError("no video to resample (none has a known duration)", in_dir)
    return plan, skipped
