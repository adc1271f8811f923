"""`talnet report`: write the offline HTML report (metrics, figures, a timeline page per video)."""

from __future__ import annotations

import argparse

from talnet.cli.arguments import add_ground_truth_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write an offline HTML report: mAP tables and curves, a timeline viewer per video",
        description="Evaluate predictions against ground truth and write a static site that opens\n"
        "from file:// with no server or network:\n"
        "  REPORT_DIR/index.html       mAP per tIoU, mAP-vs-tIoU curve, per-class AP and\n"
        "                              precision-recall at tIoU 0.5, videos sorted by their AP\n"
        "  REPORT_DIR/diagnosis.html   DETAD's diagnosis (as talnet diagnose, at tIoU 0.5): error\n"
        "                              types, missed instances by length, coverage and count,\n"
        "                              the worst cases linked to their video at their time\n"
        "  REPORT_DIR/video/ID.html    video player, ground-truth and prediction lanes (click\n"
        "                              to seek), score slider, class filter, playback cursor\n"
        "With --run, training curves from the run's log.jsonl are added, and the run's\n"
        "predictions and ground truth are used unless given.",
        epilog="examples:\n"
        "  talnet report --ground-truth gt.json --predictions det.json --video-dir videos/ "
        "--subset test --out report/\n"
        "  talnet report --run runs/demo --out runs/demo/report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_ground_truth_argument(parser, required=False, help="ActivityNet-style ground truth")
    parser.add_argument("--predictions", metavar="DET.json", help="ActivityNet results JSON")
    parser.add_argument(
        "--run",
        metavar="RUN_DIR",
        help="training run folder (log.jsonl) or `talnet demo` folder (run/log.jsonl, "
        "detections.json, data/annotations.json)",
    )
    parser.add_argument(
        "--video-dir",
        metavar="VIDEO_DIR",
        help="folder of video files named VIDEO_ID.mp4/.webm/... (linked, not copied)",
    )
    parser.add_argument(
        "--copy-videos",
        action="store_true",
        help="copy the videos into REPORT_DIR/media so the report can be moved",
    )
    parser.add_argument(
        "--subset",
        help="evaluate and show only this subset (e.g. test); by default the one subset the "
        "predictions cover when the ground truth has several, else all videos",
    )
    parser.add_argument(
        "--tious",
        choices=("thumos", "activitynet"),
        default=None,
        help="tIoU thresholds of the mAP table: THUMOS'14 0.1-0.7 or ActivityNet "
        "0.5:0.05:0.95 (default: the --run's config's evaluate.protocol, e.g. activitynet for "
        "the anet13 preset; else thumos)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="REPORT_DIR",
        help="output folder (replaced if it holds an earlier report)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.evaluate.detection import PROTOCOL_TIOUS
    from talnet.visualize.report import report_from_files
    from talnet.visualize.report_inputs import protocol_of_run

    protocol = args.tious or (protocol_of_run(args.run) if args.run else "thumos")

    index = report_from_files(
        args.out,
        ground_truth=args.ground_truth,
        predictions=args.predictions,
        run_dir=args.run,
        video_dir=args.video_dir,
        subset=args.subset,
        tious=PROTOCOL_TIOUS[protocol],
        copy_videos=args.copy_videos,
    )
    print(f"report written: {index}")
    return 0
