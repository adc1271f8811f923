"""Choose a CPU training schedule on a held-out part of the training split, never the test split.

Usage: .venv/bin/python benchmarks/tune_cpu_preset.py DATA OUT [--holdout 40] [--seed 0]
           [--variant NAME ...]
DATA holds annotations.json and features/ (e.g. `talnet synth --profile thumos14`). The last
`--holdout` videos of subset "validation" (sorted by id) become subset "heldout"; each variant
(edits of the cpu_fast preset) trains on the rest and is scored there (mAP at tIoU 0.3-0.7)
with fixed and with per-step proposal and detection budgets.
Prints one row per variant with its training time, and writes OUT/tuning.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from talnet.config import Edits, edit_config, load_config
from talnet.detect.detector import Detector
from talnet.io.annotations import load_ground_truth, save_ground_truth
from talnet.pipelines.evaluation import evaluate_detector
from talnet.train.loop import FitOptions, train

TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
# Training schedules, as edits of cpu_fast ({section: {field: value}}); each trains once.
VARIANTS: dict[str, Edits] = {
    "cpu_fast (10 epochs)": {},
    "20 epochs": {"train": {"epochs": 20}},
    "20 epochs, 1024-step crops": {"train": {"epochs": 20, "max_steps": 1024}},
}
# Detection budgets, applied to each trained model without retraining.
BUDGETS: dict[str, Edits] = {
    "fixed budgets": {},
    "budgets per step": {
        "proposals": {"post_nms_per_step_test": 0.25},
        "detect": {"detections_per_step": 0.15},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--holdout", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", choices=list(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gt = load_ground_truth(args.data / "annotations.json")
    train_ids = sorted(v for v, info in gt.items() if info.subset == "validation")
    held = set(train_ids[-args.holdout :])
    split = {v: replace(info, subset="heldout") if v in held else info for v, info in gt.items()}
    annotations = args.out / "annotations_heldout.json"
    save_ground_truth(annotations, split)
    held_gt = load_ground_truth(annotations, "heldout")
    rows = []
    print(f"{'variant':<48} " + " ".join(f"{t:>5g}" for t in TIOUS) + "  train s")
    for name in args.variant or list(VARIANTS):
        config = edit_config(load_config("cpu_fast"), VARIANTS[name])
        config.train.seed = args.seed
        began = time.perf_counter()
        result = train(
            annotations, args.data / "features", args.out / name.replace(" ", "_"), config,
            options=FitOptions(progress=False, log_fn=lambda _line: None),
        )  # fmt: skip
        seconds = time.perf_counter() - began
        for budget, edits in BUDGETS.items():
            detector = Detector.from_checkpoint(result.checkpoint)
            detector = detector.with_config(edit_config(detector.config, edits))
            evaluation = evaluate_detector(detector, args.data / "features", held_gt, tious=TIOUS)
            maps = [100 * float(m) for m in evaluation.report.mAP]
            label = f"{name}, {budget}"
            rows.append({"variant": label, "mAP": maps, "train_s": seconds})
            print(f"{label:<48} " + " ".join(f"{m:5.1f}" for m in maps) + f"  {seconds:7.0f}")
            (args.out / "tuning.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
