"""Checkpoints: plain dicts of tensors and primitives, written atomically, read weights_only."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from talnet.config import Config
from talnet.errors import TalnetError
from talnet.io.atomic import atomic_path
from talnet.io.features import FeatureMeta
from talnet.model.talnet import TalNet

FORMAT = "talnet-checkpoint/1"


def plain(obj: Any) -> Any:
    """Tuples and nested dataclass dicts -> JSON-plain lists/dicts (safe for weights_only)."""
    return json.loads(json.dumps(obj))


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` atomically (a crash mid-write leaves the previous checkpoint intact)."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with torch.load(weights_only=True); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise TalnetError("checkpoint not found", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise TalnetError(f"cannot read checkpoint: {exc}", path) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise TalnetError(f"not a talnet checkpoint (expected format {FORMAT})", path)
    return ckpt


def model_state(
    model: TalNet, config: Config, classes: list[str], meta: FeatureMeta
) -> dict[str, Any]:
    """What a Detector needs: weights, config, classes, stream dims and the feature grid (for
    resampled features without the training videos' durations)."""
    return {
        "model": model.state_dict(),
        "config": plain(config.to_dict()),
        "classes": list(classes),
        "stream_dims": dict(model.stream_dims),
        "meta": plain(asdict(meta.without_videos())),
    }


def model_from_checkpoint(
    ckpt: dict[str, Any], path: str | Path | None = None
) -> tuple[TalNet, Config, FeatureMeta]:
    """Rebuild the model (weights loaded strictly), its config and the feature meta."""
    config = Config.from_dict(ckpt["config"], path)
    meta = FeatureMeta(**ckpt["meta"])
    model = TalNet(ckpt["stream_dims"], len(ckpt["classes"]), config)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise TalnetError(f"checkpoint weights do not fit its config: {exc}", path) from exc
    return model, config, meta
