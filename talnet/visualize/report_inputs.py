"""What `talnet report` reads: the files of a training run, its log, and the video folder.

The log's key names and file names are the trainer's own (talnet.train.runfiles); a log written
by another trainer ("loss_total", "iteration", "learning_rate", ...) is read by naming rules.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

from talnet.config import DEFAULT_PROTOCOL, load_config
from talnet.errors import TalnetError
from talnet.io.annotations import DataWarning
from talnet.io.types import Detections, GroundTruth
from talnet.train.runfiles import (
    BOOKKEEPING_KEYS,
    CONFIG_FILE,
    LOG_FILE,
    LOSS_NAMES,
    TOTAL_LOSS,
    VAL_MAP_AT_HALF,
    VAL_MAP_AVERAGE,
)

# `talnet demo --out D` trains into D/run and writes D/detections.json, D/data/annotations.json.
DEMO_RUN_DIR = "run"
DEMO_GROUND_TRUTH = "data/annotations.json"
# Where a run folder may hold each input; the first name found wins.
RUN_FILES = {
    "log": (LOG_FILE, f"{DEMO_RUN_DIR}/{LOG_FILE}"),
    "predictions": ("detections.json", "predictions.json", "results.json"),
    "ground_truth": ("ground_truth.json", "annotations.json", DEMO_GROUND_TRUTH),
}
# Browser-playable containers first: the first match wins when a video exists in several forms.
VIDEO_EXTENSIONS = (".mp4", ".webm", ".m4v", ".ogv", ".mov", ".mkv", ".avi")

_OWN_LOSSES = frozenset({*LOSS_NAMES, TOTAL_LOSS})
_OWN_METRICS = frozenset({VAL_MAP_AT_HALF, VAL_MAP_AVERAGE})
# Other trainers' names for the same bookkeeping numbers (step counter, learning rate, time).
_OTHER_BOOKKEEPING = frozenset({"step", "iter", "iteration", "learning_rate", "time"})
_BOOKKEEPING = frozenset(BOOKKEEPING_KEYS) | _OTHER_BOOKKEEPING


def find_run_files(run_dir: str | Path) -> dict[str, Path]:
    """The files of a training run the report uses: "log", "predictions", "ground_truth".

    RUN_DIR is a training run (the trainer's log beside its checkpoint) or a `talnet demo`
    folder (run/, detections.json, data/annotations.json); RUN_FILES lists the names tried.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TalnetError("run folder not found", run_dir)
    found = {}
    for role, names in RUN_FILES.items():
        for name in names:
            if (run_dir / name).is_file():
                found[role] = run_dir / name
                break
    return found


def protocol_of_run(run_dir: str | Path) -> str:
    """The evaluation protocol a run folder's config asks for (evaluate.protocol; a `talnet
    demo` folder's in run/), or the default ("thumos") when it holds no config."""
    for name in (CONFIG_FILE, f"{DEMO_RUN_DIR}/{CONFIG_FILE}"):
        path = Path(run_dir) / name
        if path.is_file():
            return load_config(path).evaluate.protocol
    return DEFAULT_PROTOCOL


def read_training_log(path: str | Path) -> list[dict[str, float]]:
    """Read a JSON-lines training log: the finite numbers of each line's object.

    A broken last line is skipped (a run still writing, or killed mid-line); a broken line
    anywhere else is an error.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TalnetError("training log not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TalnetError(f"cannot read training log: {exc}", path) from exc
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    rows: list[dict[str, float]] = []
    for i, (number, line) in enumerate(numbered):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(numbered) - 1:
                break
            raise TalnetError(f"line {number}: malformed JSON: {exc.msg}", path) from None
        if not isinstance(obj, dict):
            raise TalnetError(f"line {number}: expected a JSON object", path)
        rows.append(
            {
                str(k): float(v)
                for k, v in obj.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            }
        )
    return rows


def is_map_key(key: str) -> bool:
    """Whether a training-log key is plotted as an mAP: the trainer's validation mAPs, or any
    other trainer's key naming mAP ("mAP", "val/map_0.5", ...)."""
    return key in _OWN_METRICS or "map" in key.lower()


def is_loss_key(key: str) -> bool:
    """Whether a training-log key is plotted as a loss: the trainer's loss terms and total, and
    for another trainer's log "loss*" or any number that is neither bookkeeping nor a metric."""
    if key in _OWN_LOSSES:
        return True
    if key in _OWN_METRICS or key in _BOOKKEEPING:
        return False
    if key.startswith("loss"):
        return True
    return not is_map_key(key) and not key.startswith("AR")  # AR@100: average recall


def find_videos(video_dir: str | Path) -> dict[str, Path]:
    """Map file stem -> video file for the videos directly in `video_dir` (one listing, no paths
    built from ids). ActivityNet files named "v_ID.mp4" also answer to "ID"."""
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise TalnetError("video folder not found", video_dir)
    rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
    found: dict[str, Path] = {}
    for entry in sorted(video_dir.iterdir(), key=lambda p: rank.get(p.suffix.lower(), 99)):
        if entry.suffix.lower() not in rank or not entry.is_file():
            continue
        found.setdefault(entry.stem, entry)
        if entry.stem.startswith("v_"):
            found.setdefault(entry.stem[2:], entry)
    return found


def subset_of_predictions(gt: GroundTruth, dets: Detections) -> str | None:
    """The one subset the predictions cover when the ground truth has several, else None: test
    predictions scored against train+test ground truth would count every train video as missed."""
    covered = {gt[vid].subset for vid in dets if vid in gt}
    if len(covered) != 1 or len({info.subset for info in gt.values()}) < 2:
        return None
    subset = covered.pop()
    warnings.warn(
        f"evaluating subset {subset!r} only, the one the predictions cover; "
        "give --subset to choose another",
        DataWarning,
        stacklevel=2,
    )
    return subset
