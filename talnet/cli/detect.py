"""`talnet detect`: run a trained checkpoint on features, write ActivityNet results JSON."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="detect action segments with a trained checkpoint",
        description="Run TAL-Net on the features of some videos and write ActivityNet-style "
        "results JSON (times in seconds, at most --max-detections per video, best first).",
        epilog="example: talnet detect --checkpoint runs/a/checkpoint.pt --features feats/ "
        "--annotations gt.json --subset test --out dets.json",
    )
    parser.add_argument("--checkpoint", required=True, help="RUN_DIR/checkpoint.pt")
    parser.add_argument("--features", required=True, help="feature folder")
    parser.add_argument("--out", required=True, help="results JSON to write")
    parser.add_argument("--annotations", help="ground truth whose --subset videos to run on")
    parser.add_argument("--subset", help="subset of --annotations (e.g. test)")
    parser.add_argument("--videos", nargs="+", metavar="ID", help="these video ids only")
    parser.add_argument("--max-detections", type=int, default=None, help="per video (200)")
    parser.add_argument("--soft-nms", action="store_true", help="Gaussian Soft-NMS per class")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.detect import detect_features
    from talnet.detect.detector import Detector
    from talnet.errors import TalnetError
    from talnet.io.annotations import load_ground_truth
    from talnet.io.results import save_detections

    if args.videos and args.annotations:
        raise TalnetError("give either --videos or --annotations/--subset, not both")
    detector = Detector.from_checkpoint(args.checkpoint, device=args.device)
    if args.max_detections is not None:
        if args.max_detections < 1:
            raise TalnetError("--max-detections must be at least 1")
        detector.config.detect.max_detections = args.max_detections
    if args.soft_nms:
        detector.config.detect.soft_nms = True
    ids = args.videos
    if args.annotations:
        ids = sorted(load_ground_truth(args.annotations, args.subset))
    dets = detect_features(detector, args.features, ids, progress=not args.quiet)
    save_detections(args.out, dets, max_per_video=detector.config.detect.max_detections)
    total = sum(len(v) for v in dets.values())
    print(f"{total} detections in {len(dets)} videos -> {args.out}")
    return 0
