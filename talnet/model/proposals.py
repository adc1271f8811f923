"""From per-anchor objectness and offsets to a ranked, NMS-filtered list of proposals."""

from __future__ import annotations

import torch

from talnet.model.anchors import anchors_at
from talnet.model.coder import SegmentCoder
from talnet.model.nms import nms


def generate_proposals(
    objectness: torch.Tensor,
    offsets: torch.Tensor,
    scales: torch.Tensor,
    coder: SegmentCoder,
    pre_nms: int,
    nms_threshold: float,
    post_nms: int,
    extra: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One video's proposals: objectness logits (K, T, 2), offsets (K, T, 2) ->
    segments (N, 2) in steps, clipped to the video, and their scores (N,), best first.
    `extra` segments (E, 2) and scores (E,) from elsewhere join the anchors' before NMS."""
    k, t, _ = objectness.shape
    scores = torch.softmax(objectness.reshape(-1, 2).float(), dim=-1)[:, 1]  # (K*T,)
    top = scores.topk(min(pre_nms, scores.numel())).indices
    return ranked_proposals(
        top, scores[top], offsets.reshape(-1, 2)[top], t, scales, coder, nms_threshold,
        post_nms, extra,
    )  # fmt: skip


def ranked_proposals(
    index: torch.Tensor,
    scores: torch.Tensor,
    offsets: torch.Tensor,
    length: int,
    scales: torch.Tensor,
    coder: SegmentCoder,
    nms_threshold: float,
    post_nms: int,
    extra: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The best anchors before NMS, ranked (flat positions k * T + t (N,), objectness (N,),
    offsets (N, 2)) -> proposals as `generate_proposals` gives them: decoded, clipped, NMS'd.
    Windowed inference (talnet.model.windows) ranks a long video's anchors without its (K, T)."""
    t = length
    segments = coder.decode(anchors_at(scales, t, index), offsets.float())
    segments = segments.clamp(-0.5, t - 0.5)
    valid = (segments[:, 1] - segments[:, 0]) > 0.1  # a tenth of a step
    segments, scores = segments[valid], scores[valid]
    if extra is not None and extra[0].numel():
        segments = torch.cat([segments, extra[0].to(segments).clamp(-0.5, t - 0.5)])
        scores = torch.cat([scores, extra[1].to(scores)])
    keep = nms(segments, scores, nms_threshold, max_keep=post_nms)
    return segments[keep], scores[keep]
