"""Which of the videos asked for have features to use: one rule for training and detection."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from talnet.errors import TalnetError
from talnet.io.annotations import DataWarning
from talnet.io.features import FeatureMeta, list_feature_videos
from talnet.io.video_ids import some_ids


def usable_videos(
    feat_dir: str | Path,
    meta: FeatureMeta,
    wanted: Sequence[str],
    scope: str = "",
    consequence: str = "skipped",
) -> list[str]:
    """The videos of `wanted`, in order, that have feature files (and, for resampled
    features, a recorded duration, without which steps cannot map to seconds). None usable is
    a TalnetError; some missing, one DataWarning listing them "{scope} ... ; {consequence}"."""
    available = set(list_feature_videos(feat_dir, meta))
    if meta.resample_steps is not None:
        available &= set(meta.durations)
    missing = sorted(set(wanted) - available)
    if missing and len(missing) == len(set(wanted)):
        raise TalnetError(f"none of {some_ids(missing)}{scope} has features", feat_dir)
    if missing:
        warnings.warn(
            f"{feat_dir}: {some_ids(missing)}{scope} have no features; {consequence}",
            DataWarning,
            stacklevel=3,
        )
    return [v for v in wanted if v in available]
