"""The end-to-end demo: synthetic data -> train (cpu_fast) -> detect -> evaluate."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from talnet.config import Config, load_config
from talnet.data.synth import TEST_SUBSET, TRAIN_SUBSET, make_synthetic
from talnet.detect.detector import Detector
from talnet.evaluate.detection import PROTOCOL_TIOUS
from talnet.io.annotations import load_ground_truth
from talnet.io.atomic import write_json
from talnet.io.results import save_detections
from talnet.pipelines.evaluation import evaluate_detector, score_fusion_weights
from talnet.train.loop import FitOptions, train
from talnet.visualize.report import report_from_files


@dataclass
class DemoResult:
    """Paths of everything the demo wrote, and its headline number."""

    data: Path
    run: Path
    detections: Path
    metrics: Path
    report: Path
    map_at_half: float
    table: str


def run_demo(
    out_dir: str | Path,
    config: Config | None = None,
    videos_train: int = 100,
    videos_test: int = 40,
    seed: int = 0,
    epochs: int | None = None,
    progress: bool = True,
    log_fn=print,
) -> DemoResult:
    """Make the synthetic benchmark, train on its "validation" subset, detect and evaluate on
    "test"; write OUT/data, OUT/run, OUT/detections.json, OUT/metrics.json and OUT/report."""
    out = Path(out_dir)
    config = config or load_config("cpu_fast")
    if epochs is not None:
        config.train.epochs = epochs
    config.train.seed = seed
    began = time.perf_counter()

    log_fn(f"[1/5] synthetic data: {videos_train} training + {videos_test} test videos")
    data = make_synthetic(
        out / "data", seed=seed, videos_train=videos_train, videos_test=videos_test,
        progress=progress,
    )  # fmt: skip
    annotations, features = data / "annotations.json", data / "features"

    log_fn(f"[2/5] training ({config.train.epochs} epochs, cpu_fast schedule)")
    result = train(
        annotations, features, out / "run", config, train_subset=TRAIN_SUBSET,
        options=FitOptions(progress=progress, log_fn=log_fn, score_fusion=score_fusion_weights),
    )  # fmt: skip

    log_fn("[3/5] detecting on the test subset")
    test_gt = load_ground_truth(annotations, TEST_SUBSET)
    detector = Detector.from_checkpoint(result.checkpoint)
    tious = PROTOCOL_TIOUS[config.evaluate.protocol]
    evaluation = evaluate_detector(detector, features, test_gt, progress=progress, tious=tious)
    det_path = out / "detections.json"
    save_detections(det_path, evaluation.detections)

    log_fn("[4/5] evaluating")
    metrics_path = out / "metrics.json"
    write_json(metrics_path, evaluation.report.to_json())

    log_fn("[5/5] writing the HTML report")
    index = report_from_files(out / "report", run_dir=out, subset=TEST_SUBSET, tious=tious)
    log_fn(f"done in {time.perf_counter() - began:.0f} s")
    return DemoResult(
        data,
        out / "run",
        det_path,
        metrics_path,
        index,
        evaluation.map_at(0.5),
        evaluation.report.format_table(),
    )
