"""Videos to features (docs/design.md §2, §6): I3D two-stream or InceptionV3 RGB, a whole
folder or one video.

Step rule (FeatureMeta.num_steps): with n frames, window w and stride s, step i covers frames
[i*s, i*s + w) and there are T = max(1, floor((n - w) / s) + 1) steps; a video shorter than one
window gives one step padded with its last frame. InceptionV3 sees frame i*s + w // 2 of step i.
The pipeline is in `talnet.video.pipeline`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError
from talnet.io.feature_folder import check_folder_meta, plan_resume, save_features, shard_videos
from talnet.io.features import FeatureMeta, write_meta
from talnet.video.collect import collect_videos
from talnet.video.options import ExtractOptions
from talnet.video.pipeline import Extractor


@dataclass
class ExtractReport:
    """What extract_dataset did, video by video, and how fast."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already finished earlier
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0  # wall time spent extracting

    def realtime_factor(self, fps: float) -> float:
        """Seconds of video (at the extraction fps) per wall second."""
        return self.frames / fps / max(self.seconds, 1e-9)


def extract_dataset(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    options: ExtractOptions,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> ExtractReport:
    """Extract features of every video in `inputs` (files or folders) into out_dir.

    Loads the weights, writes meta.json, then one output per video atomically (a bad weight
    file fails before anything is written); skips videos already done, so rerunning a killed
    job resumes it. A video that fails is reported and leaves no output.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    found = collect_videos(inputs)
    meta = options.meta()
    check_folder_meta(out_dir, meta)
    report = ExtractReport(ignored=[(str(p), why) for p, why in found.ignored])
    say = log or (lambda line: tqdm.write(line, file=sys.stderr))
    for path, why in found.ignored:
        say(f"{path}: {why}")
    plan = plan_resume(out_dir, shard_videos(found.videos, shard), meta)
    for failure in plan.refused:
        report.failed.append(failure)
        say(f"failed: {failure[1]}")
    report.skipped = plan.done
    if report.skipped:
        say(f"{len(report.skipped)} video(s) already extracted in {out_dir}, skipping them")
    if not plan.todo:
        write_meta(out_dir, meta)
        return report
    extractor = Extractor(options)  # loads the weights: a bad file stops here, nothing written
    with extractor:
        write_meta(out_dir, meta)
        _extract_todo(extractor, plan.todo, out_dir, meta, report, say, progress)
    return report


def _extract_todo(
    extractor: Extractor,
    todo: list[Path],
    out_dir: Path,
    meta: FeatureMeta,
    report: ExtractReport,
    say: Callable[[str], None],
    progress: bool,
) -> None:
    """Extract `todo` into out_dir with progress bars, recording each outcome in `report`."""
    from tqdm import tqdm

    overall = tqdm(total=len(todo), unit="video", desc="extract", disable=not progress)
    bar = None
    started = time.perf_counter()

    def on_progress(event: str, i: int, n: int | None) -> None:
        nonlocal bar
        if event == "start":
            if bar is not None:
                bar.close()
            desc = todo[i].stem
            bar = tqdm(total=n, unit="frame", desc=desc, leave=False, disable=not progress)
        elif bar is not None:
            bar.update(n)
            report.frames += n
            overall.set_postfix(fps=f"{report.frames / (time.perf_counter() - started):.1f}")

    with closing(extractor.iter(todo, on_progress)) as it:
        try:
            for video in it:
                if video.features is None:
                    report.failed.append((str(video.path), video.error or "unknown error"))
                    say(f"failed: {video.error}")
                else:
                    save_features(out_dir, video.path.stem, video.features, meta)
                    report.done.append(video.path.stem)
                overall.update(1)
        finally:
            if bar is not None:
                bar.close()
            overall.close()
    report.seconds = time.perf_counter() - started


def extract_video_features(
    video: str | Path, options: ExtractOptions | None = None, extractor: Extractor | None = None
) -> tuple[dict[str, np.ndarray], FeatureMeta]:
    """Features of one video, in memory: ({stream: (T, D)}, meta); for `talnet detect --video`.

    Raises TalnetError if the video cannot be decoded. Pass an `extractor` to reuse loaded models.
    """
    if extractor is not None:
        options = extractor.options
    options = options or ExtractOptions()
    own = extractor is None
    extractor = extractor or Extractor(options)
    try:
        with closing(extractor.iter([Path(video)])) as it:
            (result,) = it
    finally:
        if own:
            extractor.close()
    if result.features is None:
        raise TalnetError(result.error or "extraction failed", video)
    meta = options.meta()
    meta.extra["n_frames"] = result.frames
    return result.features, meta


__all__ = ["ExtractOptions", "ExtractReport", "extract_dataset", "extract_video_features"]
