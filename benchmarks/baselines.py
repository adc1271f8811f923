"""Strong simple detectors a TAL-Net must beat, scored with the official metric.

Usage: .venv/bin/python benchmarks/baselines.py DATA [--seeds 0 1 2] [--json OUT.json]
where DATA holds annotations.json and features/ (e.g. from `talnet synth --profile thumos14`);
training uses subset "validation", scoring subset "test", as THUMOS'14 does.

1. per-step linear: logistic regression on each step's features; runs of equal argmax labels
   become segments (raw, and after a 9-step moving average of the probabilities).
2. per-step linear with multi-scale context: the same on [x, mean of x over centred windows of
   3, 9, 27 and 81 steps] (hand-made context at four scales).
3. sliding windows at the anchor scales: at every anchor scale s (cpu_fast's 2..256 steps) and
   every s/4 steps, the window's mean features plus the means of s/2 before and after it go
   through one linear classifier (C + 1 classes, trained on windows labelled by tIoU > 0.5);
   scores are class probabilities, then per-class NMS at 0.4, 200 per video at least.
Prints mAP (%) at tIoU 0.3-0.7 per seed, and mean ± sd over seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from talnet.config import load_config
from talnet.evaluate.detection import evaluate_detection
from talnet.io.annotations import labels_of, load_ground_truth
from talnet.io.features import FeatureMeta, list_feature_videos, load_features, read_meta
from talnet.io.types import Detection
from talnet.model.matching import pairwise_tiou
from talnet.model.nms import batched_nms

TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
CONTEXT_WIDTHS = (3, 9, 27, 81)
PER_CLASS = 1000  # sliding windows kept per class before NMS


def step_labels(info, steps: int, meta: FeatureMeta, index: dict[str, int]) -> np.ndarray:
    """Per-step class (0 = background) from the ground truth: (T,)."""
    times = meta.step_times(steps)
    y = np.zeros(steps, dtype=np.int64)
    for ann in info.annotations:
        if ann.label in index:
            y[(times >= ann.start) & (times <= ann.end)] = index[ann.label]
    return y


def window_means(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of rows [lo, hi) of x (T, C) for each window (clipped to the video): (N, C)."""
    t = len(x)
    cum = np.vstack([np.zeros((1, x.shape[1]), x.dtype), np.cumsum(x, 0)])
    lo, hi = np.clip(lo, 0, t - 1), np.clip(hi, 1, t)
    hi = np.maximum(hi, lo + 1)
    return (cum[hi] - cum[lo]) / (hi - lo)[:, None]


