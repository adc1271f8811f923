"""`talnet diagnose`: why detections fail, DETAD-style (false-positive profile, mAP gain per error
type, false negatives and normalized mAP by ground-truth characteristics, the worst cases)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from talnet.cli.arguments import add_ground_truth_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="why detections fail: DETAD's false-positive profile, mAP gain per error type, "
        "false negatives and normalized mAP by instance length, coverage and count",
        description="Diagnose detections as DETAD does (Alwassel et al., ECCV 2018). Each class's "
        "top 1G ... 10G predictions (G = its instances) are labelled true positive, double "
        "detection, wrong label, localization, confusion or background at --tiou; the mAP "
        "gained by removing each error type is measured with talnet's evaluator; instances are "
        "bucketed by length, coverage (length / video duration) and instances per video, with "
        "the share missed and the normalized mAP (mAP_N) of each bucket; the highest-scoring "
        "false positives and the longest missed instances are listed with their times. "
        "Predictions for videos or labels not in the ground truth are ignored, with one warning.",
        epilog="example: talnet diagnose --ground-truth gt.json --predictions det.json "
        "--subset test --out diagnosis/",
    )
    add_ground_truth_argument(parser, required=True, help="ActivityNet-style ground truth")
    parser.add_argument(
        "--predictions", required=True, metavar="DET.json", help="ActivityNet results JSON"
    )
    parser.add_argument(
        "--subset", help="diagnose only the ground-truth videos of this subset, e.g. test"
    )
    parser.add_argument(
        "--tiou", type=_tiou, default=0.5, help="tIoU threshold of a true positive (default 0.5)"
    )
    parser.add_argument(
        "--buckets",
        choices=("thumos14", "activitynet"),
        default="thumos14",
        help="DETAD's bins of length, coverage and instances per video: THUMOS'14's (default; "
        "length 3/6/12/18 s) or ActivityNet's (length 30/60/120/180 s)",
    )
    parser.add_argument(
        "--worst", type=int, default=10, metavar="N", help="worst cases listed per kind (10)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="also write DIR/diagnosis.json and the plots DIR/fp_profile.png, "
        "DIR/removal_gain.png, DIR/sensitivity.png",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the tables"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.errors import TalnetError
    from talnet.evaluate.diagnose import diagnose
    from talnet.io.annotations import load_ground_truth
    from talnet.io.results import load_detections

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise TalnetError("output exists and is not a folder", out)
    if args.worst < 0:
        raise TalnetError(f"--worst must be 0 or more, got {args.worst}")
    gt = load_ground_truth(args.ground_truth, subset=args.subset)
    dets = load_detections(args.predictions)
    diagnosis = diagnose(
        gt, dets, tiou=args.tiou, subset=args.subset, buckets=args.buckets, worst=args.worst
    )
    summary = diagnosis.to_json()
    if out is not None:
        _write(out, diagnosis, summary)
    if args.json:
        print(json.dumps(summary))
    else:
        print(diagnosis.format_table())
        if out is not None:
            print(f"\ndiagnosis written: {out / 'diagnosis.json'} and its plots")
    return 0


def _write(out: Path, diagnosis, summary: dict) -> None:
    """diagnosis.json and the PNG plots, each written atomically, after all are drawn."""
    from talnet.io.atomic import write_json
    from talnet.visualize.diagnose_plots import figures
    from talnet.visualize.plots import save_png

    drawn = figures(diagnosis)  # drawn before anything is written
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in drawn.items():
        save_png(fig, out / f"{name}.png")
    write_json(out / "diagnosis.json", summary)


def _tiou(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value
