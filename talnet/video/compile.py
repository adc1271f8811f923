"""Fast inference for the feature backbones: eval mode, channels-last, and optionally
torch.compile with inductor freezing (slow to compile once, then cached). The eager model keeps
channels-last through every block, which oneDNN's 3-D convolutions run faster than plain
channels-first; `talnet bench --only i3d` times plain eager, channels-last eager and compiled.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from talnet.video.weights import user_cache_dir

FeatureFn = Callable[[torch.Tensor], torch.Tensor]

# Compiled and eager outputs differ only by float reordering; this is far above that and far
# below any real miscompilation.
_CHECK_RTOL = 1e-3


def cache_dir() -> Path:
    """Where inductor keeps compiled kernels between runs: $TORCHINDUCTOR_CACHE_DIR if set, else
    "inductor" in talnet's cache (see `user_cache_dir`)."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    return user_cache_dir() / "inductor"


def make_feature_extractor(
    model: nn.Module, compile: bool = False, device: str | torch.device = "cpu"
) -> FeatureFn:
    """Wrap `model.extract_features` for inference: clips (N, C, ...) -> (N, D) float32 on the CPU.

    Channels-last memory helps oneDNN's 3-D convolutions. With `compile=True` the model is
    compiled by inductor with freezing (weights become constants, BatchNorm folds into the
    convolutions); clips then run one at a time so a single compiled shape serves every batch
    size, and the first clip is checked against eager mode, falling back to eager on mismatch.
    """
    device = torch.device(device)
    model = model.eval().to(device)
    five_d = _is_video_model(model)
    fmt = torch.channels_last_3d if five_d else torch.channels_last
    model = model.to(memory_format=fmt)

    def eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            x = x.to(device, torch.float32).contiguous(memory_format=fmt)
            return model.extract_features(x).float().cpu()

    if not compile:
        return eager

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir()))
    compiled = torch.compile(model.extract_features, dynamic=False, options={"freezing": True})
    state = {"checked": False, "ok": True}

    def first_clip(clip: torch.Tensor) -> torch.Tensor:
        """Compile on the first clip and check it against eager; on failure fall back for good."""
        state["checked"] = True
        expected = model.extract_features(clip).float().cpu()
        try:
            got = compiled(clip).float().cpu()
        except Exception as exc:  # e.g. no C++ compiler on this machine
            reason = f"torch.compile failed ({type(exc).__name__}: {exc})"
        else:
            if _close(got, expected):
                return got
            reason = "the compiled model disagrees with eager mode"
        state["ok"] = False
        warnings.warn(f"{reason}; extracting features in eager mode", RuntimeWarning, stacklevel=3)
        return expected

    def fast(x: torch.Tensor) -> torch.Tensor:
        outs = []
        with torch.inference_mode():
            for clip in x.split(1):
                clip = clip.to(device, torch.float32).contiguous(memory_format=fmt)
                if not state["checked"]:
                    outs.append(first_clip(clip))
                elif state["ok"]:
                    outs.append(compiled(clip).float().cpu())
                else:
                    outs.append(model.extract_features(clip).float().cpu())
        return torch.cat(outs)

    return fast


def _is_video_model(model: nn.Module) -> bool:
    from torch.ao.nn.quantized import Conv3d as QuantizedConv3d

    return any(isinstance(m, nn.Conv3d | QuantizedConv3d) for m in model.modules())


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    scale = b.abs().max().clamp_min(1e-12)
    return bool(((a - b).abs().max() / scale) <= _CHECK_RTOL)
