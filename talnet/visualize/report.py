"""`talnet report`: a static HTML site of detection results that works offline from file://.

    REPORT_DIR/index.html        mAP table and curves, per-class AP, training curves, videos by AP
    REPORT_DIR/diagnosis.html    DETAD diagnosis: error types, sensitivity, worst cases linked
    REPORT_DIR/video/<id>.html   one timeline viewer per video (data inline, no fetch)
    REPORT_DIR/figures/*.svg     matplotlib figures
    REPORT_DIR/assets/           stylesheet and timeline script, copied from the package
    REPORT_DIR/media/            copies of the videos (only with copy_videos)

This module only orchestrates: report_inputs reads the files, report_data evaluates,
report_figures and report_html draw and render, report_site writes and swaps the folder in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from talnet.errors import TalnetError
from talnet.io.annotations import load_ground_truth
from talnet.io.results import load_detections
from talnet.io.types import Detections, GroundTruth
from talnet.train.runfiles import LOG_FILE
from talnet.visualize.report_data import (
    VideoPage,
    diagnose_report,
    evaluate_report,
    page_names,
    video_pages,
)
from talnet.visualize.report_html import script_json
from talnet.visualize.report_inputs import (
    find_run_files,
    find_videos,
    is_loss_key,
    read_training_log,
    subset_of_predictions,
)
from talnet.visualize.report_site import MARKER, build_site, check_replaceable

# The entry points, and the helpers the tests and other tools have always imported from here.
__all__ = [
    "MARKER",
    "find_run_files",
    "find_videos",
    "is_loss_key",
    "page_names",
    "read_training_log",
    "report_from_files",
    "script_json",
    "write_report",
]


def report_from_files(
    out_dir: str | Path,
    *,
    ground_truth: str | Path | None = None,
    predictions: str | Path | None = None,
    run_dir: str | Path | None = None,
    video_dir: str | Path | None = None,
    subset: str | None = None,
    tious: Sequence[float] | None = None,
    copy_videos: bool = False,
) -> Path:
    """Load the inputs (files given, else those found in `run_dir`) and write the report.

    Returns the path of index.html.
    """
    check_replaceable(Path(out_dir))  # before any slow work
    run_files = find_run_files(run_dir) if run_dir is not None else {}
    ground_truth = ground_truth or run_files.get("ground_truth")
    predictions = predictions or run_files.get("predictions")
    if (ground_truth is None) != (predictions is None):
        missing = "--predictions" if predictions is None else "--ground-truth"
        raise TalnetError(f"the report needs both ground truth and predictions; give {missing}")
    if ground_truth is None and "log" not in run_files:
        raise TalnetError(
            "nothing to report: give --ground-truth and --predictions, or a --run folder "
            f"holding {LOG_FILE}"
        )
    for source in (ground_truth, predictions, run_dir, video_dir):
        if source is not None and Path(out_dir).resolve() in Path(source).resolve().parents:
            raise TalnetError(f"input {source} lies inside the report folder, which is replaced")
    gt = load_ground_truth(ground_truth) if ground_truth is not None else None
    dets = load_detections(predictions) if predictions is not None else None
    log = read_training_log(run_files["log"]) if "log" in run_files else None
    if subset is None and gt is not None and dets is not None:
        subset = subset_of_predictions(gt, dets)
    sources = {
        "ground truth": ground_truth,
        "predictions": predictions,
        "training run": run_dir,
        "videos": video_dir,
    }
    return write_report(
        out_dir,
        gt,
        dets,
        subset=subset,
        tious=tious,
        video_dir=video_dir,
        copy_videos=copy_videos,
        training_log=log,
        sources={k: str(v) for k, v in sources.items() if v is not None},
    )


def write_report(
    out_dir: str | Path,
    gt: GroundTruth | None,
    dets: Detections | None,
    *,
    subset: str | None = None,
    tious: Sequence[float] | None = None,
    video_dir: str | Path | None = None,
    copy_videos: bool = False,
    training_log: Sequence[Mapping[str, float]] | None = None,
    sources: Mapping[str, str] | None = None,
) -> Path:
    """Evaluate `dets` against `gt` and write the whole site into `out_dir`; returns index.html.

    `subset` restricts evaluation and pages to one subset; `video_dir` is searched for each
    video's file (linked by a relative path, or copied with `copy_videos`).
    """
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    metrics = None
    diagnosis = None
    pages: list[VideoPage] = []
    if gt is not None and dets is not None:
        metrics = evaluate_report(gt, dets, subset, tious)
        diagnosis = diagnose_report(gt, dets, subset, tious)
        pages = video_pages(gt, dets, subset, metrics.video_ap)
        if video_dir is not None:
            videos = find_videos(video_dir)
            for page in pages:
                page.source = videos.get(page.video_id)
    return build_site(out_dir, metrics, pages, training_log, sources or {}, copy_videos, diagnosis)
