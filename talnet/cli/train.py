"""`talnet train`: train TAL-Net on features + ground truth (also under torchrun, data parallel)."""

from __future__ import annotations

import argparse
import sys

from talnet.cli.arguments import (
    add_ground_truth_argument,
    add_training_arguments,
    training_config,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train TAL-Net on extracted features and ground-truth annotations",
        description="Train TAL-Net (one video crop per step, both stages jointly). Writes "
        "RUN_DIR/checkpoint.pt (every epoch, atomically), RUN_DIR/config.yaml and "
        "RUN_DIR/log.jsonl (losses per stage, learning rate, time, held-out mAP), and "
        "ends with a warning per classification loss still near chance. "
        "Under `torchrun --nproc_per_node=N talnet train ...` it trains with "
        "data parallelism: each step's gradients averaged over the processes (gloo on CPU, nccl "
        "on GPU).",
        epilog="example: talnet train --ground-truth gt.json --features feats/ --out runs/a "
        "--config cpu_fast --val-subset test",
    )
    add_ground_truth_argument(parser, required=True)
    parser.add_argument("--features", required=True, help="feature folder (with meta.json)")
    parser.add_argument("--out", required=True, help="run folder for checkpoint, config, log")
    parser.add_argument("--train-subset", default="validation", help="default: validation")
    parser.add_argument(
        "--val-subset", default=None, help="subset to evaluate mAP on after each epoch"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt if present"
    )
    parser.add_argument("--seed", type=int, default=None, help="override train.seed")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    add_training_arguments(
        parser,
        None,
        "YAML file or preset name (thumos14_i3d = the paper's recipe, the default; "
        "cpu_fast = the CPU-budget schedule)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.io.annotations import load_ground_truth
    from talnet.pipelines.evaluation import held_out_validator, score_fusion_weights
    from talnet.train.chance import near_chance
    from talnet.train.distributed import Distributed
    from talnet.train.loop import FitOptions, train
    from talnet.train.runfiles import read_log

    config = training_config(args)
    validate = None
    if args.val_subset:
        val_gt = load_ground_truth(args.ground_truth, args.val_subset)
        validate = held_out_validator(args.features, val_gt)
    options = FitOptions(
        device=args.device,
        amp=args.amp,
        progress=not args.quiet,
        validate=validate,
        score_fusion=score_fusion_weights,
    )
    result = train(
        args.ground_truth,
        args.features,
        args.out,
        config,
        train_subset=args.train_subset,
        resume=args.resume,
        epochs=args.epochs,
        options=options,
    )
    if Distributed.from_env().is_main:  # under torchrun, rank 0 speaks for all
        print(f"checkpoint: {result.checkpoint}\nlog: {result.log}")
        # a run that ended near chance says so (talnet.train.chance: thresholds and why)
        records = read_log(result.log)
        for line in near_chance(records, result.config or config, len(result.classes)):
            print(f"talnet: warning: {line}", file=sys.stderr)
    return 0
