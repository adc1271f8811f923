"""An anet13 checkpoint on ActivityNet-shaped data beside trivial baselines, ActivityNet protocol.

Usage: .venv/bin/python benchmarks/anet_baseline.py GT.json FEATS [RUN_DIR] [--subset validation]
           [--train-subset training] [--out results.json] [--threads N]
FEATS is a resampled feature folder (`talnet resample-features`), RUN_DIR a run trained on it
with `--config anet13`; without RUN_DIR only the rows that need no model are printed (the
mean-feature classifier and oracle classes, both on whole videos). Every row is scored by
talnet.evaluate at tIoU 0.5:0.05:0.95 on the same videos of --subset:

- whole video x mean-feature logistic regression (no TAL-Net at all; `mean_feature_baseline`,
  importable): each video's features pooled over time (mean and max of every step, all streams
  concatenated), standardized, into a multinomial logistic regression fitted on the videos of
  --train-subset (label: the majority class of a video's instances; videos without one are
  left out); each test video as one segment [0, D] for each of its top-2 classes, scored by
  their probability. Its video-level top-1 accuracy is printed too;
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
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from talnet.detect.detector import Detector, detect_features
from talnet.evaluate.detection import ACTIVITYNET_TIOUS, evaluate_detection
from talnet.io.annotations import AMBIGUOUS, labels_of, load_ground_truth
from talnet.io.features import FeatureMeta, list_feature_videos, load_features, read_meta
from talnet.io.types import Detection, Detections, GroundTruth, VideoInfo
from talnet.io.video_scores import VideoScores

SHOWN = (0.5, 0.75, 0.95)
TOP_K = 2  # classes per video, as anet13's detect.video_top_k
MEAN_FEATURE_ROW = "whole video x mean-feature logistic regression (top-2)"


def whole_video(
    feat_dir: Path,
    ids: list[str],
    classes: list[str],
    k: int,
    scores: VideoScores | None = None,
    detector: Detector | None = None,
) -> Detections:
    """One segment [0, D] per video for each of its top-k classes, scored by their probability
    (from `scores`, else the detector's video-level classifier; a video with neither is left
    out). `classes` names the scores' columns."""
    meta = read_meta(feat_dir)
    out: Detections = {}
    for vid in ids:
        feats = load_features(feat_dir, vid, meta)
        length = next(iter(feats.values())).shape[0]
        probs = scores.lookup(vid) if scores is not None else None
        if probs is None and detector is not None:
            probs = detector.video_probabilities(feats)
        if probs is None:
            continue
        duration = meta.for_video(vid, feat_dir).duration(length)
        top = np.argsort(-np.asarray(probs), kind="stable")[:k]
        out[vid] = [Detection(classes[c], 0.0, duration, float(probs[c])) for c in top]
    return out


def video_class(info: VideoInfo) -> str | None:
    """The majority class of a video's instances (a tie: the first name in sorted order), None
    for a video without one. ActivityNet's videos hold one class each."""
    counts = Counter(a.label for a in info.annotations if a.label != AMBIGUOUS)
    if not counts:
        return None
    return min(counts, key=lambda c: (-counts[c], c))


def pooled_features(feat_dir: Path, ids: list[str], meta: FeatureMeta) -> np.ndarray:
    """(N, 2C) per video: its features' mean and max over time, every stream concatenated."""
    rows = []
    for vid in ids:
        feats = load_features(feat_dir, vid, meta)
        x = np.concatenate([np.asarray(a, dtype=np.float64) for a in feats.values()], axis=1)
        rows.append(np.concatenate([x.mean(axis=0), x.max(axis=0)]))
    return np.stack(rows)


