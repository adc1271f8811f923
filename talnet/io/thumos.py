"""THUMOS'14's official per-class annotation files converted to talnet's ground truth.

The official release has one text file per class and subset, `CLASS_val.txt` / `CLASS_test.txt`,
each line `video_id start end` in seconds. `Ambiguous_val.txt` / `Ambiguous_test.txt` mark
stretches where annotators could not decide; they are stored as instances labelled `Ambiguous`,
which evaluation ignores: `labels_of` leaves that label out, so it is never a class to score, its
instances are never ground truth to find, and no detection is ever matched against them.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections import defaultdict
from pathlib import Path

from talnet.errors import TalnetError
from talnet.io.annotations import AMBIGUOUS, DataWarning, warn_oddities
from talnet.io.features import feature_length, list_feature_videos, read_meta
from talnet.io.types import Annotation, GroundTruth, VideoInfo

# File suffix -> subset name, as THUMOS'14 is used: train on validation, test on test.
SUBSETS = {"val": "validation", "test": "test"}
_CLASS_FILE = re.compile(r"^(?P<label>.+)_(?P<split>val|test)\.txt$")


def convert_thumos(
    annot_dir: str | Path,
    durations_csv: str | Path | None = None,
    features_dir: str | Path | None = None,
) -> GroundTruth:
    """Read every `CLASS_val.txt` / `CLASS_test.txt` under `annot_dir` into ground truth.

    Each video's duration and fps come from `durations_csv` (columns `video_id,duration[,fps]`),
    else from its feature file (T steps: ((T-1)*stride + window) / fps), else stay null (warned).
    """
    annot_dir = Path(annot_dir)
    if not annot_dir.is_dir():
        raise TalnetError("THUMOS annotation folder not found", annot_dir)
    files = sorted(
        p
        for p in annot_dir.rglob("*.txt")
        if _CLASS_FILE.match(p.name) and not _hidden(p.relative_to(annot_dir))
    )
    if not files:
        raise TalnetError(
            "no THUMOS annotation files (CLASS_val.txt or CLASS_test.txt) in this folder", annot_dir
        )
    subset_of: dict[str, tuple[str, Path]] = {}
    annotations: dict[str, list[Annotation]] = {}
    for path in files:
        match = _CLASS_FILE.match(path.name)
        assert match is not None
        label, subset = match["label"], SUBSETS[match["split"]]
        if label.lower() == AMBIGUOUS.lower():
            label = AMBIGUOUS
        for video_id, start, end, line_path in _read_class_file(path):
            earlier = subset_of.setdefault(video_id, (subset, path))
            if earlier[0] != subset:
                raise TalnetError(
                    f"video {video_id!r} is in subset {subset!r} here but {earlier[0]!r} "
                    f"in {earlier[1]}",
                    line_path,
                )
            annotations.setdefault(video_id, []).append(Annotation(label, start, end))

    timing = _durations_from_csv(Path(durations_csv)) if durations_csv else {}
    if features_dir is not None:
        _add_feature_durations(Path(features_dir), annotations, timing)
    missing = sorted(v for v in annotations if timing.get(v, (None, None))[0] is None)
    if missing:
        shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
        warnings.warn(
            f"{annot_dir}: no duration for {len(missing)} video(s) ({shown}); stored as null, "
            "so segments past the end cannot be found or clipped (give --durations or --features)",
            DataWarning,
            stacklevel=2,
        )

    gt: GroundTruth = {}
    for video_id in sorted(annotations):
        duration, fps = timing.get(video_id, (None, None))
        anns = sorted(annotations[video_id], key=lambda a: (a.start, a.end, a.label))
        gt[video_id] = VideoInfo(video_id, subset_of[video_id][0], duration, fps, anns)
    by_folder: dict[Path, list[VideoInfo]] = defaultdict(list)
    for video_id, info in gt.items():
        by_folder[subset_of[video_id][1].parent].append(info)
    for folder, infos in by_folder.items():
        warn_oddities(infos, folder)
    return gt


def _hidden(relative: Path) -> bool:
    """Dot files and macOS archive debris (__MACOSX/._Diving_val.txt) are not annotations."""
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _read_class_file(path: Path) -> list[tuple[str, float, float, str]]:
    """(video_id, start, end, "path:line") per non-blank line, each validated."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TalnetError(f"cannot read annotation file: {exc}", path) from exc
    rows = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if len(fields) != 3:
            raise TalnetError(f"expected 'video_id start end', got {line.strip()!r}", where)
        video_id = fields[0]
        start = _number(fields[1], f"video {video_id!r}: start", where)
        end = _number(fields[2], f"video {video_id!r}: end", where)
        if not end > start:
            raise TalnetError(
                f"video {video_id!r}: segment end {end:g} is not after its start {start:g}", where
            )
        rows.append((video_id, start, end, where))
    return rows


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TalnetError(f"{what} is not a number: {text!r}", where) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise TalnetError(f"{what} is not a finite number: {text!r}", where)
    return value


def _durations_from_csv(path: Path) -> dict[str, tuple[float | None, float | None]]:
    """video_id -> (duration, fps) from a CSV with a header `video_id,duration[,fps]`."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise TalnetError("durations file not found", path) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TalnetError(f"cannot read durations file: {exc}", path) from exc
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "video_id" not in header or "duration" not in header:
        raise TalnetError(
            f"durations CSV needs a header with columns video_id,duration[,fps]; got {header}",
            path,
        )
    col = {name: header.index(name) for name in ("video_id", "duration", "fps") if name in header}
    timing: dict[str, tuple[float | None, float | None]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{number}"
        if len(row) < len(header):
            raise TalnetError(f"expected {len(header)} columns, got {len(row)}", where)
        video_id = row[col["video_id"]].strip()
        duration = _number(row[col["duration"]].strip(), f"video {video_id!r}: duration", where)
        fps = None
        if "fps" in col and row[col["fps"]].strip():
            fps = _number(row[col["fps"]].strip(), f"video {video_id!r}: fps", where)
        if duration <= 0 or (fps is not None and fps <= 0):
            raise TalnetError(f"video {video_id!r}: duration and fps must be positive", where)
        timing[video_id] = (duration, fps)
    return timing


def _add_feature_durations(
    features_dir: Path,
    annotations: dict[str, list[Annotation]],
    timing: dict[str, tuple[float | None, float | None]],
) -> None:
    """Fill in duration/fps the CSV did not give from each video's number of feature steps."""
    meta = read_meta(features_dir)
    available = set(list_feature_videos(features_dir, meta))
    for video_id in annotations:
        duration, fps = timing.get(video_id, (None, None))
        if video_id in available and (duration is None or fps is None):
            steps = feature_length(features_dir, video_id, meta)
            timing[video_id] = (
                duration if duration is not None else meta.duration(steps),
                fps if fps is not None else meta.fps,
            )
