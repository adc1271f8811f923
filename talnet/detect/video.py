"""Videos to detections in one step: feature extraction in memory, then the trained detector.

The features must be made the way the checkpoint's training features were (same backbone,
streams and widths, fps, stride, window), or its anchors and times would silently mean something
else; so the extraction defaults to the checkpoint's recorded settings, backbone included
(`ExtractOptions.from_meta`), and refuses to differ from them.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from talnet.errors import TalnetError
from talnet.io.atomic import safe_child
from talnet.io.types import Detections
from talnet.video.collect import collect_videos
from talnet.video.options import RECORDED, ExtractOptions
from talnet.video.pipeline import Extractor


def check_fits(detector, options: ExtractOptions, checkpoint: str | Path | None = None) -> None:
    """Refuse an extraction whose features differ from those the checkpoint was trained on.

    Backbone (when recorded), streams, widths, fps, stride and window must match (TalnetError
    naming the checkpoint); other recorded settings (flow method, frame size) that differ only
    give a warning.
    """
    trained, extracted = detector.expected_meta, options.meta()
    problems = trained.mismatches(extracted)
    if problems:
        raise TalnetError(
            "the checkpoint was trained on other features than this extraction makes: "
            + "; ".join(problems),
            checkpoint,
        )
    for r in RECORDED:
        if not r.warn or r.key not in (trained.extra or {}):
            continue
        was, now = trained.extra[r.key], extracted.extra.get(r.key)
        if was != now and not (r.stream is not None and now is None):
            where = f"{checkpoint}: " if checkpoint else ""
            warnings.warn(
                f"{where}trained on features with {r.key} {was}, extracting with {now}; "
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
    with Extractor(options) as extractor, closing(extractor.iter(todo)) as videos_out:
        try:
            for video in videos_out:
                bar.update(1)
                if video.features is None:
                    fail(video.path, video.error or "extraction failed")
                    continue
                report.frames += video.frames
                try:
                    report.detections[video.path.stem] = detector.detect(video.features, meta)
                except TalnetError as exc:
                    fail(video.path, str(exc))
        finally:
            bar.close()
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["VideoDetections", "check_fits", "detect_videos"]
