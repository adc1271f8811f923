"""Compatibility of published weight files with current PyTorch modules."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def fill_num_batches_tracked(
    state_dict: Mapping[str, torch.Tensor], prefix: str, *args: object
) -> None:
    """Load-state-dict pre-hook: add BatchNorm's `num_batches_tracked` counter where missing.

    Files saved before PyTorch 0.4.1 (such as the public I3D weights) lack the counter, which
    inference never uses; filling it lets `strict=True` check only the real weights.
    """
    if not isinstance(state_dict, dict):
        return
    for key in [k for k in state_dict if k.startswith(prefix) and k.endswith(".running_mean")]:
        counter = key[: -len("running_mean")] + "num_batches_tracked"
        state_dict.setdefault(counter, torch.tensor(0, dtype=torch.long))
