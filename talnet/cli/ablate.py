"""`talnet ablate`: the paper's ablations (receptive fields, context, fusion, streams)."""

from __future__ import annotations

import argparse

from talnet.cli.arguments import (
    add_ground_truth_argument,
    add_training_arguments,
    training_config,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ablate",
        help="train ablation variants on the same data and print one mAP table",
        description="Train TAL-Net variants (single shared receptive field vs multi-tower, "
        "with/without context, early vs late fusion, RGB/flow/both, tower widths; proposal "
        "counts at detection time) with the same config, seed and data; print mAP@0.5 and "
        "the average over tIoU 0.1-0.7 on the test subset. Writes OUT/ablation.json.",
        epilog="example: talnet ablate --ground-truth runs/demo/data/annotations.json "
        "--features runs/demo/data/features --out runs/ablate",
    )
    add_ground_truth_argument(parser, required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--out", default="runs/ablate", help="folder for variant runs")
    parser.add_argument("--train-subset", default="validation")
    parser.add_argument("--test-subset", default="test")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this variant")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="train every variant once per seed and print mean, spread and each seed's mAP "
        "(default: the config's one seed)",
    )
    add_training_arguments(parser, "cpu_fast", "base config, YAML file or preset (cpu_fast)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.pipelines.ablate import format_ablation, run_ablation

    base = training_config(args)
    rows = run_ablation(
        args.ground_truth,
        args.features,
        args.out,
        base,
        names=args.only,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        progress=not args.quiet,
        seeds=args.seeds,
    )
    print("\n" + format_ablation(rows))
    return 0
