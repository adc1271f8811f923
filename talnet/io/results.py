"""Detections (docs/design.md §6): ActivityNet results JSON `{"results": {VIDEO_ID: [{"label",
"score", "segment": [start, end]}]}}`, read and validated, written atomically, sorted by score."""

from __future__ import annotations

from pathlib import Path

from talnet.errors import TalnetError
from talnet.io.atomic import write_json
from talnet.io.jsonfile import finite_number, need_dict, need_key, read_json, segment_of, type_name
from talnet.io.types import Detection, Detections


def load_detections(path: str | Path) -> Detections:
    """Read and validate a results JSON: label a string, score finite, segment two numbers."""
    path = Path(path)
    raw = need_dict(read_json(path, "detections"), "top level", path)
    results = need_dict(need_key(raw, "results", "top level", path), "'results'", path)
    dets: Detections = {}
    for video_id, items in results.items():
        where = f"video {video_id!r}"
        if not isinstance(items, list):
            raise TalnetError(
                f"{where}: expected a list of detections, got {type_name(items)}", path
            )
        dets[video_id] = [
            _parse_detection(d, f"{where} detection {i}", path) for i, d in enumerate(items)
        ]
    return dets


def save_detections(path: str | Path, dets: Detections, max_per_video: int | None = None) -> None:
    """Write detections atomically, each video's sorted by score (highest first), maybe capped."""
    results = {}
    for video_id, items in dets.items():
        ranked = sorted(items, key=lambda d: d.score, reverse=True)[:max_per_video]
        results[video_id] = [
            {"label": d.label, "score": float(d.score), "segment": [float(d.start), float(d.end)]}
            for d in ranked
        ]
    write_json(path, {"version": "talnet", "results": results, "external_data": {}})


def _parse_detection(raw: object, where: str, path: Path) -> Detection:
    raw = need_dict(raw, where, path)
    label = need_key(raw, "label", where, path)
    if not isinstance(label, str) or not label:
        raise TalnetError(f"{where}: 'label' must be a non-empty string, got {label!r}", path)
    score = finite_number(need_key(raw, "score", where, path), f"{where} score", path)
    start, end = segment_of(need_key(raw, "segment", where, path), where, path)
    if end < start:
        raise TalnetError(
            f"{where} ({label}): segment end {end:g} is before its start {start:g}", path
        )
    return Detection(label, start, end, score)
