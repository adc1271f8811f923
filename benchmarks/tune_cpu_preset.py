"""Choose the CPU preset across many data generators, never on a test split and never on one.

Usage: .venv/bin/python benchmarks/tune_cpu_preset.py OUT DATA [DATA ...]
           [--base thumos14_cpu] [--variant NAME ...] [--seeds 0] [--holdout 20] [--test]
Each DATA holds annotations.json and features/ (e.g. `talnet synth --profile NAME`). Every
variant (edits of the base preset, VARIANTS below) trains on each DATA's training videos
(subset "validation") less the last `--holdout` of them, and is scored on those held-out
videos: mAP (%) at tIoU 0.3-0.7, proposal AR@100 / AR@1000 (tIoU 0.5:0.05:1.0), and
`talnet diagnose` at 0.5 (mAP gain from removing localization errors, share of > 18 s
instances missed). Variants are ranked by their worst mAP@0.5 over the datasets, then by
their mean rank. `--test` trains on all training videos and scores the test split instead:
for the final table of a variant already chosen, never for choosing. Rows go to OUT/rows.json
as they are measured, so a cut-off run keeps what it has.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from talnet.bench.detect import cpu_model
from talnet.config import Edits, edit_config, load_config
from talnet.detect.detector import Detector, detect_features
from talnet.evaluate.detection import evaluate_detection
from talnet.evaluate.diagnose import diagnose
from talnet.evaluate.proposals import evaluate_proposals
from talnet.io.annotations import load_ground_truth, save_ground_truth
from talnet.io.types import Detections, GroundTruth
from talnet.pipelines.evaluation import score_fusion_weights
from talnet.train.loop import FitOptions, train

TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
AN = (100, 1000)
HELD_OUT = "heldout"
# Edits of the base preset ({section: {field: value}}); each trains once per dataset and seed.
# Thresholds whose runs of the per-step head's actionness join the proposals (the baselines'
# multi-threshold decoding, inside the model).
STEP_RUNS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
# NO_WINDOW is today's thumos14_cpu without its window classifier (the preset of 2026-12-06: the
# proposal classifier's probability alone, step vote 0.75). PREVIOUS turns it back into the
# preset it replaced (step head on the reduced map, not refitted, no step proposals, vote 0.5);
# BEFORE into the one before that (the paper's max pooling, no step head). The tunings that
# chose each are in benchmarks/model_results.md.
NO_WINDOW: Edits = {
    "model": {"window_classifier": False},
    "train": {"window_refit_epochs": 0, "fusion_folds": 0},
    "detect": {"window_score_weight": 0.0, "step_score_weight": 0.75},
}
PREVIOUS: Edits = {
    "model": {"step_input": "reduced", "window_classifier": False},
    "train": {"step_refit_epochs": 0, "window_refit_epochs": 0, "fusion_folds": 0},
    "proposals": {"actionness_thresholds": [], "actionness_per_class": False},
    "detect": {"step_score_weight": 0.5, "window_score_weight": 0.0},
}


def on_previous(edits: Edits) -> Edits:
    """`edits` applied on top of PREVIOUS (the variants measured against that preset)."""
    merged = {section: dict(fields) for section, fields in PREVIOUS.items()}
    for section, fields in edits.items():
        merged.setdefault(section, {}).update(fields)
    return merged


BEFORE: Edits = on_previous({
    "model": {"tower_pool": "max", "soi_mode": "interp", "step_classifier": False},
    "train": {"input_dropout": 0.0},
    "detect": {"step_score_weight": 0.0},
})  # fmt: skip
VARIANTS: dict[str, Edits] = {
    "thumos14_cpu": {},
    "thumos14_cpu, no window classifier": NO_WINDOW,
    # twice the crops per epoch: twice the optimizer steps where the training videos are few
    "windows 6": {"train": {"windows_per_video": 6}},
    "contrast 1": {"detect": {"step_contrast": 1.0}},
    # four SoI bins: with the context extension one before, two inside, one after (the
    # sliding-window baseline's three means, nearly): fewer weights to learn from 60 videos
    "soi bins 4": {"model": {"soi_bins": 4}},
    # the paper's dropout in the classifier's FC layers (the preset: 0.2), against its
    # wrong-label errors where the training videos are few
    "dropout 0.5": {"model": {"dropout": 0.5}},
    "weight decay 1e-3": {"train": {"weight_decay": 0.001}},
    "input dropout 0.4": {"train": {"input_dropout": 0.4}},
    # detect.step_score_weight chosen per run on a fifth of its training videos, held out of
    # all but the last epochs (talnet.train.fusion)
    "fusion chosen held out": {
        "train": {"fusion_holdout": 0.2, "fusion_weights": [0.25, 0.5, 0.75], "fusion_folds": 0}
    },
    "fusion chosen held out, 8 final epochs": {
        "train": {
            "fusion_holdout": 0.2, "fusion_weights": [0.25, 0.5, 0.75], "fusion_final_epochs": 8,
            "fusion_folds": 0,
        }
    },
    # the vote's weight chosen per run between none and the preset's (the window classifier
    # fitted on the kept videos first): thumos14 wants no vote, lowsignal needs it
    "vote weight chosen held out": {
        "train": {
            "fusion_holdout": 0.2, "fusion_weights": [0.0, 0.3, 0.55], "fusion_final_epochs": 8,
            "fusion_folds": 0,
        }
    },
    "vote weight chosen held out, 14 final epochs": {
        "train": {
            "fusion_holdout": 0.2, "fusion_weights": [0.0, 0.3, 0.55], "fusion_final_epochs": 14,
            "fusion_folds": 0,
        }
    },
    # the preset before its vote weight was chosen on folds (train.fusion_folds): always 0.55
    "vote 0.55, not chosen": {"train": {"fusion_folds": 0}},
    # the optional boundary refinement (docs/design.md §3), on today's preset; its "off" is the
    # same checkpoints detected with detect.boundary_snap false
    "thumos14_cpu + boundary refinement": {"model": {"boundary_head": True}},
    "thumos14_cpu previous": PREVIOUS,
    "thumos14_cpu before": BEFORE,
    "no refit": {"train": {"step_refit_epochs": 0}},
    "vote 1.0": {"detect": {"step_score_weight": 1.0}},
    "previous + boundary head": on_previous({"model": {"boundary_head": True}}),
    "previous + boundary head, no snap": on_previous(
        {"model": {"boundary_head": True}, "detect": {"boundary_snap": False}}
    ),
    "previous + boundary head + actionness proposals": on_previous({
        "model": {"boundary_head": True},
        "proposals": {"actionness_thresholds": [0.3, 0.5, 0.7, 0.9]},
    }),  # fmt: skip
    "previous, no step vote": on_previous({"detect": {"step_score_weight": 0.0}}),
    "previous + step actionness proposals": on_previous(
        {"proposals": {"actionness_thresholds": STEP_RUNS}}
    ),
    "previous + step head on the features": on_previous({"model": {"step_input": "features"}}),
    "previous + per-class step proposals, vote 0.75": on_previous({
        "proposals": {"actionness_thresholds": STEP_RUNS, "actionness_per_class": True},
        "detect": {"step_score_weight": 0.75},
    }),  # fmt: skip
    "previous, max pooling": on_previous({"model": {"tower_pool": "max", "soi_mode": "interp"}}),
}


def split(
    data: Path,
    out: Path,
    holdout: int,
    test: bool,
    subsets: tuple[str, str] = ("validation", "test"),
) -> tuple[Path, str]:
    """The annotations to train with and the subset to score: the test split with `test`, else
    the last `holdout` training videos renamed to subset "heldout" in a copy under `out`.
    `subsets` names the training and test subsets (THUMOS'14's by default)."""
    annotations = data / "annotations.json"
    if test:
        return annotations, subsets[1]
    gt = load_ground_truth(annotations)
    ids = sorted(v for v, info in gt.items() if info.subset == subsets[0])
    held = set(ids[-holdout:])
    copy = {v: replace(info, subset=HELD_OUT) if v in held else info for v, info in gt.items()}
    path = heldout_annotations(out, data)
    save_ground_truth(path, copy)
    return path, HELD_OUT


def heldout_annotations(out: Path, data: Path) -> Path:
    """Where `split` writes DATA's annotations with the held-out videos renamed."""
    return out / f"{data.name}_heldout.json"


