"""Segment offset encoding/decoding with the supplement's weights (t_c x10, t_l x5)."""

from __future__ import annotations

import torch


class SegmentCoder:
    """Encode a segment relative to a reference (anchor or proposal), and back.

    t_c = w_c (c - c_a) / l_a,  t_l = w_l log(l / l_a)  (supplement Eq. 2, w_c = 10, w_l = 5).
    Segments are (N, 2) [start, end]; offsets are (N, 2) [t_c, t_l].
    """

    def __init__(self, weights: tuple[float, float] = (10.0, 5.0), max_log_scale: float = 4.0):
        self.weights = weights
        # exp() of an unbounded prediction overflows; cap growth at e^4 ~ 55x, as detectron2 does.
        self.max_log_scale = max_log_scale

    def encode(self, reference: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Offsets (N, 2) that turn `reference` segments into `target` segments."""
        wc, wl = self.weights
        ref_c, ref_l = _center_length(reference)
        tgt_c, tgt_l = _center_length(target)
        ref_l = ref_l.clamp_min(1e-6)
        tgt_l = tgt_l.clamp_min(1e-6)
        return torch.stack([wc * (tgt_c - ref_c) / ref_l, wl * torch.log(tgt_l / ref_l)], -1)

    def decode(self, reference: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Segments (..., 2) from `reference` (..., 2) and `offsets` (..., 2); inverse of encode."""
        wc, wl = self.weights
        ref_c, ref_l = _center_length(reference)
        center = ref_c + offsets[..., 0] / wc * ref_l
        log_scale = (offsets[..., 1] / wl).clamp(max=self.max_log_scale)
        half = ref_l * torch.exp(log_scale) / 2
        return torch.stack([center - half, center + half], -1)


def _center_length(segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (segments[..., 0] + segments[..., 1]) / 2, segments[..., 1] - segments[..., 0]
