"""I3D weight files: a tolerant loader for the public state dicts, seeded random weights for
smoke tests, and the file id (name, CRC32, size) recorded in meta.json (docs/design.md §6).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from talnet.errors import TalnetError

if TYPE_CHECKING:  # torch loads only when a model is built, so the CLI starts fast
    from talnet.video.i3d import InceptionI3d

RANDOM_SEED = 0  # every shard must draw the same random weights


def stream_of(in_channels: int) -> str:
    """The I3D stream a channel count feeds: 3 -> "rgb", 2 -> "flow"."""
    return "rgb" if in_channels == 3 else "flow"


def load_i3d_weights(path: str | Path, in_channels: int) -> InceptionI3d:
    """InceptionI3d with the weights of `path` (a state dict, or a checkpoint holding one under
    "state_dict"; "module." prefixes and any logits class count accepted), strictly checked."""
    import torch

    from talnet.video.i3d import InceptionI3d

    stream = stream_of(in_channels)
    model = InceptionI3d(num_classes=400, in_channels=in_channels)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise TalnetError(f"cannot read I3D {stream} weights: {exc}", path) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TalnetError(f"not an I3D {stream} state dict", path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
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


def random_i3d(in_channels: int) -> InceptionI3d:
    """InceptionI3d with seeded random weights (the same on every machine), for smoke tests."""
    import torch

    from talnet.video.i3d import InceptionI3d

    torch.manual_seed(RANDOM_SEED + in_channels)
    return InceptionI3d(num_classes=400, in_channels=in_channels)


def weight_file_id(path: str | Path) -> dict:
    """Name, CRC32 and size of a weight file, so shards on other machines can compare."""
    path = Path(path)
    digest = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest = zlib.crc32(block, digest)
    return {"file": path.name, "crc32": f"{digest:08x}", "bytes": path.stat().st_size}


__all__ = ["RANDOM_SEED", "load_i3d_weights", "random_i3d", "stream_of", "weight_file_id"]