def fit_logistic_regression(
    x: np.ndarray, y: np.ndarray, classes: int, max_iter: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression (weights (D, K), bias (K,)) by L-BFGS, float64, from
    zeros (a convex problem: deterministic); L2 of scikit-learn's default, C = 1."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
        tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad()
        # sum of cross-entropies + |W|^2 / 2, over N (scikit-learn's objective at C = 1)
        ce = torch.nn.functional.cross_entropy(xt @ weight + bias, yt)
        loss = ce + 0.5 * (weight**2).sum() / len(yt)
        loss.backward()
        return loss

    opt.step(closure)
    return weight.detach(), bias.detach()


def mean_feature_scores(
    gt_train: GroundTruth, test_ids: list[str], feat_dir: Path, meta: FeatureMeta | None = None
) -> VideoScores:
    """Class probabilities of `test_ids` from a logistic regression on pooled features
    (`pooled_features`, standardized) fitted on `gt_train`'s videos that have a class."""
    meta = meta or read_meta(feat_dir)
    have = set(list_feature_videos(feat_dir, meta))
    labelled = {v: video_class(gt_train[v]) for v in sorted(gt_train) if v in have}
    train_ids = [v for v, c in labelled.items() if c is not None]
    classes = sorted({labelled[v] for v in train_ids})
    if not train_ids:
        raise ValueError("no training video with an action and features")
    index = {c: i for i, c in enumerate(classes)}
    x = pooled_features(feat_dir, train_ids, meta)
    centre, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    y = np.array([index[labelled[v]] for v in train_ids], dtype=np.int64)
    weight, bias = fit_logistic_regression((x - centre) / scale, y, len(classes))
    scores = VideoScores(classes, {}, "mean-feature logistic regression")
    if test_ids:
        x_test = torch.from_numpy((pooled_features(feat_dir, test_ids, meta) - centre) / scale)
        probs = torch.softmax(x_test @ weight + bias, dim=1).numpy()
        scores.scores = dict(zip(test_ids, probs, strict=True))
    return scores


def mean_feature_baseline(
    gt_train: GroundTruth,
    gt_test: GroundTruth,
    feat_dir: Path,
    meta: FeatureMeta | None = None,
    k: int = TOP_K,
) -> Detections:
    """The whole-video x mean-feature classifier row: each `gt_test` video with features as one
    segment [0, D] per top-k class of `mean_feature_scores`, scored by its probability."""
    meta = meta or read_meta(feat_dir)
    ids = sorted(set(gt_test) & set(list_feature_videos(feat_dir, meta)))
    scores = mean_feature_scores(gt_train, ids, feat_dir, meta)
    return whole_video(feat_dir, ids, scores.classes, k, scores)


def video_accuracy(gt: GroundTruth, dets: Detections) -> float:
    """Share of `gt`'s videos with a class (`video_class`) in `dets` whose best-scored detection
    names it: video-level top-1 accuracy of whole-video detections."""
    hits = [
        max(dets[v], key=lambda d: d.score).label == video_class(gt[v])
        for v in gt
        if dets.get(v) and video_class(gt[v]) is not None
    ]
    return float(np.mean(hits)) if hits else float("nan")


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
    parser.add_argument("run", type=Path, nargs="?", default=None, help="anet13 run folder")
    parser.add_argument("--subset", default="validation")
    parser.add_argument("--train-subset", default="training", help="fits the mean-feature row")
    parser.add_argument("--out", type=Path, default=None, help="results JSON to write")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gt = load_ground_truth(args.ground_truth, args.subset)
    gt_train = load_ground_truth(args.ground_truth, args.train_subset)
    detector = Detector.from_checkpoint(args.run / "checkpoint.pt") if args.run else None
    meta = read_meta(args.features)
    ids = sorted(set(gt) & set(list_feature_videos(args.features, meta)))
    classes = detector.classes if detector else labels_of(gt_train)
    k = detector.config.detect.video_top_k if detector else TOP_K
    oracle = oracle_scores(gt, classes)
    rows: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}

    def score(name: str, detections: Callable[[], Detections]) -> None:
        began = time.perf_counter()
        dets = detections()
        seconds[name] = time.perf_counter() - began
        report = evaluate_detection(gt, dets, ACTIVITYNET_TIOUS)
        rows[name] = [100 * float(m) for m in report.mAP] + [100 * float(report.average)]
        print(_row(name, rows[name]), flush=True)

    print(f"{len(ids)} videos of subset {args.subset!r}, {len(labels_of(gt))} classes")
    print(_header())
    top1 = float("nan")

    def mean_feature() -> Detections:
        nonlocal top1
        dets = mean_feature_baseline(gt_train, gt, args.features, meta, k)
        top1 = 100 * video_accuracy(gt, dets)
        return dets

    def oracle_whole() -> Detections:
        return whole_video(args.features, ids, classes, k, oracle)

    if detector is None:  # the rows that need no model
        rows_to_run = [(MEAN_FEATURE_ROW, mean_feature),
                       ("whole video x oracle video classes", oracle_whole)]  # fmt: skip
    else:  # each whole-video baseline below the row it is compared with
        rows_to_run = _model_rows(detector, args.features, ids, k, oracle)
        rows_to_run.insert(2, (MEAN_FEATURE_ROW, mean_feature))
        rows_to_run.insert(4, ("whole video x oracle video classes", oracle_whole))
    for name, detections in rows_to_run:
        score(name, detections)
        if name == MEAN_FEATURE_ROW:
            print(f"  its video-level top-1 accuracy {top1:.1f} % (fit on {args.train_subset!r})")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS) {peak_mb:.0f} MB")
    if args.out:
        args.out.write_text(json.dumps(
            {"tious": list(ACTIVITYNET_TIOUS), "rows": rows, "seconds": seconds,
             "videos": len(ids), "mean_feature_top1": top1, "peak_rss_mb": peak_mb},
            indent=1))  # fmt: skip


def _model_rows(
    detector: Detector, feats: Path, ids: list[str], k: int, oracle: VideoScores
) -> list[tuple[str, Callable[[], Detections]]]:
    """The rows that need the anet13 checkpoint, in the table's order, each run when called
    (with the checkpoint's own proposal_score and class_scores unless the row changes one)."""
    own = detector.config.detect.proposal_score, detector.config.detect.class_scores

    def detect(proposal_score: str = own[0], class_scores: str = own[1],
               video_scores: VideoScores | None = None) -> Callable[[], Detections]:  # fmt: skip
        def run() -> Detections:
            detector.config.detect.proposal_score = proposal_score
            detector.config.detect.class_scores = class_scores
            return detect_features(detector, feats, ids, False, video_scores=video_scores)

        return run

    return [
        ("TAL-Net anet13 (its video classifier, top-2)", detect()),
        ("whole video x video classifier (top-2)",
         lambda: whole_video(feats, ids, detector.classes, k, detector=detector)),
        ("TAL-Net, oracle video classes", detect(video_scores=oracle)),
        ("TAL-Net anet13, proposal score objectness", detect("objectness")),
        ("TAL-Net anet13, proposal score product", detect("product")),
        ("TAL-Net, classifier on each proposal (no video scores)", detect(class_scores="proposal")),
    ]  # fmt: skip


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
