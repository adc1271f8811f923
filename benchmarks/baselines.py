"""Strong simple detectors (no deep model) a TAL-Net must beat, scored with the official metric.

Usage: .venv/bin/python benchmarks/baselines.py DATA [DATA ...] [--seeds 0 1 2] [--json OUT.json]
                                                [--holdout N] [--weight-decay L2]
where each DATA holds annotations.json and features/ (e.g. from `talnet synth --profile
thumos14`); training uses subset "validation", scoring subset "test", as THUMOS'14 does.
With `--holdout N` the test subset is not read: the last N "validation" videos (sorted ids)
are scored and the others trained on, for tuning without touching a test split.

Baselines (each row is mAP (%) at tIoU 0.3-0.7, mean ± sd over the seeds):
1. linear: logistic regression on each step's features.
2. linear ctx 9/33: the same on [x, centred mean of x over 9 steps, over 33 steps].
3. linear ctx 3/9/27/81: the same on [x, centred means over 3, 9, 27 and 81 steps].
   Rows 1-3 decode per-step probabilities the same way, with a centred moving average of
   width 1 or 9 ("smooth 1" / "smooth 9" rows): for each class, the maximal runs above each
   of the thresholds 0.1, 0.2, ..., 0.9 (TAG-style multi-threshold grouping) become segments
   scored by mean probability inside minus mean over a quarter of the length on each side
   (outer-inner contrast; plain mean probability, and runs of equal argmax, did far worse),
   then per-class NMS at tIoU 0.4, max(200, T/4) per video.
4. sliding windows: at every anchor scale s (cpu_fast's 2..256 steps) and every s/4 steps, the
   window's mean features plus the means of s/2 before and after it go through one linear
   classifier (C + 1 classes, trained on windows labelled by tIoU > 0.5); scores are class
   probabilities, then per-class NMS at 0.4, max(200, T/4) per video.
Prints one table per DATA, then a markdown table dataset x baseline with each dataset's
strongest baseline (by mean mAP@0.5) in bold; `--json` writes every number, per seed too.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from talnet.config import load_config
from talnet.evaluate.detection import evaluate_detection
from talnet.io.annotations import GroundTruth, labels_of, load_ground_truth
from talnet.io.features import FeatureMeta, list_feature_videos, load_features, read_meta
from talnet.io.types import Detection, VideoInfo
from talnet.model.matching import pairwise_tiou
from talnet.model.nms import batched_nms
from talnet.train.step_refit import fit_linear as fit_logistic

TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
BEST_AT = TIOUS.index(0.5)  # the strongest baseline is the best mean mAP at this tIoU
THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))
SMOOTHING = (1, 9)
NMS_IOU = 0.4
PER_CLASS = 1000  # sliding windows kept per class before NMS
MAX_ROWS = 300_000  # training steps kept per linear fit (and at most ~2 GB of float32)
Results = dict[str, dict[int, list[float]]]  # baseline -> seed -> mAP (%) per tIoU
Dets = dict[str, list[Detection]]  # video -> detections


def window_means(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of rows [lo, hi) of x (T, C) for each window (clipped to the video): (N, C)."""
    t = len(x)
    cum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, 0, dtype=np.float64)])
    lo, hi = np.clip(lo, 0, t - 1), np.clip(hi, 1, t)
    hi = np.maximum(hi, lo + 1)
    return ((cum[hi] - cum[lo]) / (hi - lo)[:, None]).astype(x.dtype)


