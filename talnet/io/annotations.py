"""Ground truth (docs/design.md §6): ActivityNet-style JSON, read and validated, written atomically.

The file is `{"database": {VIDEO_ID: {"subset", "duration", "fps", "annotations": [{"label",
"segment": [start, end]}]}}}`. ActionFormer's `thumos14.json` (extra `segment(frames)`,
`label_id`, subsets `Validation`/`Test`) and OpenTAD's THUMOS file (`frame` = number of frames
instead of `fps`) and ActivityNet's own `activity_net.v1-3.min.json` (with "version",
"taxonomy", per-video "resolution" and "url", a few zero-length segments, empty "testing"
videos) load as they are. Instances labelled `Ambiguous` are kept apart by label: they
are not a class (`labels_of` leaves them out) and evaluation ignores them, as THUMOS'14 does.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from talnet.errors import TalnetError
from talnet.io.atomic import write_json
from talnet.io.jsonfile import finite_number, need_dict, need_key, read_json, segment_of, type_name
from talnet.io.types import Annotation, GroundTruth, VideoInfo

AMBIGUOUS = "Ambiguous"

# How far (seconds) a segment may overrun the video before it counts as "past the end":
# durations are often rounded to a frame or to two decimals.
_END_SLACK = 0.05


class DataWarning(UserWarning):
    """Odd but real data (kept as it is): the message names the file and the video."""


def load_ground_truth(path: str | Path, subset: str | None = None) -> GroundTruth:
    """Read and validate a ground-truth JSON, keeping segments as on disk (warnings for oddities).

    Subset names are stored lowercased ("Validation" -> "validation"), so `subset` and every
    later comparison match case-insensitively. Asking for a subset no video has is an error.
    """
    path = Path(path)
    raw = need_dict(read_json(path, "ground-truth"), "top level", path)
    database = need_dict(need_key(raw, "database", "top level", path), "'database'", path)
    gt: GroundTruth = {}
    for video_id, entry in database.items():
        gt[video_id] = _parse_video(video_id, entry, path)
    if subset is not None:
        gt = select_subset(gt, subset, path)
    warn_oddities(gt.values(), path)
    return gt


def select_subset(gt: GroundTruth, subset: str, path: str | Path | None = None) -> GroundTruth:
    """The videos of one subset (case-insensitive); an error lists the subsets that do exist."""
    wanted = subset.lower()
    chosen = {vid: info for vid, info in gt.items() if info.subset == wanted}
    if not chosen:
        present = ", ".join(sorted({info.subset for info in gt.values()})) or "none"
        raise TalnetError(f"no video in subset {subset!r}; subsets present: {present}", path)
    return chosen


def save_ground_truth(path: str | Path, gt: GroundTruth) -> None:
    """Write ground truth as ActivityNet-style JSON, atomically."""
    database = {
        video_id: {
            "subset": info.subset,
            "duration": info.duration,
            "fps": info.fps,
            "annotations": [
                {"label": ann.label, "segment": [ann.start, ann.end]} for ann in info.annotations
            ],
        }
        for video_id, info in gt.items()
    }
    write_json(path, {"version": "talnet", "database": database})


def clip_for_training(gt: GroundTruth) -> GroundTruth:
    """A copy with segments clipped to [0, duration] and segments left empty by it dropped.

    Evaluation uses the segments as on disk (as the reference evaluator does); training needs
    targets inside the video. `Ambiguous` instances are kept, so training can avoid them.
    """
    clipped: GroundTruth = {}
    for video_id, info in gt.items():
        kept = []
        for ann in info.annotations:
            start = max(ann.start, 0.0)
            end = ann.end if info.duration is None else min(ann.end, info.duration)
            if end > start:
                kept.append(Annotation(ann.label, start, end))
        clipped[video_id] = VideoInfo(video_id, info.subset, info.duration, info.fps, kept)
    return clipped


def labels_of(gt: GroundTruth) -> list[str]:
    """Sorted class names present in `gt`, without `Ambiguous`."""
    return sorted({a.label for info in gt.values() for a in info.annotations} - {AMBIGUOUS})


def _parse_video(video_id: str, entry: Any, path: Path) -> VideoInfo:
    where = f"video {video_id!r}"
    entry = need_dict(entry, where, path)
    subset = need_key(entry, "subset", where, path)
    if not isinstance(subset, str) or not subset:
        raise TalnetError(f"{where}: 'subset' must be a non-empty string, got {subset!r}", path)
    duration = _positive_or_none(entry.get("duration"), f"{where} duration", path)
    fps = _positive_or_none(entry.get("fps"), f"{where} fps", path)
    if fps is None and duration and entry.get("frame") is not None:
        # OpenTAD stores the frame count instead of the rate.
        fps = _positive_or_none(entry["frame"], f"{where} frame", path) / duration
    raw_anns = entry.get("annotations", [])
    if not isinstance(raw_anns, list):
        raise TalnetError(f"{where}: 'annotations' must be a list, got {type_name(raw_anns)}", path)
    annotations = [
        _parse_annotation(a, f"{where} annotation {i}", path) for i, a in enumerate(raw_anns)
    ]
    return VideoInfo(video_id, subset.lower(), duration, fps, annotations)


def _parse_annotation(raw: Any, where: str, path: Path) -> Annotation:
    raw = need_dict(raw, where, path)
    label = need_key(raw, "label", where, path)
    if not isinstance(label, str) or not label:
        raise TalnetError(f"{where}: 'label' must be a non-empty string, got {label!r}", path)
    start, end = segment_of(need_key(raw, "segment", where, path), where, path)
    if end < start:
        raise TalnetError(
            f"{where} ({label}): segment end {end:g} is not after its start {start:g}", path
        )
    return Annotation(label, start, end)


def _positive_or_none(value: Any, where: str, path: Path) -> float | None:
    if value is None:
        return None
    number = finite_number(value, where, path)
    if number <= 0:
        raise TalnetError(f"{where}: must be positive, got {value!r}", path)
    return number


def warn_oddities(infos: Iterable[VideoInfo], path: str | Path) -> None:
    """Warn about real-data messiness, which is kept as it is: one warning per kind and file,
    naming the videos (THUMOS'14 labels hundreds of instances both CliffDiving and Diving)."""
    found: dict[str, list[tuple[str, int, str]]] = defaultdict(list)  # kind -> (video, n, detail)
    for info in infos:
        anns = info.annotations
        if info.duration is not None:
            past = [a for a in anns if a.end > info.duration + _END_SLACK or a.start < 0]
            if past:
                latest = max(a.end for a in past)
                detail = f"video [0, {info.duration:g}] s, latest end {latest:g} s"
                found["past"].append((info.video_id, len(past), detail))
        empty = [a for a in anns if a.end == a.start]
        if empty:
            detail = f"{empty[0].label} at {empty[0].start:g} s"
            found["zero"].append((info.video_id, len(empty), detail))
        if anns and all(a.label == AMBIGUOUS for a in anns):
            found["ambiguous"].append((info.video_id, 0, ""))
        by_segment: dict[tuple[float, float], set[str]] = defaultdict(set)
        for a in anns:
            if a.label != AMBIGUOUS:
                by_segment[(round(a.start, 6), round(a.end, 6))].add(a.label)
        multi = [labels for labels in by_segment.values() if len(labels) > 1]
        if multi:
            pairs = ", ".join(sorted({"+".join(sorted(labels)) for labels in multi}))
            found["multi"].append((info.video_id, len(multi), pairs))
    for kind, hits in found.items():
        count = sum(n for _, n, _ in hits)
        details = sorted({d for _, _, d in hits})
        if kind == "past":
            what = f"{count} segment(s) outside the video ({'; '.join(details[:3])}"
            what += ", …)" if len(details) > 3 else ")"
            what += "; kept for evaluation, clipped for training"
        elif kind == "zero":
            what = f"{count} zero-length segment(s) ({'; '.join(details[:3])}"
            what += ", …)" if len(details) > 3 else ")"
            what += "; kept for evaluation (never matched, as in the reference), not trained on"
        elif kind == "ambiguous":
            what = f"only {AMBIGUOUS} segments; no action instance to evaluate"
        else:
            what = f"{count} instance(s) labelled with several classes at once "
            what += f"({', '.join(details)}); each label is kept as its own instance"
        warnings.warn(f"{path}: {_videos(hits)}: {what}", DataWarning, stacklevel=3)


def _videos(hits: list[tuple[str, int, str]]) -> str:
    """"video 'a'" or "3 videos ('a', 'b', 'c')", at most five named."""
    names = [repr(video) for video, _, _ in hits]
    if len(names) == 1:
        return f"video {names[0]}"
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    return f"{len(names)} videos ({shown})"
