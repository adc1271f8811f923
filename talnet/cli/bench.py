"""`talnet bench`: run the speed benchmarks of each stage and print their tables."""

from __future__ import annotations

import argparse
import importlib

# Each module talnet.bench.<area> defines `run(quick: bool) -> None`, printing its own table.
BENCH_AREAS: tuple[str, ...] = (
    # one line per area
    "evaluate",
    "visualize",
    "i3d",
    "video",
    "model",
    "detect",
    "shared",
    "cuda",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure speed (ratios against same-run baselines, with a GFLOP/s probe)",
        description="Run speed benchmarks. Each prints a matrix-multiply probe beside its "
        "timings, since this machine's speed drifts; compare ratios, not absolute times.",
    )
    parser.add_argument(
        "--only", choices=BENCH_AREAS, action="append", help="run only this area (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller cases")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.bench.probe import probe_line

    print(probe_line())
    for area in args.only or BENCH_AREAS:
        print(f"\n== {area} ==")
        importlib.import_module(f"talnet.bench.{area}").run(quick=args.quick)
    return 0
