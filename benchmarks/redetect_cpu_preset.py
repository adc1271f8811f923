"""Detection settings tried on checkpoints that tune_cpu_preset.py already trained.
Usage: .venv/bin/python benchmarks/redetect_cpu_preset.py OUT DATA [DATA ...]
           [--variant thumos14_cpu] [--seeds 0] [--test] [--try NAME=JSON ...] [--ar]
           [--fit-window [JSON]] [--choose-fusion [--fusion-weights W ...]] [--detect JSON]
OUT is a tune_cpu_preset.py output folder; each run OUT/{variant}_{data}_{seed} is detected on
the same subset it was scored on (held-out training videos, or the test split with `--test`)
with each `--try` (a JSON {section: {field: value}} of `proposals` / `detect` edits over the
checkpoint's own config; "as trained" = {} is always first). Prints mAP (%) at tIoU 0.3-0.7 per
run and the summary of tune_cpu_preset.py (worst mAP@0.5 over the datasets, then mean rank);
rows go to OUT/redetect.json. A detection setting needs no training: this is how the preset's
detection settings are chosen, on held-out videos, never on a test split. With `--fit-window`,
a window classifier (model.window_classifier) is fitted onto each checkpoint (again, if it has
one), on the videos it was trained on, as training would after its last epoch (it reads only
the input features and the rest of a model trains the same with it or without it, so the
result is the model trained with it), with thumos14_cpu's window settings or those edited by
the JSON ({"model": {"window_parts": ...}, "train": {"window_refit_weight_decay": ...}}), and
`detect.window_score_weight` can be tried. With `--choose-fusion`, `detect.step_score_weight` is
chosen on folds of the same training videos first, as `train.fusion_folds` does after the last
epoch (the preset's fusion_folds and fusion_weights unless the checkpoint has its own), and the
tries start from it: the result is the model trained with that choice.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from tune_cpu_preset import HELD_OUT, heldout_annotations, map_and_recall, run_dir, summarize

from talnet.bench.detect import cpu_model
from talnet.config import Edits, edit_config, load_config
from talnet.data.dataset import TrainingData
from talnet.detect.detector import Detector
from talnet.io.annotations import clip_for_training, load_ground_truth
from talnet.io.features import read_meta
from talnet.model.talnet import TalNet
from talnet.pipelines.evaluation import score_fusion_weights
from talnet.train.edge_refit import refit_edge_head
from talnet.train.fusion import keep_fold_choice, score_folds
from talnet.train.window_refit import refit_window_head


def scored_on(out: Path, data: Path, test: bool) -> tuple[Path, str]:
    """The annotations and subset tune_cpu_preset.py scored `data` on."""
    if test:
        return data / "annotations.json", "test"
    return heldout_annotations(out, data), HELD_OUT


def parse_try(text: str) -> tuple[str, dict]:
    """NAME=JSON -> (NAME, edits)."""
    name, _, edits = text.partition("=")
    if not name or not edits:
        raise argparse.ArgumentTypeError(f"--try NAME=JSON, not {text!r}")
    return name, json.loads(edits)


def with_window_head(
    detector: Detector, annotations: Path, features: Path, edits: Edits
) -> Detector:
    """`detector` with a window classifier fitted on its training videos (subset
    "validation" of `annotations`) as `fit` does after the last epoch, with thumos14_cpu's
    window settings edited by `edits` (one it has already is fitted again with them)."""
    preset = edit_config(load_config("thumos14_cpu"), edits)
    m, t = preset.model, preset.train
    window = {
        "model": {
            "window_classifier": True,
            "window_parts": m.window_parts,
            "edge_regressor": m.edge_regressor,
            "edge_bins": m.edge_bins,
            "edge_stages": m.edge_stages,
        },
        "train": {
            "window_refit_epochs": t.window_refit_epochs,
            "window_refit_weight_decay": t.window_refit_weight_decay,
            "edge_refit_samples": t.edge_refit_samples,
            "edge_refit_jitter": t.edge_refit_jitter,
            "edge_refit_ridge": t.edge_refit_ridge,
            "edge_fold_choice": t.edge_fold_choice,
        },
    }
    config = edit_config(detector.config, window)
    model = TalNet(detector.model.stream_dims, len(detector.classes), config)
    fitted = ("window_head", "edge_head")
    weights = {k: v for k, v in detector.model.state_dict().items() if not k.startswith(fitted)}
    model.load_state_dict(weights, strict=False)
    gt = clip_for_training(load_ground_truth(annotations, "validation"))
    data = TrainingData(gt, features, read_meta(features), detector.classes)
    refit_window_head(model, data, config)
    if model.edge_head is not None:
        refit_edge_head(model, data, config)
    return Detector(model, detector.classes, detector.meta)


def with_fusion_chosen(
    detector: Detector, annotations: Path, features: Path, weights: list[float] | None = None
) -> Detector:
    """`detector` with detect.step_score_weight chosen on folds of its training videos (subset
    "validation" of `annotations`), as training with train.fusion_folds chooses it, among
    `weights` (default: the checkpoint's train.fusion_weights, or the preset's)."""
    preset = load_config("thumos14_cpu").train
    config = copy.deepcopy(detector.config)
    if not config.train.fusion_folds:
        config.train.fusion_folds = preset.fusion_folds
        config.train.fusion_weights = list(preset.fusion_weights)
    if weights:
        config.train.fusion_weights = list(weights)
    gt = clip_for_training(load_ground_truth(annotations, "validation"))
    data = TrainingData(gt, features, read_meta(features), detector.classes)
    scores = score_folds(detector.model, data, config, score_fusion_weights)
    record = keep_fold_choice(scores, config)
    print(f"fold choice {record}: w {config.detect.step_score_weight}", flush=True)
    return detector.with_config(config)


def changes_proposals(edits: dict) -> bool:
    """Whether a setting can change the proposals' set or order (AR is measured only then,
    and for the checkpoint as trained): the second stage's weights rank them too."""
    ranking = {"proposal_rank", "step_score_weight", "window_score_weight", "refine_proposals",
               "refined_proposal_nms"}  # fmt: skip
    return "proposals" in edits or bool(ranking & set(edits.get("detect", {})))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--variant", default="thumos14_cpu", help="the runs' variant name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--test", action="store_true", help="the runs were scored on test")
    parser.add_argument("--try", dest="tries", type=parse_try, action="append", default=[])
    parser.add_argument(
        "--ar", action="store_true", help="also AR@100 / @1000 of settings that move proposals"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument(
        "--fit-window",
        nargs="?",
        const={},
        type=json.loads,
        metavar="JSON",
        help="fit a window classifier first (thumos14_cpu's settings, edited by JSON)",
    )
    parser.add_argument(
        "--choose-fusion",
        action="store_true",
        help="choose detect.step_score_weight on folds of the training videos first",
    )
    parser.add_argument(
        "--fusion-weights",
        type=float,
        nargs="+",
        metavar="W",
        help="with --choose-fusion: the weights to choose from (default: the preset's)",
    )
    parser.add_argument(
        "--detect",
        type=json.loads,
        default={},
        metavar="JSON",
        help="detection edits ({field: value}) made to each checkpoint after --fit-window, "
        "before the fold choice and every --try",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"cpu: {cpu_model()}; runs of {args.variant}")
    tries = [("as trained", {}), *args.tries]
    rows: list[dict] = []
    for data in args.data:
        annotations, subset = scored_on(args.out, data, args.test)
        gt = load_ground_truth(annotations, subset)
        for seed in args.seeds:
            run = run_dir(args.out, args.variant, data, seed)
            trained = Detector.from_checkpoint(run / "checkpoint.pt")
            if args.fit_window is not None:
                trained = with_window_head(trained, annotations, data / "features", args.fit_window)
            if args.detect:
                trained = trained.with_config(edit_config(trained.config, {"detect": args.detect}))
            if args.choose_fusion:
                trained = with_fusion_chosen(
                    trained, annotations, data / "features", args.fusion_weights
                )
            for i, (name, edits) in enumerate(tries):
                detector = trained.with_config(edit_config(trained.config, edits))
                recall = args.ar and (i == 0 or changes_proposals(edits))
                _, scores = map_and_recall(detector, data / "features", gt, recall)
                row = {"variant": name, "data": data.name, "seed": seed, "subset": subset,
                       "step_score_weight": detector.config.detect.step_score_weight,
                       "edge_regress": detector.model.edge_head is not None
                       and detector.config.detect.edge_regress}  # fmt: skip
                rows.append({**row, **scores})
                print(json.dumps(rows[-1]), flush=True)
                (args.out / "redetect.json").write_text(json.dumps(rows, indent=1))
    print(summarize(rows))


if __name__ == "__main__":
    main()