def run_dir(out: Path, variant: str, data: Path, seed: int) -> Path:
    """The run folder of one variant trained on one DATA with one seed."""
    return out / f"{variant}_{data.name}_{seed}".replace(" ", "_")


def map_and_recall(
    detector: Detector, features: Path, gt: GroundTruth, recall: bool = True
) -> tuple[Detections, dict]:
    """One detector's detections of the videos of `gt` and their mAP (%) per tIoU, with
    `recall` also its proposals' AR@AN (%)."""
    dets = detect_features(detector, features, sorted(gt), progress=False)
    scores = {"mAP": [100 * float(m) for m in evaluate_detection(gt, dets, TIOUS).mAP]}
    if recall:
        proposals = detect_features(detector, features, sorted(gt), False, True)
        found = evaluate_proposals(gt, proposals, an_values=AN)
        scores["AR"] = [100 * float(a) for a in found.average_recall]
    return dets, scores


def measure(checkpoint: Path, features: Path, annotations: Path, subset: str) -> dict:
    """mAP per tIoU, AR@AN and the diagnosis figures of one trained model on one subset."""
    gt = load_ground_truth(annotations, subset)
    dets, scores = map_and_recall(Detector.from_checkpoint(checkpoint), features, gt)
    d = diagnose(gt, dets, 0.5)
    longest = [b for b in d.sensitivity if b.characteristic == "length"][-1]
    return {
        **scores,
        "localization_gain": 100 * d.gain["localization"][0],
        "missed_over_18s": None if longest.missed_share is None else 100 * longest.missed_share,
    }


