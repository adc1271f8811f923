"""An anet13 checkpoint on ActivityNet-shaped data beside a trivial baseline, ActivityNet protocol.

Usage: .venv/bin/python benchmarks/anet_baseline.py GT.json FEATS RUN_DIR [--subset validation]
           [--out results.json] [--threads N]
FEATS is a resampled feature folder (`talnet resample-features`), RUN_DIR a run trained on it
with `--config anet13`. Every row is scored by talnet.evaluate at tIoU 0.5:0.05:0.95 on the same
videos of --subset:

- TAL-Net anet13: the checkpoint as `talnet detect` runs it (proposals x its own video-level
  classifier's top-2 classes);
- whole video x video classifier (the trivial baseline): one detection per video covering it
  from start to end, labelled with each of the same classifier's top-2 classes, scored by
  that class's probability;
- TAL-Net with the classifier on each proposal (class_scores "proposal", the THUMOS path);
- with oracle video classes (a one-hot score file from the ground truth, as `talnet detect
  --video-scores` reads): TAL-Net's proposals and the whole-video baseline, the localization
  alone;
- TAL-Net's proposal score variants (objectness, product) beside the preset's actionness.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from talnet.detect.detector import Detector, detect_features
from talnet.evaluate.detection import ACTIVITYNET_TIOUS, evaluate_detection
from talnet.io.annotations import labels_of, load_ground_truth
from talnet.io.features import list_feature_videos, load_features, read_meta
from talnet.io.types import Detection, Detections, GroundTruth
from talnet.io.video_scores import VideoScores

SHOWN = (0.5, 0.75, 0.95)


def whole_video(
    detector: Detector, feat_dir: Path, ids: list[str], scores: VideoScores | None, k: int
) -> Detections:
    """One segment [0, D] per video for each of its top-k classes, scored by their probability
    (from `scores`, else the detector's video-level classifier)."""
    meta = read_meta(feat_dir)
    out: Detections = {}
    for vid in ids:
        feats = load_features(feat_dir, vid, meta)
        length = next(iter(feats.values())).shape[0]
        probs = scores.lookup(vid) if scores is not None else None
        if probs is None:
            probs = detector.video_probabilities(feats)
        duration = meta.for_video(vid, feat_dir).duration(length)
        top = np.argsort(-np.asarray(probs))[:k]
        out[vid] = [Detection(detector.classes[c], 0.0, duration, float(probs[c])) for c in top]
    return out


def oracle_scores(gt: GroundTruth, classes: list[str]) -> VideoScores:
    """Ground-truth video classes as a score file would give them: 1 for the video's classes."""
    index = {c: i for i, c in enumerate(classes)}
    scores = {}
    for vid, info in gt.items():
        row = np.zeros(len(classes))
        for a in info.annotations:
            if a.label in index:
                row[index[a.label]] = 1.0
        scores[vid] = row
    return VideoScores(list(classes), scores, "oracle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ground_truth", type=Path)
    parser.add_argument("features", type=Path)
    parser.add_argument("run", type=Path)
    parser.add_argument("--subset", default="validation")
    parser.add_argument("--out", type=Path, default=None, help="results JSON to write")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gt = load_ground_truth(args.ground_truth, args.subset)
    detector = Detector.from_checkpoint(args.run / "checkpoint.pt")
    meta = read_meta(args.features)
    ids = sorted(set(gt) & set(list_feature_videos(args.features, meta)))
    k = detector.config.detect.video_top_k
    oracle = oracle_scores(gt, detector.classes)
    rows: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}

    def score(name: str, dets: Detections, began: float) -> None:
        seconds[name] = time.perf_counter() - began
        report = evaluate_detection(gt, dets, ACTIVITYNET_TIOUS)
        rows[name] = [100 * float(m) for m in report.mAP] + [100 * float(report.average)]
        print(_row(name, rows[name]), flush=True)

    print(f"{len(ids)} videos of subset {args.subset!r}, {len(labels_of(gt))} classes")
    print(_header())
    began = time.perf_counter()
    score("TAL-Net anet13 (its video classifier, top-2)",
          detect_features(detector, args.features, ids, False), began)  # fmt: skip
    began = time.perf_counter()
    score("whole video x video classifier (top-2)",
          whole_video(detector, args.features, ids, None, k), began)  # fmt: skip
    began = time.perf_counter()
    score("TAL-Net, oracle video classes",
          detect_features(detector, args.features, ids, False, video_scores=oracle), began)
    began = time.perf_counter()
    score("whole video x oracle video classes",
          whole_video(detector, args.features, ids, oracle.for_classes(detector.classes), k),
          began)  # fmt: skip
    for variant in ("objectness", "product"):
        detector.config.detect.proposal_score = variant
        began = time.perf_counter()
        score(f"TAL-Net anet13, proposal score {variant}",
              detect_features(detector, args.features, ids, False), began)  # fmt: skip
    detector.config.detect.proposal_score = "actionness"
    detector.config.detect.class_scores = "proposal"
    began = time.perf_counter()
    score("TAL-Net, classifier on each proposal (no video scores)",
          detect_features(detector, args.features, ids, False), began)  # fmt: skip
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS) {peak_mb:.0f} MB")
    if args.out:
        args.out.write_text(json.dumps(
            {"tious": list(ACTIVITYNET_TIOUS), "rows": rows, "seconds": seconds,
             "videos": len(ids), "peak_rss_mb": peak_mb}, indent=1))  # fmt: skip


def _columns(values: list[float]) -> list[float]:
    """mAP at the SHOWN thresholds, then the average over 0.5:0.05:0.95."""
    picked = [values[int(np.argmin(np.abs(np.array(ACTIVITYNET_TIOUS) - t)))] for t in SHOWN]
    return [*picked, values[-1]]


def _header() -> str:
    return f"{'mAP (%) at tIoU':<56}" + "".join(f"{t:>8g}" for t in SHOWN) + f"{'avg':>8}"


def _row(name: str, values: list[float]) -> str:
    return f"{name:<56}" + "".join(f"{v:8.2f}" for v in _columns(values))


if __name__ == "__main__":
    main()
