"""Arguments shared by the commands (one vocabulary) and the set-up of those that train."""

from __future__ import annotations

import argparse

from talnet.config import Config


def add_training_arguments(
    parser: argparse.ArgumentParser, config_default: str | None, config_help: str
) -> None:
    """--config, --epochs, --threads and --quiet, the same in every training command."""
    parser.add_argument("--config", default=config_default, help=config_help)
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_quiet_argument(parser)


def add_ground_truth_argument(
    parser: argparse.ArgumentParser, required: bool, help: str = "ground-truth JSON (ActivityNet)"
) -> None:
    """--ground-truth, the one name of the annotation file in every command (--annotations is
    kept as an alias)."""
    parser.add_argument(
        "--ground-truth", "--annotations", dest="ground_truth", required=required, help=help
    )


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """--quiet, the one name for "no progress bars" in every command."""
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def training_config(args: argparse.Namespace) -> Config:
    """Apply --threads, then load --config with --epochs and, where the command has it, --seed
    applied."""
    import torch

    from talnet.config import load_config
    from talnet.model.numerics import flush_denormals

    flush_denormals()  # before torch starts its intra-op threads, so that they flush too
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if args.epochs is not None:
        config.train.epochs = args.epochs
    if getattr(args, "seed", None) is not None:
        config.train.seed = args.seed
    return config
