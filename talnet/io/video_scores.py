"""Video-level class scores (docs/design.md §6), the file ActionFormer's `ext_score_file` takes:
CUHK's `cuhk_val_simp_share.json`, `{"results": {VIDEO_ID: [K scores]}, "class": [K names]}`.

Video ids may carry ActivityNet's "v_" prefix or not, in the file or in the query: a lookup tries
both spellings. Read and validated with errors naming the file; written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError
from talnet.io.atomic import write_json
from talnet.io.jsonfile import need_dict, need_key, read_json, type_name
from talnet.io.video_ids import match_video_id


@dataclass
class VideoScores:
    """Per video, one score per class of `classes` (the file's order)."""

    classes: list[str]
    scores: dict[str, np.ndarray]  # video id as in the file -> (K,) float64
    source: str | None = None

    def lookup(self, video_id: str) -> np.ndarray | None:
        """The video's scores, under its id or its "v_" twin; None if the file lacks it."""
        key = match_video_id(video_id, self.scores)
        return None if key is None else self.scores[key]

    def for_classes(self, classes: Sequence[str]) -> VideoScores:
        """The scores reordered to `classes` (a model's), which the file must all name."""
        index = {name: i for i, name in enumerate(self.classes)}
        missing = [c for c in classes if c not in index]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:3]) + (", …" if len(missing) > 3 else "")
            raise TalnetError(
                f"video scores lack {len(missing)} of the model's classes ({shown})", self.source
            )
        order = np.array([index[c] for c in classes], dtype=np.int64)
        picked = {vid: s[order] for vid, s in self.scores.items()}
        return VideoScores(list(classes), picked, self.source)


def load_video_scores(path: str | Path) -> VideoScores:
    """Read and validate a video-level score file (see the module docstring)."""
    path = Path(path)
    raw = need_dict(read_json(path, "video scores"), "top level", path)
    classes = need_key(raw, "class", "top level", path)
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(c, str) and c for c in classes)
    ):
        raise TalnetError("'class' must be a non-empty list of class names", path)
    if len(set(classes)) != len(classes):
        raise TalnetError("'class' names a class twice", path)
    results = need_dict(need_key(raw, "results", "top level", path), "'results'", path)
    scores: dict[str, np.ndarray] = {}
    for video_id, values in results.items():
        where = f"video {video_id!r}"
        if not isinstance(values, list):
            raise TalnetError(f"{where}: expected a list of scores, got {type_name(values)}", path)
        if len(values) != len(classes):
            raise TalnetError(
                f"{where}: {len(values)} scores for {len(classes)} classes", path
            )
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise TalnetError(f"{where}: scores must be numbers", path)
        array = np.asarray(values, dtype=np.float64)
        if not np.isfinite(array).all():
            raise TalnetError(f"{where}: scores must be finite", path)
        scores[video_id] = array
    return VideoScores(list(classes), scores, str(path))


def save_video_scores(path: str | Path, scores: VideoScores) -> None:
    """Write scores in the same format, atomically."""
    results = {vid: [float(x) for x in s] for vid, s in scores.scores.items()}
    write_json(path, {"results": results, "class": list(scores.classes)}, indent=None)
