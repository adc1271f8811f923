"""`talnet detect`: run a trained checkpoint on features or videos, write ActivityNet results."""

from __future__ import annotations

import argparse
import sys

from talnet.cli.arguments import add_ground_truth_argument, add_quiet_argument
from talnet.cli.extract import add_extract_arguments

EPILOG = """\
two forms:
  on features   talnet detect --checkpoint CKPT --features FEAT_DIR --out DET.json
                    [--ground-truth GT.json --subset test | --video-ids ID ...]
  on videos     talnet detect --checkpoint CKPT --video VIDEO_OR_DIR ... --out DET.json
                    [extraction flags]

examples:
  talnet detect --checkpoint runs/a/checkpoint.pt --features feats/ --ground-truth gt.json \\
      --subset test --out dets.json
  talnet detect --checkpoint runs/a/checkpoint.pt --features feats/ --proposals --out props.json
  talnet detect --video a.mp4 b.mkv --checkpoint runs/a/checkpoint.pt \\
      --i3d-rgb rgb_imagenet.pt --i3d-flow flow_imagenet.pt --out dets.json
  talnet detect --video a.mp4 --checkpoint runs/v3/checkpoint.pt \\
      --weights inception_v3_google-0cc3c7bd.pth --out dets.json   # trained on inceptionv3

Features made on another grid than the checkpoint's training features (fps, stride, window,
streams) are refused with the setting named.

With --video, the features are extracted in memory (as `talnet extract` would) and the
extraction settings default to those the checkpoint's training features were made with,
the backbone included (a checkpoint trained on `--backbone inceptionv3` features extracts
with InceptionV3 and takes --weights); a checkpoint trained on other features (backbone,
streams, widths, fps, stride, window) is refused.
"""

# Flags that only mean something with --video (extraction) or with --features.
VIDEO_ONLY = ("i3d_rgb", "i3d_flow", "random_weights", "flow", "streams", "fps", "stride")
VIDEO_ONLY += ("backbone", "weights")
VIDEO_ONLY += ("window", "size", "resize", "workers", "threads", "compile", "clip_mode")
VIDEO_ONLY += ("precision",)
FEATURES_ONLY = ("ground_truth", "subset", "video_ids", "proposals", "video_scores")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="detect action segments with a trained checkpoint",
        description="Run TAL-Net on the features of some videos, or on video files directly "
        "(extraction and detection in one step), and write ActivityNet-style results JSON "
        "(times in seconds, at most --max-detections per video, best first).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="RUN_DIR/checkpoint.pt")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", help="feature folder")
    source.add_argument(
        "--video",
        nargs="+",
        metavar="VIDEO_OR_DIR",
        help="video files (or folders of them); the file stem is the video id",
    )
    parser.add_argument("--out", required=True, help="results JSON to write")
    features = parser.add_argument_group("which videos (with --features; default: all)")
    add_ground_truth_argument(
        features, required=False, help="ground truth whose --subset videos to run on"
    )
    features.add_argument("--subset", help="subset of --ground-truth (e.g. test)")
    features.add_argument("--video-ids", nargs="+", metavar="ID", help="these video ids only")
    parser.add_argument(
        "--max-detections",
        type=int,
        default=None,
        help="at most this many per video (default: the checkpoint's settings)",
    )
    parser.add_argument("--soft-nms", action="store_true", help="Gaussian Soft-NMS per class")
    parser.add_argument(
        "--proposals",
        action="store_true",
        help="write the class-agnostic proposals (label 'proposal', the "
        "checkpoint's test budget, ranked as its detect.proposal_rank says: objectness by "
        "default; with detect.refine_proposals each moved as its best class's detection) "
        "instead of detections; score them with "
        "`talnet evaluate --proposals` (with --features only)",
    )
    parser.add_argument(
        "--video-scores",
        metavar="FILE",
        help="video-level class scores (ActionFormer's ext_score_file format, e.g. CUHK's "
        'cuhk_val_simp_share.json: {"results": {ID: [scores]}, "class": [names]}; ids with or '
        "without the v_ prefix): each class-agnostic proposal is scored as its proposal score "
        "x the probability of each of the video's detect.video_top_k classes (with --features)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (model, and backbone)")
    add_quiet_argument(parser)
    extraction = parser.add_argument_group("extraction (with --video)")
    add_extract_arguments(extraction, from_checkpoint=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.detect.detector import Detector
    from talnet.errors import TalnetError

    given = VIDEO_ONLY if args.features else FEATURES_ONLY
    wrong = [
        f"--{name.replace('_', '-')}" for name in given if getattr(args, name) not in (None, False)
    ]
    if wrong:
        other = "--video" if args.features else "--features"
        raise TalnetError(f"{', '.join(wrong)} only apply with {other}")
    detector = Detector.from_checkpoint(args.checkpoint, device=args.device)
    if args.max_detections is not None:
        if args.max_detections < 1:
            raise TalnetError("--max-detections must be at least 1")
        detector.config.detect.max_detections = args.max_detections
        detector.config.detect.detections_per_step = 0.0  # a hard cap, whatever the length
    if args.soft_nms:
        detector.config.detect.soft_nms = True
    if args.video:
        return _run_videos(args, detector)
    return _run_features(args, detector)


def _run_features(args: argparse.Namespace, detector) -> int:
    from talnet.detect import detect_features
    from talnet.errors import TalnetError
    from talnet.io.annotations import load_ground_truth
    from talnet.io.results import save_detections

    if args.video_ids and args.ground_truth:
        raise TalnetError("give either --video-ids or --ground-truth/--subset, not both")
    ids = args.video_ids
    if args.ground_truth:
        ids = sorted(load_ground_truth(args.ground_truth, args.subset))
    scores = None
    if args.video_scores:
        from talnet.io.video_scores import load_video_scores

        if args.proposals:
            raise TalnetError("--video-scores scores detections, not --proposals")
        scores = load_video_scores(args.video_scores)
    dets = detect_features(detector, args.features, ids, not args.quiet, args.proposals, scores)
    save_detections(args.out, dets)
    total = sum(len(v) for v in dets.values())
    what = "proposals" if args.proposals else "detections"
    print(f"{total} {what} in {len(dets)} videos -> {args.out}")
    return 0


def _run_videos(args: argparse.Namespace, detector) -> int:
    from talnet.cli.extract import extract_options, warn_random_weights
    from talnet.detect.video import detect_videos
    from talnet.io.results import save_detections

    # Unset flags take the checkpoint's training settings (then talnet extract's defaults).
    options = extract_options(args, base=detector.expected_meta)
    warn_random_weights(options, recorded=False)
    report = detect_videos(
        detector, args.video, options, checkpoint=args.checkpoint, progress=not args.quiet
    )
    dets = report.detections
    if dets:
        save_detections(args.out, dets)
    total = sum(len(v) for v in dets.values())
    rate = report.frames / options.fps / max(report.seconds, 1e-9)
    line = f"{total} detections in {len(dets)} video(s) ({rate:.2f}x real time)"
    line += f" -> {args.out}" if dets else ", nothing written"
    if report.failed:
        line += f"; {len(report.failed)} video(s) FAILED (listed above)"
    print(line)
    if report.failed and not dets:
        print(f"talnet: no video could be read; {args.out} not written", file=sys.stderr)
    return 1 if report.failed else 0
