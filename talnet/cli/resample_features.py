"""`talnet resample-features`: a feature folder resampled to N steps per video (ActivityNet)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from talnet.cli.arguments import add_ground_truth_argument, add_quiet_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "resample-features",
        help="resample every video's features to N steps (ActivityNet practice)",
        description="Write OUT: each video of IN as (N, C) features, linearly interpolated on "
        "the time axis, step i of N centred at (i + 0.5) * D / N for the video's duration D "
        "(the ground truth's where given, else what IN's grid covers). OUT/meta.json records N "
        "and every D, so detections map back to seconds exactly. Source times come from "
        "IN/meta.json; without one (TSN / TSP features people already have) the T steps are "
        "spread evenly over the ground-truth duration. Feature files named v_ID match ground "
        "truth ID (and are written as ID). Videos without a known duration are left out with "
        "one warning; a failure leaves no OUT behind.",
        epilog="example: talnet resample-features feats/ feats_128/ --steps 128 "
        "--ground-truth activity_net.v1-3.min.json",
    )
    parser.add_argument("input", metavar="IN", help="feature folder (VIDEO_ID.npy or STREAM/)")
    parser.add_argument("output", metavar="OUT", help="new feature folder (must not hold files)")
    parser.add_argument("--steps", type=int, required=True, metavar="N", help="e.g. 128 or 256")
    add_ground_truth_argument(
        parser, required=False, help="ground-truth JSON whose durations to use (ActivityNet)"
    )
    parser.add_argument(
        "--source-grid",
        choices=("auto", "meta", "uniform"),
        default="auto",
        help="times of IN's steps: meta (IN/meta.json's grid), uniform (spread over the "
        "ground-truth duration), auto (meta when IN has a meta.json, else uniform)",
    )
    parser.add_argument(
        "--packed",
        action="store_true",
        help="write OUT as a packed store (one memory-mapped array per stream, as "
        "`talnet pack-features` writes; resampled beside OUT first)",
    )
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.data.resample import resample_folder

    def resample(out: str | Path):
        return resample_folder(
            args.input,
            out,
            args.steps,
            ground_truth=args.ground_truth,
            source_grid=args.source_grid,
            progress=not args.quiet,
        )

    if args.packed:  # resampled into a temporary folder beside OUT, then packed into OUT
        from talnet.io.atomic import check_new_folder
        from talnet.io.packed import pack_folder

        out = Path(args.output)
        check_new_folder(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.unpacked-", dir=out.parent) as tmp:
            report = resample(Path(tmp) / "features")
            pack_folder(report.out_dir, out, progress=not args.quiet)
    else:
        report = resample(args.output)
    print(
        f"{len(report.written)} videos resampled to {args.steps} steps -> {Path(args.output)}"
        + (f" ({len(report.skipped)} left out, listed above)" if report.skipped else "")
    )
    return 0