def summarize(rows: list[dict]) -> str:
    """Per variant: each dataset's mean mAP@0.5, the worst of them, the mean rank."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    datasets = list(dict.fromkeys(r["data"] for r in rows))
    at_half = TIOUS.index(0.5)
    table = np.full((len(variants), len(datasets)), np.nan)
    for i, v in enumerate(variants):
        for j, d in enumerate(datasets):
            cell = [r["mAP"][at_half] for r in rows if r["variant"] == v and r["data"] == d]
            table[i, j] = np.mean(cell) if cell else np.nan
    ranks = np.argsort(np.argsort(-np.nan_to_num(table, nan=-1), axis=0), axis=0) + 1
    order = sorted(range(len(variants)), key=lambda i: (-np.nanmin(table[i]), ranks[i].mean()))
    width = max(len(v) for v in variants)
    lines = [f"{'mAP@0.5':<{width}}  " + "  ".join(f"{d[:10]:>10}" for d in datasets)
             + "       worst  mean rank"]  # fmt: skip
    for i in order:
        cells = "  ".join(f"{m:10.1f}" for m in table[i])
        lines.append(f"{variants[i]:<{width}}  {cells}  {np.nanmin(table[i]):10.1f}"
                     f"  {ranks[i].mean():9.2f}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--base", default="thumos14_cpu", help="preset the variants edit")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--holdout", type=int, default=20, help="held-out training videos")
    parser.add_argument("--test", action="store_true", help="score the test split (final table)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"cpu: {cpu_model()}; base {args.base}")
    rows: list[dict] = []
    for name in args.variant or list(VARIANTS):
        for data in args.data:
            annotations, subset = split(data, args.out, args.holdout, args.test)
            for seed in args.seeds:
                config = edit_config(load_config(args.base), VARIANTS[name])
                config.train.seed = seed
                run = run_dir(args.out, name, data, seed)
                began = time.perf_counter()
                result = train(
                    annotations, data / "features", run, config,
                    options=FitOptions(
                        progress=False, log_fn=lambda _l: None, score_fusion=score_fusion_weights
                    ),
                )  # fmt: skip
                row = {"variant": name, "data": data.name, "seed": seed, "subset": subset,
                       "train_s": round(time.perf_counter() - began, 1)}  # fmt: skip
                row.update(measure(result.checkpoint, data / "features", annotations, subset))
                rows.append(row)
                print(json.dumps(row), flush=True)
                (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    print(summarize(rows))


if __name__ == "__main__":
    main()
