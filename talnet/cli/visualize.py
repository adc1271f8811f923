"""`talnet visualize`: re-encode a video with a timeline of ground truth and top predictions."""

from __future__ import annotations

import argparse

from talnet.cli.arguments import add_ground_truth_argument, add_quiet_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "visualize",
        help="write a copy of a video with a timeline of ground truth and top-k predictions",
        description="Re-encode VIDEO (H.264 via libx264, or MPEG-4 if PyAV's FFmpeg lacks it; "
        "same frame rate, frame count and duration; audio kept) with a panel under the picture: "
        "a time axis in mm:ss.s, one lane of ground-truth segments, then the top-k predicted "
        "segments sorted by score, each lane labelled with class and score, one colour per "
        "class, a cursor at the current time and the segments under it outlined; the current "
        "labels are drawn over the picture. Frames stream through, so memory stays flat.",
    )
    parser.add_argument("--video", required=True, metavar="V.mp4", help="the video to annotate")
    parser.add_argument(
        "--predictions", required=True, metavar="DET.json", help="ActivityNet results JSON"
    )
    add_ground_truth_argument(
        parser, required=False, help="ActivityNet-style ground truth (optional)"
    )
    parser.add_argument(
        "--video-id",
        metavar="ID",
        help="id of this video in the JSON files (default: the video's file name without "
        "extension, or the only video in the predictions)",
    )
    parser.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="prediction lanes to draw (default 5)"
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.0,
        metavar="S",
        help="draw only predictions scoring at least S (default 0)",
    )
    parser.add_argument(
        "--out", required=True, metavar="OUT.mp4", help="output video (.mp4/.mov/.mkv)"
    )
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.visualize.video import annotate_video

    result = annotate_video(
        args.video,
        args.predictions,
        args.out,
        ground_truth=args.ground_truth,
        video_id=args.video_id,
        top_k=args.top_k,
        min_score=args.min_score,
        progress=not args.quiet,
    )
    note = "" if result.codec == "libx264" else " (libx264 not in PyAV's FFmpeg: MPEG-4 instead)"
    audio = f", audio {result.audio}" if result.audio else ""
    print(
        f"wrote {result.path}: {result.frames} frames {result.width}x{result.height} "
        f"{result.codec}{note}{audio}"
    )
    return 0
