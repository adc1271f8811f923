"""talnet: TAL-Net temporal action localization, from raw video to scored segments."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Heavy names (they import torch) load on first use, so `talnet evaluate` starts fast.
_LAZY = {
    "Detector": "talnet.detect.detector",
    "InceptionI3d": "talnet.video.i3d",
    "InceptionV3": "talnet.video.inception_v3",
    "TalNet": "talnet.model.talnet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'talnet' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
