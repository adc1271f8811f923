"""`talnet check`: validate ground truth, predictions and features before a long run."""

from __future__ import annotations

import argparse
import sys
import warnings

from talnet.cli.arguments import add_ground_truth_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate ground-truth, predictions and feature files (errors name file and video)",
        description="Load and validate the given files fully: JSON structure, segments, scores, "
        "every feature array (shape, stream lengths, NaN/inf) and, with --ground-truth, that each "
        "of its videos has features. Prints one summary line per file, a warning line per "
        "oddity kept as it is, and exits 2 with one error line on the first problem.",
    )
    add_ground_truth_argument(parser, required=False, help="ActivityNet-style ground truth")
    parser.add_argument("--subset", help="only this subset of the ground truth (any case)")
    parser.add_argument("--predictions", metavar="DET_JSON", help="ActivityNet results JSON")
    parser.add_argument("--features", metavar="FEAT_DIR", help="feature folder (with meta.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.errors import TalnetError
    from talnet.io.check import check_dataset

    if not (args.ground_truth or args.predictions or args.features):
        raise TalnetError("nothing to check: give --ground-truth, --predictions or --features")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            lines = check_dataset(args.ground_truth, args.predictions, args.features, args.subset)
        finally:
            for warning in caught:
                print(f"talnet: warning: {warning.message}", file=sys.stderr)
    print("\n".join(lines))
    return 0
