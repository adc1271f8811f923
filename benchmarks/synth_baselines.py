"""Trivial detectors on the synthetic benchmark: the floor a real TAL-Net must clear by far.

Usage: .venv/bin/python benchmarks/synth_baselines.py [--videos-train 60] [--videos-test 40]
Prints mAP at tIoU 0.3 / 0.5 / 0.7 (talnet.evaluate) of (1) a per-step linear classifier on
[rgb | flow] whose runs of equal labels become segments, raw and with a 9-step moving average,
and (2) thresholding the feature norm, each region labelled by its nearest flow class mean.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from talnet.data.synth import (
    SynthConfig,
    class_names,
    layouts_to_ground_truth,
    make_prototypes,
    render_features,
    sample_layouts,
)
from talnet.evaluate.detection import evaluate_detection
from talnet.io.features import FeatureMeta
from talnet.io.types import Detection


def step_labels(layout, steps: int, meta: FeatureMeta) -> np.ndarray:
    """Per-step class (0 = background, c + 1 = class c) from the layout's actions: (T,)."""
    times = meta.step_to_seconds(np.arange(steps))
    y = np.zeros(steps, dtype=np.int64)
    for act in layout.actions:
        y[(times >= act.start) & (times <= act.end)] = act.cls + 1
    return y


def runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs (label, first, last) of equal non-zero labels."""
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(labels)]]) - 1
    return [
        (int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True) if labels[s] > 0
    ]


def to_seconds(first: int, last: int, meta: FeatureMeta) -> tuple[float, float]:
    half = meta.seconds_per_step / 2
    return float(meta.step_to_seconds(first)) - half, float(meta.step_to_seconds(last)) + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos-train", type=int, default=60)
    parser.add_argument("--videos-test", type=int, default=40)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    cfg, meta, classes, dim = SynthConfig(), FeatureMeta(), 20, args.dim
    protos = make_prototypes(0, classes, dim, cfg)
    layouts = sample_layouts(0, args.videos_train, args.videos_test, classes, cfg)
    feats = [
        render_features(np.random.default_rng(i), lay, protos, cfg, meta)
        for i, lay in enumerate(layouts)
    ]
    train = [i for i, lay in enumerate(layouts) if lay.subset == "validation"]
    test = [i for i, lay in enumerate(layouts) if lay.subset == "test"]
    gt = layouts_to_ground_truth([layouts[i] for i in test], classes, cfg.fps)
    names = class_names(classes)

    def report(name: str, dets: dict) -> None:
        m = evaluate_detection(gt, dets).mAP
        print(f"{name:<48} mAP@0.3/0.5/0.7 = {m[2]:.3f} / {m[4]:.3f} / {m[6]:.3f}")

    x_tr = torch.tensor(np.vstack([feats[i] for i in train]))
    y_tr = torch.tensor(
        np.concatenate([step_labels(layouts[i], len(feats[i]), meta) for i in train])
    )
    mu, sd = x_tr.mean(0), x_tr.std(0)
    torch.manual_seed(0)
    linear = torch.nn.Linear(x_tr.shape[1], classes + 1)
    opt = torch.optim.Adam(linear.parameters(), lr=1e-2)
    for _ in range(150):  # full-batch logistic regression
        opt.zero_grad()
        torch.nn.functional.cross_entropy(linear((x_tr - mu) / sd), y_tr).backward()
        opt.step()
    for smooth in (1, 9):
        dets = {}
        for i in test:
            with torch.no_grad():
                prob = torch.softmax(linear((torch.tensor(feats[i]) - mu) / sd), 1).numpy()
            kernel = np.ones(smooth) / smooth
            prob = np.stack([np.convolve(p, kernel, "same") for p in prob.T], axis=1)
            dets[layouts[i].video_id] = [
                Detection(names[c - 1], *to_seconds(a, b, meta), float(prob[a : b + 1, c].mean()))
                for c, a, b in runs(prob.argmax(1))
            ]
        report(f"per-step linear, {smooth}-step smoothing", dets)

    means = np.zeros((classes, dim))
    for c in range(classes):
        rows = [
            feats[i][step_labels(layouts[i], len(feats[i]), meta) == c + 1, dim:] for i in train
        ]
        means[c] = np.vstack(rows).mean(0)
    for pct in (60, 80):
        dets = {}
        for i in test:
            x = feats[i]
            norm = np.convolve(np.linalg.norm(x - np.median(x, 0), axis=1), np.ones(5) / 5, "same")
            regions = runs((norm > np.percentile(norm, pct)).astype(np.int64))
            dets[layouts[i].video_id] = [
                Detection(
                    names[int(((x[a : b + 1, dim:].mean(0) - means) ** 2).sum(1).argmin())],
                    *to_seconds(a, b, meta),
                    float(norm[a : b + 1].mean()),
                )
                for _, a, b in regions
            ]
        report(f"feature-norm threshold (>{pct}th pct) + nearest mean", dets)


if __name__ == "__main__":
    main()
