"""Choosing the ActivityNet CPU preset across ActivityNet-shaped generators, never on a test split.

Usage: .venv/bin/python benchmarks/tune_anet_preset.py OUT DATA [DATA ...] [--variant NAME ...]
           [--base anet13_cpu] [--seeds 0] [--holdout 100] [--test] [--threads N]
Each DATA holds annotations.json (subsets training / validation) and feats128/ (features
resampled to 128 steps), e.g. for DATA in activitynet anet-lowsignal ... anet-mixed:

    talnet synth --profile $G --out /tmp/anet/$G --classes 20 --videos-train 400 \\
        --videos-test 200 --dim 64
    talnet resample-features /tmp/anet/$G/features /tmp/anet/$G/feats128 --steps 128 \\
        --ground-truth /tmp/anet/$G/annotations.json

Each variant (edits of --base, VARIANTS below) trains on a DATA's training videos less the last
--holdout and is scored on those (ActivityNet protocol, mAP at tIoU 0.5:0.05:0.95 and their
average), beside the whole-video x mean-feature logistic-regression baseline fitted on the same
training videos (benchmarks/anet_baseline.py). Variants are ranked by their worst margin over
that baseline (average mAP), then by their mean. `--test` trains on all training videos and
scores the validation subset: for the final table of a chosen preset only.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from anet_baseline import mean_feature_baseline
from tune_cpu_preset import run_dir, split

from talnet.bench.detect import cpu_model
from talnet.config import Edits, edit_config, load_config
from talnet.detect.detector import Detector, detect_features
from talnet.evaluate.detection import ACTIVITYNET_TIOUS, evaluate_detection
from talnet.io.annotations import load_ground_truth
from talnet.train.loop import FitOptions, train

FEATURES = "feats128"
SUBSETS = ("training", "validation")
SHOWN = (0.5, 0.75, 0.95)
# The first cut of anet13_cpu (2026-12-04): the lean widths and schedule alone.
FIRST_CUT: Edits = {
    "model": {"tower_pool": "max", "soi_mode": "interp", "step_classifier": False,
              "step_input": "reduced"},
    "proposals": {"actionness_thresholds": [], "whole_video_trims": []},
    "train": {"input_dropout": 0.0, "step_refit_epochs": 0, "video_refit_iterations": 0},
    "detect": {"step_score_weight": 0.0},
}  # fmt: skip
VARIANTS: dict[str, Edits] = {
    "base": {},
    "anet13 (the paper's recipe)": {"__preset__": {"name": "anet13"}},
    "first cut": FIRST_CUT,
    "vote 0.5": {"detect": {"step_score_weight": 0.5}},
    "vote 1.0": {"detect": {"step_score_weight": 1.0}},
    "no whole video": {"proposals": {"whole_video_trims": []}},
    "no video refit": {"train": {"video_refit_iterations": 0}},
    "context 9/33/65": {"model": {"step_context": [9, 33, 65]}},
    "32 epochs": {"train": {"epochs": 32}},
}


def scores(gt_path: Path, subset: str, dets: dict) -> dict:
    """mAP (%) at SHOWN tIoUs and the average over 0.5:0.05:0.95."""
    gt = load_ground_truth(gt_path, subset)
    maps = [100 * float(m) for m in evaluate_detection(gt, dets, ACTIVITYNET_TIOUS).mAP]
    tious = list(ACTIVITYNET_TIOUS)
    out = {f"mAP@{t:g}": round(maps[tious.index(t)], 2) for t in SHOWN}
    out["avg"] = round(float(np.mean(maps)), 2)
    return out


def variant_config(base: str, name: str):
    """The config of a variant: --base edited, or another preset named by "__preset__"."""
    edits = dict(VARIANTS[name])
    preset = edits.pop("__preset__", {}).get("name", base)
    return edit_config(load_config(preset), edits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--base", default="anet13_cpu", help="preset the variants edit")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--holdout", type=int, default=100, help="held-out training videos")
    parser.add_argument("--test", action="store_true", help="score the validation subset")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"cpu: {cpu_model()}; base {args.base}")
    rows: list[dict] = []
    for data in args.data:
        annotations, subset = split(data, args.out, args.holdout, args.test, SUBSETS)
        feats = data / FEATURES
        train_gt = load_ground_truth(annotations, SUBSETS[0])
        baseline = mean_feature_baseline(train_gt, load_ground_truth(annotations, subset), feats)
        rows.append({"variant": "whole-video baseline", "data": data.name, "seed": None,
                     **scores(annotations, subset, baseline)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        for name in args.variant or list(VARIANTS):
            for seed in args.seeds:
                config = variant_config(args.base, name)
                config.train.seed = seed
                if args.epochs:
                    config.train.epochs = args.epochs
                run = run_dir(args.out, name, data, seed)
                began = time.perf_counter()
                result = train(
                    annotations, feats, run, config, train_subset=SUBSETS[0],
                    options=FitOptions(progress=False, log_fn=lambda _line: None),
                )  # fmt: skip
                train_s = round(time.perf_counter() - began, 1)
                detector = Detector.from_checkpoint(result.checkpoint)
                ids = sorted(load_ground_truth(annotations, subset))
                dets = detect_features(detector, feats, ids, progress=False)
                rows.append({"variant": name, "data": data.name, "seed": seed,
                             "train_s": train_s, **scores(annotations, subset, dets)})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
                (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    print(summarize(rows))


def summarize(rows: list[dict]) -> str:
    """Per variant: each dataset's mean average mAP minus the baseline's, the worst, the mean."""
    datasets = list(dict.fromkeys(r["data"] for r in rows))
    base = {r["data"]: r["avg"] for r in rows if r["seed"] is None}
    variants = list(dict.fromkeys(r["variant"] for r in rows if r["seed"] is not None))
    lines = ["avg mAP - baseline  " + "  ".join(f"{d[:12]:>12}" for d in datasets)
             + "     worst      mean"]  # fmt: skip
    table = []
    for v in variants:
        cells = []
        for d in datasets:
            mine = [r["avg"] for r in rows if r["variant"] == v and r["data"] == d]
            cells.append(np.mean(mine) - base[d] if mine else np.nan)
        table.append((v, cells))
    for v, cells in sorted(table, key=lambda vc: -np.nanmin(vc[1])):
        lines.append(f"{v[:18]:<18}  " + "  ".join(f"{c:12.1f}" for c in cells)
                     + f"  {np.nanmin(cells):8.1f}  {np.nanmean(cells):8.1f}")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
