"""`talnet convert-thumos`: THUMOS'14 per-class annotation files -> one ground-truth JSON."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-thumos",
        help="convert THUMOS'14 CLASS_val.txt / CLASS_test.txt files to ground-truth JSON",
        description="Convert THUMOS'14's official per-class temporal annotations (lines "
        "'video_id start end' in CLASS_val.txt / CLASS_test.txt, searched recursively) into "
        "talnet's ActivityNet-style ground truth. _val files become subset 'validation', _test "
        "files 'test'; Ambiguous_*.txt is kept as label 'Ambiguous', which evaluation ignores.",
    )
    parser.add_argument("annot_dir", metavar="ANNOT_DIR", help="folder holding the .txt files")
    parser.add_argument("--out", required=True, help="ground-truth JSON to write (atomically)")
    parser.add_argument(
        "--durations",
        metavar="CSV",
        help="CSV with header video_id,duration[,fps] giving each video's length in seconds",
    )
    parser.add_argument(
        "--features",
        metavar="FEAT_DIR",
        help="feature folder: durations the CSV lacks are inferred from each video's feature "
        "steps and meta.json ((T-1)*stride + window) / fps",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.io.annotations import AMBIGUOUS, labels_of, save_ground_truth
    from talnet.io.thumos import convert_thumos

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            gt = convert_thumos(args.annot_dir, args.durations, args.features)
        finally:
            for warning in caught:
                print(f"talnet: warning: {warning.message}", file=sys.stderr)
    save_ground_truth(args.out, gt)
    subsets = Counter(info.subset for info in gt.values())
    labels = Counter(a.label for info in gt.values() for a in info.annotations)
    ambiguous = labels.pop(AMBIGUOUS, 0)
    print(
        f"wrote {args.out}: {len(gt)} videos ("
        + ", ".join(f"{name} {count}" for name, count in sorted(subsets.items()))
        + f"), {sum(labels.values())} instances of {len(labels_of(gt))} classes, "
        f"{ambiguous} {AMBIGUOUS}"
    )
    return 0
