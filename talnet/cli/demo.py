"""`talnet demo` (what `make demo` runs): synthetic data, train, detect, evaluate."""

from __future__ import annotations

import argparse

from talnet.cli.arguments import add_training_arguments, training_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="end-to-end demo on synthetic data: make data, train, detect, evaluate, report",
        description="Make a synthetic THUMOS-like benchmark, train TAL-Net with the cpu_fast "
        "config, detect on its test subset, print the mAP table and write an HTML report.",
        epilog="example: talnet demo --out runs/demo",
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (runs/demo)")
    parser.add_argument("--videos-train", type=int, default=100)
    parser.add_argument("--videos-test", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    add_training_arguments(parser, "cpu_fast", "YAML file or preset name (cpu_fast)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.pipelines.demo import run_demo

    result = run_demo(
        args.out,
        training_config(args),
        videos_train=args.videos_train,
        videos_test=args.videos_test,
        seed=args.seed,
        progress=not args.quiet,
    )
    print("\n" + result.table + "\n")
    print(f"mAP@0.5 on the synthetic test subset: {100 * result.map_at_half:.1f} %")
    print(f"data:        {result.data}")
    print(f"run:         {result.run} (checkpoint.pt, config.yaml, log.jsonl)")
    print(f"detections:  {result.detections}")
    print(f"metrics:     {result.metrics}")
    print(f"report:      {result.report} (open in a browser)")
    return 0