def centred_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Mean of x (T, C) over a centred window of `width` steps, clipped at the ends: (T, C)."""
    steps = np.arange(len(x))
    return window_means(x, steps - width // 2, steps + width // 2 + 1)


def context(x: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
    """[x | centred mean over each width]: (T, C * (1 + len(widths)))."""
    return np.hstack([x] + [centred_mean(x, w) for w in widths])


def step_labels(
    info: VideoInfo, steps: int, meta: FeatureMeta, index: dict[str, int]
) -> np.ndarray:
    """Per-step class (0 = background) from the ground truth: (T,)."""
    times = meta.step_times(steps)
    y = np.zeros(steps, dtype=np.int64)
    for ann in info.annotations:
        if ann.label in index:
            y[(times >= ann.start) & (times <= ann.end)] = index[ann.label]
    return y


def fit_linear(
    x: np.ndarray, y: np.ndarray, classes: int, seed: int, epochs: int = 200,
    weight_decay: float = 1e-4,
) -> Callable[[np.ndarray], np.ndarray]:
    """Full-batch multinomial logistic regression (Adam, L2 `weight_decay` on the standardized
    inputs' weights; the fit the model's refits use) -> predict fn."""
    weight, bias, _ = fit_logistic(
        torch.from_numpy(x).float(), torch.from_numpy(y), classes + 1, epochs, weight_decay,
        seed, torch.device("cpu"),
    )  # fmt: skip

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(torch.from_numpy(z).float() @ weight.T + bias, 1).numpy()

    return predict


def threshold_runs(
    p: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct maximal runs [start, end) of p (T,) above any threshold, and their scores."""
    above = np.pad(p[None, :] > np.asarray(thresholds)[:, None], ((0, 0), (1, 1)))
    edges = np.diff(above.astype(np.int8), axis=1)  # row-major: starts and ends pair up
    runs = np.unique(np.stack([np.nonzero(edges == 1)[1], np.nonzero(edges == -1)[1]], 1), axis=0)
    starts, ends = runs[:, 0], runs[:, 1]
    # score: mean p inside minus mean p over a quarter of the run's length on each side (the
    # outer-inner contrast of AutoLoc): fragments of an action score low, so NMS keeps wholes
    cum, t = np.concatenate([[0.0], np.cumsum(p, dtype=np.float64)]), len(p)
    inner = (cum[ends] - cum[starts]) / np.maximum(ends - starts, 1)
    pad = np.maximum((ends - starts) // 4, 1)
    lo, hi = np.maximum(starts - pad, 0), np.minimum(ends + pad, t)
    outer = (cum[starts] - cum[lo] + cum[hi] - cum[ends]) / np.maximum(starts - lo + hi - ends, 1)
    return starts, ends, inner - outer


def nms(segs: np.ndarray, scores: np.ndarray, iou: float, top: int | None = None) -> np.ndarray:
    """Indices of segments (N, 2) kept by greedy NMS at tIoU > `iou`, best first, `top` at most."""
    order, keep = np.argsort(-scores, kind="stable"), []
    while order.size and (top is None or len(keep) < top):
        i, rest = order[0], order[1:]
        keep.append(i)
        inter = np.minimum(segs[i, 1], segs[rest, 1]) - np.maximum(segs[i, 0], segs[rest, 0])
        inter = np.maximum(inter, 0)
        union = segs[i, 1] - segs[i, 0] + segs[rest, 1] - segs[rest, 0] - inter
        order = rest[inter <= iou * union]
    return np.asarray(keep, dtype=np.int64)


def decode_steps(
    prob: np.ndarray, width: int, meta: FeatureMeta, names: list[str]
) -> list[Detection]:
    """Per-step probabilities (T, C + 1) -> smoothed, multi-threshold runs per class, NMS."""
    p = centred_mean(prob, width) if width > 1 else prob
    most = max(200, len(prob) // 4)
    found = []  # (score, class, start, end) in steps
    for c in range(1, p.shape[1]):
        starts, ends, scores = threshold_runs(p[:, c])
        kept = nms(np.stack([starts, ends], 1).astype(np.float64), scores, NMS_IOU, most)
        found += [(scores[i], c, starts[i], ends[i]) for i in kept]
    found.sort(key=lambda r: -r[0])
    return [
        Detection(names[c - 1], float(meta.step_to_seconds(a - 0.5)),
                  float(meta.step_to_seconds(b - 0.5)), float(s))
        for s, c, a, b in found[:most]
    ]  # fmt: skip


def windows(t: int, scales: list[float]) -> np.ndarray:
    """Sliding windows (N, 2) [start, end) in steps at each scale, hop max(1, s/4)."""
    sizes = [s for s in (int(round(s)) for s in scales) if s <= t]
    starts = [np.arange(0, t - s + 1, max(1, s // 4)) for s in sizes]
    rows = [np.stack([a, a + s], 1) for a, s in zip(starts, sizes, strict=True)]
    return np.vstack(rows) if rows else np.zeros((0, 2), np.int64)


def window_features(x: np.ndarray, win: np.ndarray) -> np.ndarray:
    """[inside mean | before (s/2) mean | after (s/2) mean] per window: (N, 3C)."""
    lo, hi = win[:, 0], win[:, 1]
    ctx = np.maximum(1, (hi - lo) // 2)
    return np.hstack(
        [window_means(x, lo, hi), window_means(x, lo - ctx, lo), window_means(x, hi, hi + ctx)]
    )


class Split(NamedTuple):
    """One dataset's training and scored videos, features loaded."""

    meta: FeatureMeta
    names: list[str]
    train_gt: GroundTruth
    eval_gt: GroundTruth
    train_ids: list[str]
    eval_ids: list[str]
    feats: dict[str, np.ndarray]


def load_split(data: Path, holdout: int | None) -> Split:
    """Read DATA: train on "validation", score "test" (or the last `holdout` training videos)."""
    feat_dir = data / "features"
    meta = read_meta(feat_dir)
    have = set(list_feature_videos(feat_dir, meta))
    train_gt = load_ground_truth(data / "annotations.json", "validation")
    train_ids = sorted(v for v in train_gt if v in have)
    if holdout:
        if not 0 < holdout < len(train_ids):
            raise SystemExit(f"{data}: --holdout {holdout} of {len(train_ids)} training videos")
        train_ids, eval_ids = train_ids[:-holdout], train_ids[-holdout:]
        eval_gt = {v: train_gt[v] for v in eval_ids}
    else:
        eval_gt = load_ground_truth(data / "annotations.json", "test")
        eval_ids = sorted(v for v in eval_gt if v in have)
    feats = {
        v: np.hstack(list(load_features(feat_dir, v, meta).values())) for v in train_ids + eval_ids
    }
    return Split(meta, labels_of(train_gt), train_gt, eval_gt, train_ids, eval_ids, feats)


def step_baselines(
    split: Split, seed: int, rng: np.random.Generator, weight_decay: float = 1e-4
) -> dict[str, Dets]:
    """Detections of the per-step linear baselines: row name -> video -> detections."""
    index = {n: i + 1 for i, n in enumerate(split.names)}  # 0 is background
    out: dict[str, Dets] = {}
    variants: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        ("linear", lambda z: z),
        ("linear ctx 9/33", lambda z: context(z, (9, 33))),
        ("linear ctx 3/9/27/81", lambda z: context(z, (3, 9, 27, 81))),
    ]
    for tag, transform in variants:
        dim = transform(split.feats[split.train_ids[0]][:1]).shape[1]
        total = sum(len(split.feats[v]) for v in split.train_ids)
        rate = min(1.0, MAX_ROWS / total, 5e8 / (dim * total))  # bound the memory
        xs, ys = [], []
        for v in split.train_ids:  # subsample per video: the full matrix may not fit
            x = split.feats[v]
            keep = rng.random(len(x)) < rate
            xs.append(transform(x)[keep])
            ys.append(step_labels(split.train_gt[v], len(x), split.meta, index)[keep])
        predict = fit_linear(
            np.vstack(xs), np.concatenate(ys), len(split.names), seed, weight_decay=weight_decay
        )
        probs = {v: predict(transform(split.feats[v])) for v in split.eval_ids}
        for width in SMOOTHING:
            out[f"{tag}, smooth {width}"] = {
                v: decode_steps(p, width, split.meta, split.names) for v, p in probs.items()
            }
    return out


def sliding_windows(
    split: Split, seed: int, rng: np.random.Generator, weight_decay: float = 1e-4
) -> Dets:
    """Detections of the sliding-window baseline at the anchor scales: video -> detections."""
    meta, names, feats = split.meta, split.names, split.feats
    index = {n: i + 1 for i, n in enumerate(split.names)}  # 0 is background
    scales = load_config("cpu_fast").model.anchors
    xs, ys = [], []  # training windows labelled by tIoU > 0.5, background subsampled
    for v in split.train_ids:
        win = windows(len(feats[v]), scales)
        gt = [(meta.seconds_to_step(a.start), meta.seconds_to_step(a.end), index[a.label])
              for a in split.train_gt[v].annotations if a.label in index]  # fmt: skip
        label = np.zeros(len(win), np.int64)
        if gt:
            segs = torch.tensor([[a, b] for a, b, _ in gt], dtype=torch.float64)
            iou = pairwise_tiou(torch.from_numpy(win - 0.5).double(), segs).numpy()
            best = iou.argmax(1)
            label = np.where(iou.max(1) > 0.5, np.array([c for *_, c in gt])[best], 0)
        pick = (label > 0) | (rng.random(len(win)) < 0.1)
        xs.append(window_features(feats[v], win[pick]))
        ys.append(label[pick])
    predict = fit_linear(
        np.vstack(xs), np.concatenate(ys), len(names), seed, weight_decay=weight_decay
    )
    dets = {}
    for v in split.eval_ids:
        win = windows(len(feats[v]), scales)
        prob = torch.from_numpy(predict(window_features(feats[v], win))[:, 1:].T)  # (C, N)
        # each class's best windows only: NMS over all of them is quadratic in N
        best = prob.topk(min(PER_CLASS, prob.shape[1]), dim=1).indices  # (C, K)
        segs = torch.from_numpy(win - 0.5).float()[best]  # (C, K, 2)
        kept = batched_nms(segs, torch.gather(prob, 1, best).float(), NMS_IOU)[1].flatten()
        most = max(200, len(feats[v]) // 4)
        top = kept.topk(min(most, int((kept > 0).sum()))).indices.numpy()
        dets[v] = [
            Detection(names[i // best.shape[1]],
                      *(float(s) for s in meta.step_to_seconds(segs.reshape(-1, 2)[i].numpy())),
                      float(kept[i]))
            for i in top
        ]  # fmt: skip
    return dets


def run_dataset(
    data: Path, seeds: list[int], holdout: int | None, weight_decay: float = 1e-4
) -> tuple[Results, Split]:
    """Every baseline on one DATA folder, once per seed: baseline -> seed -> mAP (%)."""
    split = load_split(data, holdout)
    scored = f"held-out last {holdout}" if holdout else "test"
    print(f"{data}: {len(split.train_ids)} training, {len(split.eval_ids)} {scored} videos, "
          f"{len(split.names)} classes; seeds {seeds}")  # fmt: skip
    results: Results = {}
    for seed in seeds:
        began, rng = time.perf_counter(), np.random.default_rng(seed)
        rows = step_baselines(split, seed, rng, weight_decay)
        rows["sliding windows"] = sliding_windows(split, seed, rng, weight_decay)
        for name, dets in rows.items():
            report = evaluate_detection(split.eval_gt, dets, TIOUS)
            results.setdefault(name, {})[seed] = [100 * float(m) for m in report.mAP]
        print(f"seed {seed} done in {time.perf_counter() - began:.0f} s")
    return results, split


def summarize(per_seed: dict[int, list[float]]) -> tuple[list[float], list[float]]:
    """Mean and sd (ddof 1; 0 for one seed) over seeds, per tIoU."""
    arr = np.array(list(per_seed.values()))
    sd = arr.std(0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1])
    return arr.mean(0).tolist(), sd.tolist()


def strongest(results: Results) -> str:
    """The baseline with the best mean mAP at tIoU 0.5."""
    return max(results, key=lambda name: summarize(results[name])[0][BEST_AT])


def cells(per_seed: dict[int, list[float]]) -> list[str]:
    """'mean ± sd' per tIoU."""
    return [f"{m:.1f} ± {s:.1f}" for m, s in zip(*summarize(per_seed), strict=True)]


def print_table(results: Results) -> None:
    """One dataset's table, its strongest baseline marked with '<-'."""
    width, best = max(len(k) for k in results), strongest(results)
    print(f"\n{'mAP (%)'.ljust(width)}  " + "  ".join(f"{t:>11g}" for t in TIOUS))
    for name, per_seed in results.items():
        mark = "  <- best" if name == best else ""
        print(f"{name.ljust(width)}  " + "  ".join(f"{c:>11}" for c in cells(per_seed)) + mark)
    print()


def markdown(all_results: dict[str, Results]) -> str:
    """Dataset x baseline table of mean ± sd mAP (%), each dataset's strongest in bold."""
    lines = ["| dataset | baseline | " + " | ".join(f"mAP@{t:g}" for t in TIOUS) + " |"]
    lines.append("|---|---|" + "---:|" * len(TIOUS))
    for dataset, results in all_results.items():
        best = strongest(results)
        for name, per_seed in results.items():
            row = [name] + cells(per_seed)
            row = [f"**{c}**" for c in row] if name == best else row
            lines.append(f"| {dataset} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    """Parse the command line, run every baseline on every DATA, print and save the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="+", help="with annotations.json, features/")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--holdout", type=int, metavar="N",
                        help='score the last N "validation" videos instead of "test"')  # fmt: skip
    parser.add_argument("--weight-decay", type=float, default=1e-4, metavar="L2",
                        help="every linear fit's L2 on its standardized weights (default 1e-4)")
    args = parser.parse_args()
    # a class absent from the scored videos has no AP; its predictions are rightly ignored
    warnings.filterwarnings("ignore", message="ignored predictions")
    unique = len({d.name for d in args.data}) == len(args.data)
    all_results: dict[str, Results] = {}
    saved = {"tious": TIOUS, "seeds": args.seeds, "holdout": args.holdout, "datasets": {}}
    for data in args.data:
        results, split = run_dataset(data, args.seeds, args.holdout, args.weight_decay)
        print_table(results)
        all_results[data.name if unique else str(data)] = results
        saved["datasets"][str(data)] = {
            "train_videos": len(split.train_ids),
            "scored_videos": len(split.eval_ids),
            "classes": len(split.names),
            "best": strongest(results),
            "mAP": {n: {"per_seed": r, "mean": summarize(r)[0], "sd": summarize(r)[1]}
                    for n, r in results.items()},
        }  # fmt: skip
    print(markdown(all_results))
    if args.json:
        args.json.write_text(json.dumps(saved, indent=1))


if __name__ == "__main__":
    main()
