"""Does batching change what anet13 learns? The same seeds trained with one video per step and
with `train.videos_per_batch` k (learning rate times k, the linear scaling rule), scored by the
ActivityNet protocol on the validation subset.

Usage: .venv/bin/python benchmarks/anet_batching.py GT.json FEATS OUT [--batch 8] [--epochs 8]
           [--seeds 0 1 2] [--threads 1]
FEATS is a resampled feature folder (`talnet resample-features --steps 128`), e.g. of
`talnet synth --profile activitynet --classes 20 --videos-train 400 --videos-test 200 --dim 64`.
Rows go to OUT/rows.json as they are measured.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from talnet.bench.detect import cpu_model
from talnet.config import Config, edit_config, load_config
from talnet.detect.detector import Detector, detect_features
from talnet.evaluate.detection import ACTIVITYNET_TIOUS, evaluate_detection
from talnet.io.annotations import load_ground_truth
from talnet.train.loop import FitOptions, train


def run(gt_path: Path, feats: Path, out: Path, name: str, config: Config) -> dict:
    """Train `config`, detect on the validation subset; mAP at 0.5 / 0.75 / 0.95 and average."""
    began = time.perf_counter()
    result = train(
        gt_path, feats, out / name, config, train_subset="training",
        options=FitOptions(progress=False, log_fn=lambda _line: None),
    )  # fmt: skip
    train_s = time.perf_counter() - began
    gt = load_ground_truth(gt_path, "validation")
    dets = detect_features(Detector.from_checkpoint(result.checkpoint), feats, sorted(gt), False)
    report = evaluate_detection(gt, dets, ACTIVITYNET_TIOUS)
    maps = [100 * float(m) for m in report.mAP]
    tious = list(ACTIVITYNET_TIOUS)
    shown = {f"mAP@{t:g}": round(maps[tious.index(t)], 2) for t in (0.5, 0.75, 0.95)}
    last = json.loads(Path(result.log).read_text().splitlines()[-1])
    return {"run": name, "train_s": round(train_s, 1), **shown,
            "avg_mAP": round(float(np.mean(maps)), 2), "loss": last["loss"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ground_truth", type=Path)
    parser.add_argument("features", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch", type=int, default=8, help="videos per step of the batched run")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"cpu: {cpu_model()}")
    base = load_config("anet13")
    rows = []
    for seed in args.seeds:
        one = edit_config(base, {"train": {"epochs": args.epochs, "seed": seed}})
        k = args.batch
        batched = edit_config(one, {"train": {"videos_per_batch": k, "lr": one.train.lr * k}})
        for name, config in ((f"one_per_step_{seed}", one), (f"batch{k}_{seed}", batched)):
            rows.append(run(args.ground_truth, args.features, args.out, name, config))
            print(json.dumps(rows[-1]), flush=True)
            (args.out / "rows.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
