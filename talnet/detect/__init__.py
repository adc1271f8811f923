"""Inference: features (or videos) to scored, NMS-filtered detections in seconds.

The names load on first use: the detector imports torch and the video path the decoder, so
`import talnet.detect` stays cheap.
"""

from __future__ import annotations

_LAZY = {
    "Detector": "talnet.detect.detector",
    "detect_features": "talnet.detect.detector",
    "detect_videos": "talnet.detect.video",
    "VideoDetections": "talnet.detect.video",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
