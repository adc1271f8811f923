"""`talnet evaluate`: detection mAP per tIoU (or proposal AR@AN) of a results file."""

from __future__ import annotations

import argparse
import json

from talnet.cli.arguments import add_ground_truth_argument

_PROTOCOLS = ("thumos", "activitynet")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="detection mAP per tIoU (THUMOS'14 / ActivityNet protocol) or proposal AR@AN",
        description="Score detections against ground truth exactly as ActivityNet's "
        "Evaluation/eval_detection.py does: per class, predictions in score order are matched "
        "to the unmatched ground truth of their video with the highest tIoU at or above the "
        "threshold; AP is the area under the interpolated precision-recall curve; mAP the mean "
        "over the ground-truth classes. 'Ambiguous' ground truth is not a class. Predictions "
        "for videos or labels not in the ground truth are ignored, with one warning. "
        "With --proposals, the predictions are scored as class-agnostic proposals: average "
        "recall at an average number (AN) of proposals per video, as eval_proposal.py computes "
        "it, over tIoU 0.5:0.05:1.0 (TAL-Net's; with --protocol activitynet 0.5:0.05:0.95, "
        "eval_proposal.py's own default).",
        epilog="example: talnet evaluate --ground-truth gt.json --predictions det.json "
        "--subset test --json",
    )
    add_ground_truth_argument(parser, required=True, help="ActivityNet-style ground truth")
    parser.add_argument(
        "--predictions", required=True, metavar="DET.json", help="ActivityNet results JSON"
    )
    parser.add_argument(
        "--subset",
        help="evaluate only the ground-truth videos of this subset (case-insensitive), e.g. test",
    )
    thresholds = parser.add_mutually_exclusive_group()
    thresholds.add_argument(
        "--tious",
        type=_tiou_list,
        metavar="T1,T2,...",
        help="tIoU thresholds, comma-separated, each in (0, 1] "
        "(default: the protocol's; for --proposals 0.5:0.05:1.0, or 0.5:0.05:0.95 with "
        "--protocol activitynet)",
    )
    thresholds.add_argument(
        "--protocol",
        choices=_PROTOCOLS,
        default="thumos",
        help="thumos: tIoU 0.1-0.7 (default); activitynet: 0.5:0.05:0.95 and their average",
    )
    parser.add_argument(
        "--proposals",
        action="store_true",
        help="score the predictions as proposals (labels ignored): AR at AN = 1, 5, 10, 50, "
        "100, 200, 500, 1000, AR@100 and the area under the AR-AN curve",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of the table (values are fractions in [0, 1]): "
        '{"tious", "mAP", "average", "ap_per_class"}, or with --proposals '
        '{"tious", "an", "average_recall", "recall", "ar100", "auc", "curve"}',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.evaluate.detection import ACTIVITYNET_TIOUS, THUMOS_TIOUS, evaluate_detection
    from talnet.evaluate.proposals import (
        ACTIVITYNET_PROPOSAL_TIOUS,
        PROPOSAL_TIOUS,
        evaluate_proposals,
    )
    from talnet.io.annotations import load_ground_truth
    from talnet.io.results import load_detections

    # Data warnings (odd annotations, ignored predictions) reach stderr as one line each.
    gt = load_ground_truth(args.ground_truth, subset=args.subset)
    dets = load_detections(args.predictions)
    if args.proposals:
        default = ACTIVITYNET_PROPOSAL_TIOUS if args.protocol == "activitynet" else PROPOSAL_TIOUS
        report = evaluate_proposals(gt, dets, tious=args.tious or default)
    else:
        default = ACTIVITYNET_TIOUS if args.protocol == "activitynet" else THUMOS_TIOUS
        report = evaluate_detection(gt, dets, tious=args.tious or default)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(report.format_table())
    return 0


def _tiou_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"each tIoU must be in (0, 1], got {text!r}")
    return values
