"""Inference: features to scored, NMS-filtered detections in seconds."""

from __future__ import annotations

from pathlib import Path

from talnet.io.types import Detections


def detect_features(
    detector, feat_dir: str | Path, video_ids: list[str] | None = None, progress: bool = True
) -> Detections:
    """Run `detector` (a talnet.detect.detector.Detector) on the videos of a feature folder
    (all of them when video_ids is None) -> {video_id: detections in seconds}."""
    from tqdm import tqdm

    from talnet.errors import TalnetError
    from talnet.io.features import list_feature_videos, load_features, read_meta

    meta = read_meta(feat_dir)
    detector.check_fits(meta, feat_dir)
    available = list_feature_videos(feat_dir, meta)
    ids = available if video_ids is None else list(video_ids)
    missing = sorted(set(ids) - set(available))
    if missing:
        raise TalnetError(f"no features for {len(missing)} video(s), e.g. {missing[:3]}", feat_dir)
    out: Detections = {}
    for vid in tqdm(ids, desc="detect", unit="video", disable=not progress, leave=False):
        out[vid] = detector.detect(load_features(feat_dir, vid, meta), meta)
    return out


def __getattr__(name: str):
    """detect_videos / VideoDetections on first use: they import the video decoder (slow)."""
    if name in ("detect_videos", "VideoDetections"):
        from talnet.detect import video

        return getattr(video, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["VideoDetections", "detect_features", "detect_videos"]
