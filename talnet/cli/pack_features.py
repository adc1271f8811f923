"""`talnet pack-features`: a feature folder as one memory-mapped array per stream (many videos)."""

from __future__ import annotations

import argparse

from talnet.cli.arguments import add_quiet_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pack-features",
        help="pack a feature folder into one memory-mapped array per stream (10k-video sets)",
        description="Write OUT_DIR, a packed feature store: every video of IN_DIR (layout concat "
        "or folders, fixed grid or resampled) in one float32 array per stream, "
        "OUT_DIR/packed/STREAM.npy of shape (total steps, C), each video's rows contiguous, "
        "with OUT_DIR/packed/index.json {video id: [offset, length]} and IN_DIR's meta.json "
        "kept key for key but 'layout': 'packed'. train, detect, check and resample-features "
        "read it as they read a folder, with the same arrays bit for bit; training slices the "
        "memory maps instead of opening one file per video. Every video is loaded and checked "
        "(widths, stream lengths, NaN/inf) on the way; a failure leaves no OUT_DIR behind.",
        epilog="example: talnet pack-features feats_128/ feats_128_packed/ "
        "&& talnet train --features feats_128_packed ...",
    )
    parser.add_argument("input", metavar="IN_DIR", help="feature folder (VIDEO_ID.npy or STREAM/)")
    parser.add_argument("output", metavar="OUT_DIR", help="new store (must not hold files)")
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.io.packed import pack_folder

    report = pack_folder(args.input, args.output, progress=not args.quiet)
    widths = " + ".join(
        f"{s} {d}" for s, d in zip(report.meta.streams, report.meta.dims or [], strict=True)
    )
    print(
        f"{len(report.videos)} videos packed ({report.total_steps} steps, channels {widths}) "
        f"-> {report.out_dir}"
    )
    return 0
