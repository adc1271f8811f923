"""TAL-Net on a synthetic profile's test split over several training seeds: mAP per tIoU and
proposal recall (AR@AN), mean ± sd, in the format of `benchmarks/baselines.py`.

Usage: .venv/bin/python benchmarks/talnet_seeds.py DATA OUT [--config thumos14_cpu]
           [--seeds 0 1 2] [--threads N]
DATA holds annotations.json and features/ (e.g. `talnet synth --profile thumos14`). Each seed
trains on subset "validation" with the preset unchanged (as `talnet train --config PRESET
--seed S` would), then detects and proposes on subset "test" with the checkpoint's own
settings. Writes OUT/seeds.json after every seed, so a cut-off run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from talnet.config import load_config
from talnet.detect.detector import Detector, detect_features
from talnet.evaluate.proposals import evaluate_proposals
from talnet.io.annotations import load_ground_truth
from talnet.pipelines.evaluation import evaluate_detector, score_fusion_weights
from talnet.train.loop import FitOptions, train

TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
AN = (50, 100, 200, 500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--config", default="thumos14_cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    cpu = platform.processor() or platform.machine()
    print(f"cpu: {cpu}, torch threads {torch.get_num_threads()}")
    annotations, features = args.data / "annotations.json", args.data / "features"
    test_gt = load_ground_truth(annotations, "test")
    rows = []
    for seed in args.seeds:
        config = load_config(args.config)
        config.train.seed = seed
        began = time.perf_counter()
        result = train(
            annotations, features, args.out / f"seed{seed}", config,
            options=FitOptions(
                progress=False, log_fn=lambda _line: None, score_fusion=score_fusion_weights
            ),
        )  # fmt: skip
        seconds = time.perf_counter() - began
        detector = Detector.from_checkpoint(result.checkpoint)
        evaluation = evaluate_detector(detector, features, test_gt, tious=TIOUS)
        proposals = detect_features(detector, features, sorted(test_gt), False, True)
        recall = evaluate_proposals(test_gt, proposals, an_values=AN)
        row = {
            "seed": seed,
            "train_s": seconds,
            "epochs": config.train.epochs,
            "mAP": [100 * float(m) for m in evaluation.report.mAP],
            "AR": [100 * float(a) for a in recall.average_recall],
            "proposals_per_video": float(np.mean([len(p) for p in proposals.values()])),
        }
        rows.append(row)
        print(json.dumps(row))
        (args.out / "seeds.json").write_text(json.dumps(rows, indent=1))
    label = f"TAL-Net {args.config} ({len(rows)} seeds)"
    print(f"{'mAP (%) at tIoU':<48}" + "".join(f"{t:>13g}" for t in TIOUS))
    print(f"{label:<48}" + _cells(np.array([r["mAP"] for r in rows])))
    print(f"{'AR (%) at AN':<48}" + "".join(f"{a:>13d}" for a in AN))
    print(f"{label:<48}" + _cells(np.array([r["AR"] for r in rows])))
    train_s = [r["train_s"] for r in rows]
    print(f"training: {np.mean(train_s) / 60:.1f} min per run ({config.train.epochs} epochs)")


def _cells(values: np.ndarray) -> str:
    """Columns of mean ± sample sd over seeds (rows); sd 0 for one seed."""
    sd = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
    return "".join(f"{m:7.1f} ± {s:.1f}" for m, s in zip(values.mean(axis=0), sd, strict=True))


if __name__ == "__main__":
    main()
