"""`talnet` entry point: one subcommand per module in talnet.cli, errors as one line."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from talnet import __version__
from talnet.allocator import keep_freed_memory
from talnet.errors import TalnetError

# Each module defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
COMMAND_MODULES: tuple[str, ...] = (
    "bench",
    "train",
    "detect",
    "demo",
    "ablate",
    "synth",
    "convert_thumos",
    "check",
    "visualize",
    "report",
    "evaluate",
    "diagnose",
    "extract",
    "classify",
    "convert_weights",
    "resample_features",
    "pack_features",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="talnet",
        description="TAL-Net temporal action localization: extract features, train, detect, "
        "evaluate and visualize action segments in untrimmed videos.",
    )
    parser.add_argument("--version", action="version", version=f"talnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"talnet.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; a TalnetError becomes `talnet: error: …` on stderr and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    keep_freed_memory()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return int(args.func(args) or 0)
    except TalnetError as exc:
        print(f"talnet: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `talnet evaluate … | head`: the reader left; exit quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("talnet: interrupted", file=sys.stderr)
        return 130


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Data warnings (odd-but-real annotations, ignored predictions) as one line each."""
    print(f"talnet: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
