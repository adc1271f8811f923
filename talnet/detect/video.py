"""Videos to detections in one step: I3D extraction in memory, then the trained detector.

The features must be made the way the checkpoint's training features were (same streams and
widths, fps, stride, window), or its anchors and times would silently mean something else; so
the extraction defaults to the checkpoint's recorded settings and refuses to differ from them.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talnet.errors import TalnetError
from talnet.io.atomic import safe_child
from talnet.io.types import Detections
from talnet.video.extract import FEATURE_DIM, STREAMS, ExtractOptions, Extractor, collect_videos


def checkpoint_settings(detector) -> dict[str, Any]:
    """Extraction settings of the features `detector` (a Detector) was trained on.

    fps, stride, window and streams always; flow, size and resize (0 = squash) only when the
    training features were made by `talnet extract`, which records them in meta.json.
    """
    meta = detector.meta
    streams = [s for s in detector.model.stream_dims if s in STREAMS]
    settings: dict[str, Any] = {"fps": meta.fps, "stride": meta.stride, "window": meta.window}
    if streams:
        settings["streams"] = ",".join(streams)
    extra = meta.extra or {}
    if extra.get("backbone", "i3d") != "i3d":
        return settings
    if extra.get("flow_method"):
        settings["flow"] = extra["flow_method"]
    if isinstance(extra.get("frame_size"), int):
        settings["size"] = extra["frame_size"]
    if "resize_short_side" in extra:
        settings["resize"] = extra["resize_short_side"] or 0
    return settings


def check_fits(detector, options: ExtractOptions, checkpoint: str | Path | None = None) -> None:
    """Refuse an extraction whose features differ from those the checkpoint was trained on.

    Streams, widths, fps, stride and window must match (TalnetError naming the checkpoint);
    other recorded settings (flow method, frame size) that differ only give a warning.
    """
    meta, extracted = detector.meta, options.meta()
    problems = []
    for stream, dim in detector.model.stream_dims.items():
        if stream not in options.streams:
            problems.append(f"stream {stream!r} is not extracted (streams {list(options.streams)})")
        elif dim != FEATURE_DIM:
            problems.append(f"stream {stream!r} is {dim}-d there, I3D gives {FEATURE_DIM}-d")
    if not math.isclose(meta.fps, extracted.fps, rel_tol=1e-6):
        problems.append(f"fps {meta.fps:g} there, {extracted.fps:g} here")
    for key in ("stride", "window"):
        if getattr(meta, key) != getattr(extracted, key):
            problems.append(f"{key} {getattr(meta, key)} there, {getattr(extracted, key)} here")
    if problems:
        raise TalnetError(
            "the checkpoint was trained on other features than this extraction makes: "
            + "; ".join(problems),
            checkpoint,
        )
    for key in ("flow_method", "frame_size", "resize_short_side"):
        trained, now = (meta.extra or {}).get(key, "?"), extracted.extra.get(key)
        if trained != "?" and trained != now and not (key == "flow_method" and now is None):
            where = f"{checkpoint}: " if checkpoint else ""
            warnings.warn(
                f"{where}trained on features with {key} {trained}, extracting with {now}; "
                "detections may be worse",
                stacklevel=2,
            )


@dataclass
class VideoDetections:
    """What detect_videos did: detections per video id, and the videos that failed (and why)."""

    detections: Detections = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason naming it)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # non-video files in folders
    frames: int = 0
    seconds: float = 0.0


def detect_videos(
    detector,
    videos: Sequence[str | Path],
    options: ExtractOptions,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> VideoDetections:
    """Extract each video's features in memory and detect on them -> {file stem: detections}.

    `videos` are files or folders (as for `talnet extract`). A video that cannot be read is
    logged (one line naming it) and listed in .failed; the others still run. Raises TalnetError
    first, before any extraction, if the features would not fit the checkpoint.
    """
    from tqdm import tqdm

    check_fits(detector, options, checkpoint)
    found = collect_videos(videos)
    report = VideoDetections(ignored=[(str(p), why) for p, why in found.ignored])
    say = log or (lambda line: tqdm.write(line, file=sys.stderr))
    for path, why in found.ignored:
        say(f"{path}: {why}")

    def fail(path: Path, reason: str) -> None:
        reason = reason if reason.startswith(str(path)) else f"{path}: {reason}"
        report.failed.append((str(path), reason))
        say(f"failed: {reason}")

    todo = []
    for path in found.videos:
        try:
            safe_child(path.parent, path.stem)  # the stem becomes the video id
            todo.append(path)
        except TalnetError as exc:
            fail(path, str(exc))
    if not todo:
        return report

    meta = options.meta()
    bar = tqdm(total=len(todo), unit="video", desc="detect", disable=not progress)
    started = time.perf_counter()

    def on_video(i: int, path: Path, feats: dict | None, error: str | None, frames: int) -> None:
        bar.update(1)
        if feats is None:
            fail(path, error or "extraction failed")
            return
        report.frames += frames
        try:
            report.detections[path.stem] = detector.detect(feats, meta)
        except TalnetError as exc:
            fail(path, str(exc))

    with Extractor(options) as extractor:
        try:
            extractor.run(todo, on_video)
        finally:
            bar.close()
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["VideoDetections", "check_fits", "checkpoint_settings", "detect_videos"]
