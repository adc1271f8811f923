"""`talnet extract`: videos -> I3D two-stream features (FEAT_DIR/VIDEO_ID.npy + meta.json)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EPILOG = """\
step rule: with n frames, T = max(1, floor((n - window) / stride) + 1) features; step i covers
frames [i*stride, i*stride + window) and is timed at its centre, (i*stride + window/2) / fps;
a video shorter than one window gives one step, padded by repeating its last frame.

examples:
  talnet extract videos/ --out feats --i3d-rgb rgb_imagenet.pt --i3d-flow flow_imagenet.pt
  talnet extract a.mp4 b.mkv --out feats --flow dis --stride 16 --random-weights
  talnet extract videos/ --out feats --i3d-rgb rgb.pt --i3d-flow flow.pt --shard 0/4
"""


def register(subparsers: argparse._SubParsersAction) -> None:

    parser = subparsers.add_parser(
        "extract",
        help="extract I3D RGB + optical-flow features from videos",
        description="Decode videos (resampled to --fps by timestamp, shorter side resized to "
        "--resize, centre crop --size), compute optical flow, and run the two I3D streams over "
        "sliding windows. Writes FEAT_DIR/VIDEO_ID.npy (T, 2048) = [rgb | flow] (or one folder "
        "per stream) and FEAT_DIR/meta.json. Videos already extracted are skipped, so rerunning a "
        "killed job resumes it; a video that fails is reported and the others still run.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="VIDEO_OR_DIR",
        help="video files, or folders of them (not recursive; files without a video "
        "extension in a folder are listed and skipped); the file stem is the video id",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="FEAT_DIR")
    add_extract_arguments(parser)
    parser.add_argument(
        "--layout",
        choices=("concat", "folders"),
        default="concat",
        help="concat: FEAT_DIR/ID.npy (T, 2048); folders: FEAT_DIR/rgb/ID.npy and "
        "FEAT_DIR/flow/ID.npy",
    )
    parser.add_argument("--device", default="cpu", help="torch device for I3D (cpu, cuda, ...)")
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="do only shard K of N (0 <= K < N); default from RANK/WORLD_SIZE under torchrun",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


# Defaults of the flags that decide what the features are; `talnet detect --video` takes them
# from the checkpoint's training meta instead, falling back to these.
FEATURE_DEFAULTS = {"fps": 30.0, "stride": 4, "window": 16, "size": 224, "resize": 256}
FEATURE_DEFAULTS |= {"flow": "tvl1", "streams": "rgb,flow"}


def add_extract_arguments(parser: argparse.ArgumentParser, from_checkpoint: bool = False) -> None:
    """The extraction flags shared by `talnet extract` and `talnet detect --video`.

    With from_checkpoint, the feature flags default to None, to be filled from the checkpoint.
    """
    from talnet.video.flow import FLOW_METHODS

    def default(name: str) -> object:
        return None if from_checkpoint else FEATURE_DEFAULTS[name]

    def said(name: str) -> str:
        value = FEATURE_DEFAULTS[name]
        value = f"{value:g}" if isinstance(value, float) else value
        return f"default: the checkpoint's, else {value}" if from_checkpoint else f"default {value}"

    parser.add_argument("--i3d-rgb", type=Path, metavar="FILE", help="RGB I3D state dict (.pt)")
    parser.add_argument("--i3d-flow", type=Path, metavar="FILE", help="flow I3D state dict (.pt)")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="use seeded random I3D weights for streams without a file (smoke tests only"
        + (")" if from_checkpoint else "; recorded in meta.json)"),
    )
    parser.add_argument(
        "--flow",
        choices=FLOW_METHODS,
        default=default("flow"),
        help="optical flow: tvl1 (tuned TV-L1), tvl1-default (OpenCV's settings, slow), "
        f"dis (DIS medium preset, fast) or dis-fast ({said('flow')})",
    )
    parser.add_argument(
        "--streams", default=default("streams"), help=f"comma list ({said('streams')})"
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=default("fps"),
        help=f"frame rate to resample to ({said('fps')})",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=default("stride"),
        help=f"frames between feature steps ({said('stride')})",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=default("window"),
        help=f"frames per I3D clip ({said('window')})",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=default("size"),
        help=f"square frame size fed to I3D ({said('size')})",
    )
    parser.add_argument(
        "--resize",
        type=int,
        default=default("resize"),
        help="resize the shorter side to this before the centre crop; "
        f"0 squashes the frame to --size x --size ({said('resize')})",
    )
    parser.add_argument("--batch", type=int, default=4, help="clips per I3D call (default 4)")
    parser.add_argument("--workers", type=int, help="flow processes (default: one per core)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for I3D (default: torch's); 1 is much faster when other work "
        "already fills the cores (busy machine, or --flow tvl1 on few cores)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile I3D with inductor freezing (the first compile takes ~1 minute; on a "
        "2-core CPU it now runs about as fast as the channels-last eager default)",
    )


def extract_options(args: argparse.Namespace, **overrides: object):
    """ExtractOptions from the flags of add_extract_arguments (None: FEATURE_DEFAULTS)."""
    from talnet.video.extract import ExtractOptions

    def get(name: str) -> object:
        value = overrides.get(name, getattr(args, name, None))
        return FEATURE_DEFAULTS[name] if value is None else value

    streams = get("streams")
    if isinstance(streams, str):
        streams = [s.strip() for s in streams.split(",") if s.strip()]
    return ExtractOptions(
        fps=get("fps"),
        stride=get("stride"),
        window=get("window"),
        flow=get("flow"),
        streams=tuple(streams),
        layout=overrides.get("layout", getattr(args, "layout", "concat")),
        size=get("size"),
        short_side=get("resize") or None,
        rgb_weights=args.i3d_rgb,
        flow_weights=args.i3d_flow,
        random_weights=args.random_weights,
        device=overrides.get("device", args.device),
        batch=args.batch,
        compile=args.compile,
        workers=args.workers,
        threads=args.threads,
    )


def warn_random_weights(options, recorded: bool = True) -> None:
    """Say loudly on stderr which streams run on random I3D weights."""
    missing = [s for s in options.streams if options.weights(s) is None]
    if options.random_weights and missing:
        print(
            f"talnet: WARNING: RANDOM I3D WEIGHTS for {', '.join(missing)}: these features "
            "are meaningless except as a smoke test"
            + (" (recorded in meta.json)" if recorded else ""),
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    from talnet.video.extract import extract_dataset, parse_shard, shard_from_env

    device = args.device
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per local process
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    options = extract_options(args, device=device)
    warn_random_weights(options)
    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    report = extract_dataset(
        args.inputs, args.out, options, shard=shard, progress=not args.no_progress
    )
    rate = report.frames / max(report.seconds, 1e-9)
    line = (
        f"extracted {len(report.done)} video(s) into {args.out}"
        f" ({report.frames} frames, {rate:.1f} frames/s,"
        f" {report.realtime_factor(options.fps):.2f}x real time)"
    )
    if shard:
        line += f", shard {shard[0]}/{shard[1]}"
    if report.skipped:
        line += f"; {len(report.skipped)} already done"
    if report.ignored:
        line += f"; {len(report.ignored)} non-video file(s) ignored"
    if report.failed:
        line += f"; {len(report.failed)} FAILED:"
    print(line)
    for path, reason in report.failed:
        print(f"  failed: {reason}" if reason.startswith(path) else f"  failed: {path}: {reason}")
    return 1 if report.failed else 0
