"""talnet: TAL-Net temporal action localization, from raw video to scored segments."""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"

# OpenMP threads that spin at barriers collapse when another process shares the cores: beside
# a busy process, OpenMP's default wait slows training and detection far more than PASSIVE,
# which costs a little on a machine of one's own (`talnet bench --only shared` measures both,
# alone and beside a busy process). OpenMP reads this when torch loads, so it is set here,
# before any talnet module imports torch; a user's own setting (OMP_WAIT_POLICY=ACTIVE) wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