def multiscale(x: np.ndarray) -> np.ndarray:
    """[x | centred means over each CONTEXT_WIDTHS window]: (T, C * (1 + widths))."""
    steps = np.arange(len(x))
    parts = [x] + [window_means(x, steps - w // 2, steps + w // 2 + 1) for w in CONTEXT_WIDTHS]
    return np.hstack(parts)


def fit_linear(x: np.ndarray, y: np.ndarray, classes: int, seed: int, epochs: int = 200):
    """Full-batch multinomial logistic regression (Adam), standardized inputs -> predict fn."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y)
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    layer = torch.nn.Linear(x.shape[1], classes + 1)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(layer((xt - mu) / sd), yt).backward()
        opt.step()

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(layer((torch.from_numpy(z).float() - mu) / sd), 1).numpy()

    return predict


def runs_to_detections(prob: np.ndarray, meta: FeatureMeta, names: list[str]) -> list[Detection]:
    """Maximal runs of equal non-background argmax -> segments scored by their mean probability."""
    labels = prob.argmax(1)
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts, ends = np.concatenate([[0], edges]), np.concatenate([edges, [len(labels)]])
    half = meta.seconds_per_step / 2
    out = []
    for a, b in zip(starts, ends, strict=True):
        c = int(labels[a])
        if c > 0:
            t0, t1 = meta.step_to_seconds(a) - half, meta.step_to_seconds(b - 1) + half
            out.append(Detection(names[c - 1], float(t0), float(t1), float(prob[a:b, c].mean())))
    return out


def windows(t: int, scales: list[float]) -> np.ndarray:
    """Sliding windows (N, 2) [start, end) in steps at each scale, hop max(1, s/4)."""
    rows = []
    for s in scales:
        s = int(round(s))
        if s > t:
            continue
        starts = np.arange(0, t - s + 1, max(1, s // 4))
        rows.append(np.stack([starts, starts + s], 1))
    return np.vstack(rows) if rows else np.zeros((0, 2), np.int64)


def window_features(x: np.ndarray, win: np.ndarray) -> np.ndarray:
    """[inside mean | before (s/2) mean | after (s/2) mean] per window: (N, 3C)."""
    lo, hi = win[:, 0], win[:, 1]
    ctx = np.maximum(1, (hi - lo) // 2)
    return np.hstack(
        [window_means(x, lo, hi), window_means(x, lo - ctx, lo), window_means(x, hi, hi + ctx)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with annotations.json and features/")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    feat_dir = args.data / "features"
    meta = read_meta(feat_dir)
    train_gt = load_ground_truth(args.data / "annotations.json", "validation")
    test_gt = load_ground_truth(args.data / "annotations.json", "test")
    names = labels_of(train_gt)
    index = {n: i + 1 for i, n in enumerate(names)}
    have = set(list_feature_videos(feat_dir, meta))
    train_ids = sorted(v for v in train_gt if v in have)
    test_ids = sorted(v for v in test_gt if v in have)
    feats = {
        v: np.hstack(list(load_features(feat_dir, v, meta).values())) for v in train_ids + test_ids
    }
    scales = load_config("cpu_fast").model.anchors
    print(f"{args.data}: {len(train_ids)} training, {len(test_ids)} test videos, "
          f"{len(names)} classes; seeds {args.seeds}")  # fmt: skip
    results: dict[str, list[list[float]]] = {}

    def score(name: str, dets: dict) -> None:
        report = evaluate_detection(test_gt, dets, TIOUS)
        results.setdefault(name, []).append([100 * float(m) for m in report.mAP])

    for seed in args.seeds:
        began = time.perf_counter()
        y = {v: step_labels(train_gt[v], len(feats[v]), meta, index) for v in train_ids}
        rng = np.random.default_rng(seed)
        variants = (
            ("per-step linear", lambda z: z),
            ("per-step linear, multi-scale context", multiscale),
        )
        for tag, transform in variants:
            x_tr = np.vstack([transform(feats[v]) for v in train_ids])
            y_tr = np.concatenate([y[v] for v in train_ids])
            keep = rng.random(len(y_tr)) < min(1.0, 300_000 / len(y_tr))  # bound the memory
            predict = fit_linear(x_tr[keep], y_tr[keep], len(names), seed)
            for smooth in (1, 9):
                dets = {}
                for v in test_ids:
                    prob = predict(transform(feats[v]))
                    kernel = np.ones(smooth) / smooth
                    prob = np.stack([np.convolve(p, kernel, "same") for p in prob.T], 1)
                    dets[v] = runs_to_detections(prob, meta, names)
                score(f"{tag}, {smooth}-step smoothing", dets)
        # sliding windows: training windows labelled by tIoU > 0.5, background subsampled
        xs, ys = [], []
        for v in train_ids:
            win = windows(len(feats[v]), scales)
            gt = [(meta.seconds_to_step(a.start), meta.seconds_to_step(a.end), index[a.label])
                  for a in train_gt[v].annotations if a.label in index]  # fmt: skip
            label = np.zeros(len(win), np.int64)
            if gt:
                segs = torch.tensor([[a, b] for a, b, _ in gt], dtype=torch.float64)
                iou = pairwise_tiou(torch.from_numpy(win - 0.5).double(), segs).numpy()
                best = iou.argmax(1)
                label = np.where(iou.max(1) > 0.5, np.array([c for *_, c in gt])[best], 0)
            pick = (label > 0) | (rng.random(len(win)) < 0.1)
            xs.append(window_features(feats[v], win[pick]))
            ys.append(label[pick])
        predict = fit_linear(np.vstack(xs), np.concatenate(ys), len(names), seed)
        dets = {}
        for v in test_ids:
            win = windows(len(feats[v]), scales)
            prob = torch.from_numpy(predict(window_features(feats[v], win))[:, 1:].T)  # (C, N)
            # each class's best windows only: NMS over all of them is quadratic in N
            best = prob.topk(min(PER_CLASS, prob.shape[1]), dim=1).indices  # (C, K)
            segs = torch.from_numpy(win - 0.5).float()[best]  # (C, K, 2)
            kept = batched_nms(segs, torch.gather(prob, 1, best).float(), 0.4)[1].flatten()
            most = max(200, len(feats[v]) // 4)
            top = kept.topk(min(most, int((kept > 0).sum()))).indices.numpy()
            per_class = best.shape[1]
            dets[v] = [
                Detection(names[i // per_class],
                          *(float(s) for s in meta.step_to_seconds(segs.reshape(-1, 2)[i].numpy())),
                          float(kept[i]))
                for i in top
            ]  # fmt: skip
        score("sliding windows at the anchor scales", dets)
        print(f"seed {seed} done in {time.perf_counter() - began:.0f} s")

    width = max(len(k) for k in results)
    print(f"\n{'mAP (%)'.ljust(width)}  " + "  ".join(f"{t:>11g}" for t in TIOUS))
    for name, rows in results.items():
        arr = np.array(rows)
        sd = arr.std(0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1])
        cells = "  ".join(f"{m:5.1f} ± {s:3.1f}" for m, s in zip(arr.mean(0), sd, strict=True))
        print(f"{name.ljust(width)}  {cells}")
    if args.json:
        args.json.write_text(json.dumps({"tious": TIOUS, "mAP": results}, indent=1))


if __name__ == "__main__":
    main()
